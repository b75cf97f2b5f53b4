// What precompressor may delete, overwrite and write: issue #13's cases, each through the real CLI
// (a child process), real files, and a real server where the case is about what gets served.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, chown, lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { precompress } from "../src/build/precompress.js";
import compressFile from "../src/build/worker.js";
import { deltaFileName } from "../src/delta.js";
import { hashBytes } from "../src/hash.js";
import { createLazyCompressor } from "../src/lazy/compressor.js";
import { CACHE_TAG, isOwnTemp, markCacheDir } from "../src/ownership.js";
import { startServer } from "../src/serve/preview.js";
import {
  cannotRunAsNobody,
  copySite,
  loadManifest,
  NOBODY,
  removeDir,
  runCli,
  tempDir,
  verifyVariants,
} from "./support/helpers.js";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));
const track = async (p: Promise<string>) => {
  const dir = await p;
  dirs.push(dir);
  return dir;
};
const site = () => track(copySite());
const text = (n = 300) => "export const value = 'precompressor';\n".repeat(n);

/** Every file under `dir` with its bytes: foreign files must come out of a run byte for byte. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of (await readdir(dir, { recursive: true })) as string[]) {
    const path = join(dir, f);
    if ((await stat(path)).isFile()) out.set(f, hashBytes(await readFile(path)));
  }
  return out;
}

/** GET `path` from a real `startServer` on `dir`, with this Accept-Encoding. */
async function served(dir: string, path: string, acceptEncoding: string) {
  const server = await startServer({ dir, port: 0 });
  try {
    const res = await fetch(new URL(path, server.url), { headers: { "accept-encoding": acceptEncoding } });
    return {
      status: res.status,
      encoding: res.headers.get("content-encoding"),
      body: Buffer.from(await res.arrayBuffer()),
    };
  } finally {
    await server.close();
  }
}

