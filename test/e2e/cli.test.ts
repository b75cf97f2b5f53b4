import assert from "node:assert/strict";
import { chmod, chown, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cannotRunAsNobody, copySite, NOBODY, removeDir, runCli, tempDir, verifyVariants } from "../support/helpers.js";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));
async function site(): Promise<string> {
  const dir = await copySite();
  dirs.push(dir);
  return dir;
}

describe("cli", () => {
  let cacheDir = "";
  before(async () => {
    cacheDir = await tempDir("cli-cache-");
    dirs.push(cacheDir);
  });

  it("compresses a folder, prints a summary table, exits 0; every variant decodes", async () => {
    const dir = await site();
    const r = await runCli([dir, "--cache-dir", cacheDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /encoding\s+variants\s+before\s+after\s+ratio/);
    assert.match(r.stdout, /brotli\s+8 /);
    assert.match(r.stdout, /8 compressed/);
    assert.deepEqual(await verifyVariants(dir), { gzip: 8, br: 8, zstd: 8 });
  });

  it("--json prints one JSON object with the documented keys; --quiet prints nothing", async () => {
    const dir = await site();
    const r = await runCli([dir, "--json", "--no-cache", "--encodings", "gzip,br"]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(summary), [
      "dir",
      "manifest",
      "dryRun",
      "files",
      "states",
      "skipped",
      "encodings",
      "deltas",
      "changes",
      "failures",
      "warnings",
      "durationMs",
    ]);
    assert.deepEqual(Object.keys(summary.encodings), ["gzip", "br"]);
    assert.equal(summary.states.compressed, 8);
    assert.equal(r.stderr, "");
    const q = await runCli([dir, "--quiet", "--no-cache"]);
    assert.equal(q.code, 0);
    assert.equal(q.stdout + q.stderr, "");
  });

  it("prints plain progress lines, not a bar, when stderr is not a terminal", async () => {
    const r = await runCli([await site(), "--no-cache"]);
    assert.match(r.stderr, /processed \d+\/\d+ files/);
    assert.ok(!r.stderr.includes("\x1b["), "no terminal escape codes");
  });

  it("--dry-run writes nothing", async () => {
    const dir = await site();
    const before = ((await readdir(dir, { recursive: true })) as string[]).sort();
    const r = await runCli([dir, "--dry-run", "--no-cache"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /missing: index\.html/);
    assert.deepEqual(((await readdir(dir, { recursive: true })) as string[]).sort(), before);
  });

  it("--check exits 1 listing what is out of date, 0 when up to date", async () => {
    const dir = await site();
    const stale = await runCli([dir, "--check", "--no-cache"]);
    assert.equal(stale.code, 1);
    assert.match(stale.stdout, /missing: assets\/app\.3f9a1c2b\.js/);
    assert.equal((await runCli([dir, "--quiet", "--no-cache"])).code, 0);
    const fresh = await runCli([dir, "--check", "--no-cache"]);
    assert.equal(fresh.code, 0, fresh.stdout);
    assert.match(fresh.stdout, /up to date/);
  });

  it("clean removes what the manifest lists", async () => {
    const dir = await site();
    await runCli([dir, "--quiet", "--no-cache"]);
    const r = await runCli(["clean", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /removed 24 variants/);
    const left = ((await readdir(dir, { recursive: true })) as string[]).filter((f) => /\.(br|zst)$/.test(f));
    assert.deepEqual(left, []);
  });

  it("a missing directory: one clear line naming it, exit 1", async () => {
    const r = await runCli(["/nonexistent/site", "--no-cache"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), "error: /nonexistent/site: no such directory");
  });

  it("a file given as the directory: exit 1 naming it", async () => {
    const dir = await site();
    const r = await runCli([join(dir, "index.html")]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /index\.html: not a directory/);
  });

  for (const [args, pattern] of [
    [["--bogus"], /unknown option '--bogus'/],
    [["--zstd-level", "high"], /--zstd-level expects a whole number/],
    [["--zstd-level", "40"], /--zstd-level: expected a whole number from 1 to (19|22)/],
    [["--encodings", "gzip,lzma"], /--encodings: unknown encoding "lzma"/],
    [["--min-ratio", "1.5"], /--min-ratio expects a number above 0 and at most 1/],
  ] as const) {
    it(`a bad flag (${args.join(" ")}) exits 2 with a message naming it`, async () => {
      const dir = await site();
      const r = await runCli([dir, ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    });
  }

  it("an unreadable file is named, everything else is done, exit 1", async (t) => {
    const dir = await site();
    const secret = join(dir, "assets", "secret.js");
    await writeFile(secret, "export const secret = 1;\n".repeat(200));
    await chmod(secret, 0o000);
    // root reads anything: run the CLI as an unprivileged user over a folder it owns.
    const asRoot = process.getuid?.() === 0;
    const reason = asRoot ? cannotRunAsNobody() : undefined;
    if (reason) return t.skip(reason);
    if (asRoot) {
      for (const f of ["", ...((await readdir(dir, { recursive: true })) as string[])]) {
        if (!f.endsWith("secret.js")) await chown(join(dir, f), NOBODY, NOBODY);
      }
    }
    const r = await runCli([dir, "--no-cache"], asRoot ? { uid: NOBODY, gid: NOBODY, cwd: "/tmp" } : {});
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /assets\/secret\.js: cannot read \(EACCES: permission denied\)\n/);
    assert.ok((await stat(join(dir, "assets/app.3f9a1c2b.js.br"))).size > 0, "other files are still compressed");
    assert.ok(!((await readdir(join(dir, "assets"))) as string[]).some((f) => f.startsWith("secret.js.")));
  });
});