describe("ownership: what a build deletes", () => {
  it("case 1: user files named *.pctmp survive; only our exact temp pattern is swept", async () => {
    const dir = await site();
    await writeFile(join(dir, "notes.pctmp"), "my notes");
    await mkdir(join(dir, "sub"));
    await writeFile(join(dir, "sub", "db-backup.pctmp"), "my backup");
    await writeFile(join(dir, ".pc-0123456789abcdef0123.tmp"), "a killed run's temp");
    await writeFile(join(dir, "sub", ".pc-0123.tmp"), "not our pattern");
    const r = await runCli([dir, "--no-cache", "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await readFile(join(dir, "notes.pctmp"), "utf8"), "my notes");
    assert.equal(await readFile(join(dir, "sub", "db-backup.pctmp"), "utf8"), "my backup");
    assert.equal(await readFile(join(dir, "sub", ".pc-0123.tmp"), "utf8"), "not our pattern");
    await assert.rejects(stat(join(dir, ".pc-0123456789abcdef0123.tmp")), { code: "ENOENT" });
    assert.ok(isOwnTemp(".pc-0123456789abcdef0123.tmp") && !isOwnTemp("notes.pctmp"));
  });

  it("case 2: a hostile manifest (../ keys, a delta outside, a symlinked folder) deletes nothing outside, build or clean", async () => {
    const parent = await track(tempDir("hostile-manifest-"));
    const dir = join(parent, "site");
    const victim = join(parent, "victim");
    await mkdir(dir);
    await mkdir(victim);
    await writeFile(join(dir, "index.html"), text());
    for (const name of ["a.txt", "a.txt.gz", "a.txt.br", "a.txt.zst", "c.txt"])
      await writeFile(join(victim, name), name);
    // A folder inside the site that is a symlink out: a key under it has a safe spelling.
    await symlink(victim, join(dir, "link"));
    const dict = Buffer.alloc(32, 7);
    const delta = (key: string) => ({
      dict: `sha256-${dict.toString("base64url")}`,
      encoding: "dcz",
      size: 1,
      hash: hashBytes(Buffer.from("x")),
      file: deltaFileName(key, dict, "dcz"),
    });
    await writeFile(join(victim, deltaFileName("a.txt", dict, "dcz")), "victim's delta-named file");
    const variant = { size: 1, hash: hashBytes(Buffer.from("x")) };
    const entry = (key: string) => ({
      hash: hashBytes(Buffer.from(key)),
      size: 1,
      mtimeMs: 1,
      type: "text/plain",
      variants: { gzip: variant, br: variant, zstd: variant },
      deltas: [delta(key)],
    });
    const manifest = {
      version: 1,
      generator: "hand",
      settings: {},
      files: {
        "../victim/a.txt": { ...entry("../victim/a.txt"), deltas: [{ ...delta("a.txt"), file: "../victim/c.txt" }] },
        "link/a.txt": entry("link/a.txt"),
      },
    };
    const before = await snapshot(victim);
    await writeFile(join(dir, ".precompressor.json"), JSON.stringify(manifest));
    const build = await runCli([dir, "--no-cache", "--json"]);
    assert.equal(build.code, 0, build.stderr);
    assert.deepEqual(await snapshot(victim), before, "the build deleted nothing outside");
    await writeFile(join(dir, ".precompressor.json"), JSON.stringify(manifest));
    const cleaned = await runCli(["clean", dir, "--lazy-cache-dir", join(parent, "no-such-cache")]);
    assert.equal(cleaned.code, 0, cleaned.stderr);
    assert.deepEqual(await snapshot(victim), before, "clean deleted nothing outside");
    assert.match(cleaned.stderr, /link\/a\.txt\.gz: its folder leads outside/);
  });

  it("a symlink or a FIFO in a variant's place is replaced, never written through; the target outside is untouched", async () => {
    const parent = await track(tempDir("slot-attack-"));
    const dir = join(parent, "site");
    await mkdir(dir);
    await writeFile(join(dir, "a.js"), text());
    await writeFile(join(dir, "b.js"), text());
    await writeFile(join(parent, "target.txt"), "outside");
    await symlink(join(parent, "target.txt"), join(dir, "a.js.br"));
    execFileSync("mkfifo", [join(dir, "b.js.gz")]);
    const r = await runCli([dir, "--no-cache", "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await readFile(join(parent, "target.txt"), "utf8"), "outside");
    assert.ok((await lstat(join(dir, "a.js.br"))).isFile());
    assert.ok((await lstat(join(dir, "b.js.gz"))).isFile());
    await verifyVariants(dir);
  });

  it("case 5: --include or --exclude reaching outside dir is a usage error naming the flag; nothing is written", async () => {
    const parent = await track(tempDir("include-"));
    const dir = join(parent, "site");
    await mkdir(dir);
    await mkdir(join(parent, "outside"));
    await writeFile(join(dir, "index.html"), text());
    await writeFile(join(parent, "outside", "x.js"), text());
    for (const args of [
      ["--include", "../outside/**"],
      ["--include", `${parent}/outside/**`],
      ["--exclude", "a/../../b"],
    ]) {
      const r = await runCli([dir, "--no-cache", ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`error: ${args[0]}: "${args[1]?.replace(/[.*/]/g, "\\$&")}" reaches outside`));
    }
    await assert.rejects(precompress({ dir, include: ["../outside/**"], cache: false }), {
      code: "E_BAD_OPTION",
      message: '--include: "../outside/**" reaches outside the folder (absolute or with a ".." segment)',
    });
    assert.deepEqual(await readdir(join(parent, "outside")), ["x.js"]);
    assert.deepEqual(await readdir(dir), ["index.html"]);
  });
});

describe("ownership: cache folders", () => {
  it("case 3: clean refuses the site, the home folder, / and a folder holding the site as --lazy-cache-dir", async () => {
    const dir = await site();
    const home = await track(tempDir("home-"));
    await writeFile(join(home, ".bashrc"), "mine");
    assert.equal((await runCli([dir, "--no-cache", "--quiet"])).code, 0);
    const before = await snapshot(dir);
    for (const cache of [dir, home, "/", join(dir, "..")]) {
      const r = await runCli(["clean", dir, "--lazy-cache-dir", cache], { env: { HOME: home } });
      assert.equal(r.code, 1, `${cache}: ${r.stderr}`);
      assert.match(r.stderr, /^error: --lazy-cache-dir .*: refusing to use it as a cache folder: .*\n$/);
    }
    assert.deepEqual(await snapshot(dir), before, "the site is intact");
    assert.equal(await readFile(join(home, ".bashrc"), "utf8"), "mine");
  });

  it("clean next to foreign files: they survive byte for byte; an untagged folder is refused", async () => {
    const dir = await site();
    const root = await createLazyRoot();
    const cache = await track(tempDir("lazy-cache-"));
    const lazy = createLazyCompressor({ root, cacheDir: cache, maxWaitMs: 60_000 });
    assert.ok(await lazy.variant("app.js", "br"));
    await lazy.close();
    await writeFile(join(cache, "other-app.db"), "someone else's");
    await mkdir(join(cache, "AAAAAAAAAAAAAAAA", "aa"), { recursive: true });
    await writeFile(join(cache, "AAAAAAAAAAAAAAAA", "aa", "notes.txt"), "foreign, in a folder shaped like ours");
    const foreign = [...(await snapshot(cache))].filter(([f]) => !/^[\w-]{16}\/[\w-]{2}\/[\w-]{43}$/.test(f));
    const r = await runCli(["clean", dir, "--lazy-cache-dir", cache]);
    assert.equal(r.code, 0, r.stderr);
    const after = await snapshot(cache);
    assert.deepEqual([...after], foreign, "only our entries went");

    const untagged = await track(tempDir("untagged-"));
    await writeFile(join(untagged, "keep.txt"), "keep");
    const refused = await runCli(["clean", dir, "--lazy-cache-dir", untagged]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /has no CACHEDIR\.TAG/);
    assert.equal(await readFile(join(untagged, "keep.txt"), "utf8"), "keep");
  });

  it("case 4: lazy eviction touches only its own entries; a served or foreign folder is refused, never emptied", async () => {
    const root = await createLazyRoot();
    const cache = await track(tempDir("lazy-evict-"));
    await markCacheDir(cache, "test");
    await writeFile(join(cache, "other-app.db"), Buffer.alloc(50_000, 1));
    await mkdir(join(cache, "sub"));
    await writeFile(join(cache, "sub", "old.log"), "oldest file here");
    const before = await snapshot(cache);
    // A bound smaller than anything: every eviction pass runs, and may take only our entries.
    const lazy = createLazyCompressor({ root, cacheDir: cache, maxSize: 1, maxWaitMs: 60_000 });
    await lazy.variant("app.js", "gzip");
    await lazy.variant("app.js", "br");
    await lazy.idle();
    await lazy.close();
    assert.ok(lazy.metrics.compressions >= 1);
    for (const [f, hash] of before) assert.equal((await snapshot(cache)).get(f), hash, `${f} survives`);

    // `serve --lazy` on a folder that is not ours: refused before listening, nothing deleted.
    const siteDir = await site();
    assert.equal((await runCli([siteDir, "--no-cache", "--quiet"])).code, 0);
    const siteBefore = await snapshot(siteDir);
    for (const cacheDir of [siteDir, join(siteDir, "docs")]) {
      const r = await runCli(["serve", siteDir, "--port", "0", "--lazy", "--lazy-cache-dir", cacheDir]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error: --lazy-cache-dir .*: refusing to use it as a cache folder/);
    }
    // The library refuses the same way: every request is served identity, nothing is evicted.
    const errors: string[] = [];
    const onSite = createLazyCompressor({
      root: siteDir,
      cacheDir: siteDir,
      maxSize: 1,
      onError: (e) => errors.push(e.message),
    });
    assert.equal(await onSite.variant("assets/style.css", "br"), undefined);
    await onSite.idle();
    await onSite.close();
    assert.match(errors.join("\n"), /refusing to use it as a cache folder/);
    assert.deepEqual(await snapshot(siteDir), siteBefore, "the served folder is intact");
  });

  it("a cache from before tags (only entry folders, also a lazy/ folder of them) is adopted and tagged", async () => {
    const cache = await track(tempDir("legacy-cache-"));
    await mkdir(join(cache, "AbCdEfGhIjKlMnOp", "xy"), { recursive: true });
    await mkdir(join(cache, "lazy", "QrStUvWxYzAbCdEf"), { recursive: true });
    await markCacheDir(cache, "--cache-dir");
    assert.ok((await readdir(cache)).includes(CACHE_TAG));
    const mixed = await track(tempDir("mixed-cache-"));
    await mkdir(join(mixed, "AbCdEfGhIjKlMnOp"));
    await writeFile(join(mixed, "readme.txt"), "mine");
    await assert.rejects(markCacheDir(mixed, "--cache-dir"), { code: "E_INPUT_REFUSED", message: /"readme\.txt"/ });
    assert.deepEqual((await readdir(mixed)).sort(), ["AbCdEfGhIjKlMnOp", "readme.txt"]);
  });

  it("the build's --cache-dir: a foreign non-empty folder is refused; foreign files in a tagged one survive eviction", async () => {
    const dir = await site();
    const foreign = await track(tempDir("foreign-cache-"));
    await writeFile(join(foreign, "thesis.tex"), "years of work");
    const r = await runCli([dir, "--cache-dir", foreign, "--quiet"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: --cache-dir .*: refusing to use it as a cache folder/);
    assert.deepEqual(await readdir(foreign), ["thesis.tex"]);

    const cache = await track(tempDir("tagged-cache-"));
    await markCacheDir(cache, "test");
    await writeFile(join(cache, "thesis.tex"), "years of work");
    assert.equal((await runCli([dir, "--cache-dir", cache, "--cache-max-size", "1", "--quiet"])).code, 0);
    assert.equal(await readFile(join(cache, "thesis.tex"), "utf8"), "years of work");
    assert.ok((await readdir(cache)).includes(CACHE_TAG));
  });
});

/** A served folder for lazy mode with one compressible file. */
async function createLazyRoot(): Promise<string> {
  const root = await track(tempDir("lazy-root-"));
  await writeFile(join(root, "app.js"), text(2000));
  return root;
}

describe("ownership: a variant that cannot be written", () => {
  it("case 7: a directory in a variant's slot: the run finishes, reports it, exits 1; the file is served identity", async () => {
    const dir = await site();
    await mkdir(join(dir, "index.html.br"));
    const r = await runCli([dir, "--no-cache", "--json"]);
    assert.equal(r.code, 1, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual(
      summary.failures.map((f: { path: string; code: string }) => [f.path, f.code]),
      [["index.html", "E_WRITE"]],
    );
    assert.match(summary.failures[0].message, /index\.html\.br: cannot write \(EISDIR: [^,]*\)$/);
    assert.match(r.stderr, /^error: .*index\.html\.br: cannot write \(EISDIR/m);
    const manifest = await loadManifest(dir);
    assert.ok(manifest.files["index.html"], "index.html stays listed");
    assert.equal(manifest.files["index.html"]?.variants.br, undefined);
    assert.ok(manifest.files["index.html"]?.variants.gzip);
    assert.equal(summary.states.compressed, 7, "every other file is done");
    assert.ok((await stat(join(dir, "index.html.br"))).isDirectory(), "the directory is left alone");
    await verifyVariants(dir, manifest);
    const res = await served(dir, "/index.html", "br");
    assert.equal(res.status, 200);
    assert.equal(res.encoding, null);
    assert.deepEqual(res.body, await readFile(join(dir, "index.html")));
    // The text summary is printed too.
    const again = await runCli([dir, "--no-cache"]);
    assert.equal(again.code, 1);
    assert.match(again.stdout, /files in manifest: .* 1 failed/);
  });

  it("case 8: names of 240 bytes (ASCII and CJK) get every variant; a 252-byte name skips .zst, counted, exit 0", async () => {
    const dir = await track(tempDir("long-names-"));
    const ascii = `${"a".repeat(237)}.js`;
    // .html: a non-ASCII .js name trips the resolver's Use-As-Dictionary header (a serving bug, not ours).
    const cjk = `${"文".repeat(80)}.html`;
    const edge = `${"b".repeat(249)}.js`;
    assert.equal(Buffer.byteLength(cjk), 245);
    for (const name of [ascii, cjk, edge]) await writeFile(join(dir, name), text());
    const r = await runCli([dir, "--no-cache", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual(summary.failures, []);
    assert.equal(summary.skipped.nameTooLong, 1);
    const manifest = await loadManifest(dir);
    for (const name of [ascii, cjk])
      assert.deepEqual(Object.keys(manifest.files[name]?.variants ?? {}).sort(), ["br", "gzip", "zstd"]);
    assert.deepEqual(Object.keys(manifest.files[edge]?.variants ?? {}).sort(), ["br", "gzip"]);
    await verifyVariants(dir, manifest);
    const text1 = await runCli([dir, "--no-cache"]);
    assert.match(text1.stdout, /1 with a variant name over 255 bytes/);
    const res = await served(dir, `/${encodeURIComponent(edge)}`, "zstd");
    assert.equal(res.status, 200);
    assert.equal(res.encoding, null);
    const br = await served(dir, `/${encodeURIComponent(cjk)}`, "br");
    assert.equal(br.status, 200);
    assert.equal(br.encoding, "br");
  });

  it("case 9: a readable file in a read-only folder stays listed and is served identity; exit 1 naming it", async (t) => {
    const reason = cannotRunAsNobody();
    if (reason) return t.skip(reason);
    const dir = await site();
    await mkdir(join(dir, "ro"));
    await writeFile(join(dir, "ro", "a.js"), text());
    for (const f of ["", ...((await readdir(dir, { recursive: true })) as string[])])
      await chown(join(dir, f), NOBODY, NOBODY);
    await chmod(join(dir, "ro"), 0o555);
    const r = await runCli([dir, "--no-cache", "--json"], { uid: NOBODY, gid: NOBODY, cwd: "/tmp" });
    await chmod(join(dir, "ro"), 0o755);
    assert.equal(r.code, 1, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual(
      [...new Set(summary.failures.map((f: { path: string; code: string }) => `${f.path} ${f.code}`))],
      ["ro/a.js E_WRITE"],
    );
    assert.match(summary.failures[0].message, /ro\/a\.js\.(gz|br|zst): cannot write \(EACCES: permission denied\)$/);
    const manifest = await loadManifest(dir);
    assert.deepEqual(manifest.files["ro/a.js"]?.variants, {});
    await verifyVariants(dir, manifest);
    const res = await served(dir, "/ro/a.js", "gzip, br, zstd");
    assert.equal(res.status, 200);
    assert.equal(res.encoding, null);
  });
});

describe("ownership: error codes", () => {
  it("case 10: E_SOURCE_CHANGED for a source removed, E_COMPRESS for an encoder failing; one line each", async () => {
    const dir = await track(tempDir("codes-"));
    const realRoot = dir;
    const base = { kind: "text" as const, minRatio: 0.95, dryRun: false, realRoot, jobs: [] };
    const gone = await compressFile({ ...base, path: join(dir, "gone.js") });
    assert.deepEqual(gone.ok ? undefined : [gone.code, gone.message], [
      "E_SOURCE_CHANGED",
      `${join(dir, "gone.js")}: removed during the run (ENOENT: no such file or directory)`,
    ]);
    await writeFile(join(dir, "a.js"), text());
    const bad = await compressFile({
      ...base,
      path: join(dir, "a.js"),
      jobs: [{ encoding: "gzip", level: 1000, digest: "x" }],
    });
    assert.ok(bad.ok, "the file itself is fine");
    assert.equal(bad.failures[0]?.code, "E_COMPRESS");
    assert.match(bad.failures[0]?.message ?? "", /a\.js\.gz: gzip encoder failed \(.+\)$/);
    assert.doesNotMatch(bad.failures[0]?.message ?? "", /\n/);
  });
});
