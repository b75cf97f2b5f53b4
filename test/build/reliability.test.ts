// Faults injected for real: kills, signals, a full disk, permissions, a tree that changes, hostile names.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { appendFile, chmod, chown, mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  cannotRunAsNobody,
  copySite,
  loadManifest,
  NOBODY,
  ROOT,
  removeDir,
  runCli,
  tempDir,
  verifyVariants,
} from "../support/helpers.js";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));
const isRoot = process.getuid?.() === 0;

/** The demo site plus enough distinct text files that a run at top levels takes a few seconds. */
async function busySite(files = 60): Promise<string> {
  const dir = await copySite();
  dirs.push(dir);
  const app = await readFile(join(dir, "assets/app.3f9a1c2b.js"), "utf8");
  await mkdir(join(dir, "gen"));
  for (let i = 0; i < files; i++)
    await writeFile(join(dir, "gen", `chunk-${i}.js`), `// chunk ${i}\n${app.slice(i * 500)}${i}`);
  return dir;
}

function startCli(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; done: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn(process.execPath, [join(ROOT, "bin", "precompressor.js"), ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  let stderr = "";
  child.stderr?.on("data", (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stderr })),
  );
  return { child, done };
}

/** Live child processes of `pid`, from /proc. */
async function childrenOf(pid: number): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    // Fields after the parenthesised command name: state, then the parent's pid.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[1]) === pid && fields[0] !== "Z") found.push(Number(name));
  }
  return found;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers signal 0 until its parent reaps it.
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function tempFiles(dir: string): Promise<string[]> {
  return ((await readdir(dir, { recursive: true })) as string[]).filter((f) =>
    /^\.pc-[0-9a-f]{20}\.tmp$/.test(f.split("/").pop() ?? ""),
  );
}

/** What a reader of the manifest may rely on at any instant: every listed variant is there and decodes to its source. */
async function manifestIsHonest(dir: string): Promise<void> {
  const text = await readFile(join(dir, ".precompressor.json"), "utf8").catch(() => undefined);
  if (text !== undefined) await verifyVariants(dir);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("reliability: the CLI under faults", () => {
  it("SIGKILL at several points: the manifest stays honest, and the next run completes clean", async () => {
    const dir = await busySite();
    for (const [i, delay] of [40, 120, 250, 400, 650, 900, 1300].entries()) {
      // Alternate settings so kills also land while existing variants are being replaced.
      const { child, done } = startCli([dir, "--no-cache", "--zstd-level", i % 2 ? "19" : "15"]);
      await sleep(delay);
      child.kill("SIGKILL");
      await done;
      await manifestIsHonest(dir);
    }
    const r = await runCli([dir, "--no-cache", "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await tempFiles(dir), []);
    const counts = await verifyVariants(dir);
    assert.equal(counts.br, 68);
  });

  it("a run killed outright takes its compression process (the pool host) with it", {
    skip: process.platform !== "linux" && "finds the child in /proc",
    timeout: 60_000,
  }, async () => {
    // A big file goes first (largest first) and keeps brotli 11 busy for seconds: the host must
    // stop at once, not when the encodes in flight end.
    const dir = await busySite();
    const lines = Array.from(
      { length: 120_000 },
      (_, i) => `export const v${i} = "${((i * 2654435761) >>> 0).toString(36)}";`,
    );
    await writeFile(join(dir, "gen", "big.js"), lines.join("\n"));
    const { child, done } = startCli([dir, "--no-cache"], { PRECOMPRESSOR_POOL_HOST: "1" });
    let host: number | undefined;
    for (let i = 0; i < 1000 && host === undefined; i++) {
      host = (await childrenOf(child.pid as number))[0];
      if (host === undefined) await sleep(10);
    }
    assert.ok(host, "the CLI started its compression process");
    await sleep(300);
    // 'exit', not 'close': the host shares the stderr pipe, so 'close' would wait for it.
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    for (let i = 0; i < 100 && isAlive(host); i++) await sleep(10);
    assert.equal(isAlive(host), false, "the compression process outlived its parent by over a second");
    await done;
    await manifestIsHonest(dir);
  });

  for (const [signal, code, host] of [
    ["SIGINT", 130, "0"],
    ["SIGTERM", 143, "0"],
    ["SIGINT", 130, "1"],
    ["SIGTERM", 143, "1"],
  ] as const) {
    const where = host === "1" ? "in the pool host process" : "on in-process threads";
    it(`${signal} stops the workers ${where}, removes temp files, leaves a consistent manifest, exits ${code}`, async () => {
      const dir = await busySite();
      const { child, done } = startCli([dir, "--no-cache", "--concurrency", "2"], { PRECOMPRESSOR_POOL_HOST: host });
      // Wait until work is under way.
      for (let i = 0; i < 200 && !(await stat(join(dir, ".precompressor.lock")).catch(() => undefined)); i++)
        await sleep(10);
      await sleep(400);
      child.kill(signal);
      const r = await done;
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, /interrupted/);
      assert.deepEqual(await tempFiles(dir), []);
      await verifyVariants(dir);
      await assert.rejects(stat(join(dir, ".precompressor.lock")), "the lock is released");
      const again = await runCli([dir, "--no-cache", "--quiet"]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await verifyVariants(dir)).br, 68);
    });
  }

  it("a second run on the same dir fails clearly while the first holds the lock", async () => {
    const dir = await busySite();
    const first = startCli([dir, "--no-cache"]);
    for (let i = 0; i < 200 && !(await stat(join(dir, ".precompressor.lock")).catch(() => undefined)); i++)
      await sleep(10);
    const second = await runCli([dir, "--no-cache"]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /another precompressor run \(pid \d+\) is working on this directory/);
    assert.equal((await first.done).code, 0);
    await verifyVariants(dir);
  });

  it("a lock left by a killed run is taken over", async () => {
    const dir = await busySite(1);
    await writeFile(join(dir, ".precompressor.lock"), "999999999");
    const r = await runCli([dir, "--no-cache", "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
  });

  it("a file edited while it is compressed never gets a mismatched variant; the next run redoes it", async () => {
    const dir = await tempDir("changing-");
    dirs.push(dir);
    const line = (i: number) => `export const entry${i} = { id: ${i}, label: "entry number ${i * 7919}" };\n`;
    await writeFile(join(dir, "big.js"), Array.from({ length: 60_000 }, (_, i) => line(i)).join(""));
    const { done } = startCli([dir, "--no-cache", "--encodings", "br"]);
    await sleep(700);
    await appendFile(join(dir, "big.js"), "// edited during the run\n");
    const r = await done;
    await manifestIsHonest(dir);
    if (r.code === 1) assert.match(r.stderr, /big\.js: changed while it was being compressed/);
    const again = await runCli([dir, "--no-cache", "--quiet", "--encodings", "br"]);
    assert.equal(again.code, 0);
    assert.equal((await verifyVariants(dir)).br, 1);
  });

  it("disk full: a clear error naming the file, no torn variant, no corrupt manifest", async (t) => {
    if (!isRoot) return t.skip("needs root to mount a small tmpfs");
    const mount = await tempDir("full-");
    dirs.push(mount);
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=512k", "tmpfs", mount]);
    } catch (error) {
      return t.skip(`cannot mount tmpfs here: ${(error as Error).message.split("\n")[0]}`);
    }
    try {
      const site = join(mount, "site");
      await mkdir(site);
      const app = await readFile(join(ROOT, "fixtures/site/assets/app.3f9a1c2b.js"), "utf8");
      for (let i = 0; i < 8; i++)
        await writeFile(join(site, `part-${i}.js`), `${app.slice(i * 1000, i * 1000 + 20_000)}// ${i}\n`);
      // Leave room for a few variants but not all of them.
      const free = () => Number(execFileSync("df", ["--output=avail", "-B1", mount]).toString().split("\n")[1]);
      await writeFile(join(mount, "filler"), Buffer.alloc(Math.max(0, free() - 60 * 1024)));
      const r = await runCli([site, "--no-cache", "--encodings", "gzip,br"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /ENOSPC/);
      assert.match(r.stderr, /part-\d\.js|\.precompressor\.json/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      assert.deepEqual(await tempFiles(site), []);
      await manifestIsHonest(site);
      // Every variant on disk decodes to its source, listed or not.
      for (const f of (await readdir(site)).filter((n) => /\.(gz|br)$/.test(n))) {
        const { decodeVariant } = await import("../../src/cache.js");
        const decoded = await decodeVariant(f.endsWith(".gz") ? "gzip" : "br", await readFile(join(site, f)));
        assert.deepEqual(decoded, await readFile(join(site, f.replace(/\.(gz|br)$/, ""))), f);
      }
    } finally {
      execFileSync("umount", [mount]);
    }
  });

  it("permission denied on a folder: that path is reported, everything else is done, exit 1", async (t) => {
    const reason = cannotRunAsNobody();
    if (reason) return t.skip(reason);
    const dir = await busySite(2);
    await mkdir(join(dir, "private"));
    await writeFile(join(dir, "private", "a.js"), "export const a = 1;\n".repeat(300));
    for (const f of ["", ...((await readdir(dir, { recursive: true })) as string[])])
      await chown(join(dir, f), NOBODY, NOBODY);
    const asNobody = { uid: NOBODY, gid: NOBODY, cwd: "/tmp" };
    assert.equal((await runCli([dir, "--no-cache", "--quiet"], asNobody)).code, 0);
    await writeFile(join(dir, "index.html"), "<p>edited while private/ is unreadable</p>\n".repeat(100));
    await chmod(join(dir, "private"), 0o000);
    const r = await runCli([dir, "--no-cache", "--quiet"], asNobody);
    await chmod(join(dir, "private"), 0o755);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /private: folder not readable \(EACCES\)/);
    // Everything else is done; what the folder held last time is kept, not taken for deleted.
    const manifest = await loadManifest(dir);
    assert.ok(manifest.files["private/a.js"]?.variants.br, "the unreadable folder's entries are kept");
    assert.ok((await stat(join(dir, "private", "a.js.br"))).size > 0, "and so are its variants");
    await verifyVariants(dir, manifest);
  });
});

describe("reliability: hostile trees", () => {
  it("symlink loops, symlinks outside, a FIFO, a socket, deep nesting and odd names", async () => {
    const dir = await tempDir("hostile-");
    dirs.push(dir);
    const text = "export const hostile = true;\n".repeat(100);
    await writeFile(join(dir, "a.js"), text);
    await symlink(".", join(dir, "loop"));
    await symlink("/etc", join(dir, "etc-link"));
    await symlink("/etc/hostname", join(dir, "hostname.txt"));
    execFileSync("mkfifo", [join(dir, "fifo.js")]);
    const server = createServer().listen(join(dir, "socket.js"));
    await new Promise((r) => server.once("listening", r));
    let deep = dir;
    for (let i = 0; i < 60; i++) deep = join(deep, `d${i}`);
    await mkdir(deep, { recursive: true });
    await writeFile(join(deep, "deep.css"), text);
    // A newline can be in a file name but never in a manifest key: that file is skipped with a warning.
    const unlisted = "new\nline.js";
    await writeFile(join(dir, unlisted), text);
    const odd = ["per%20cent.js", "hash#tag.js", "what?.js", "sp ace.js", "ünïcødé.js"];
    for (const name of odd) await writeFile(join(dir, name), text);
    await writeFile(Buffer.from([...Buffer.from(`${dir}/`), 0x62, 0xff, 0xfe, 0x2e, 0x6a, 0x73]), text);
    try {
      for (const follow of [false, true]) {
        const args = [dir, "--no-cache", "--json", ...(follow ? ["--follow-symlinks"] : [])];
        const r = await runCli(args);
        assert.ok(r.code === 0 || r.code === 1, r.stderr);
        const summary = JSON.parse(r.stdout);
        const keys = Object.keys((await loadManifest(dir)).files);
        for (const name of ["a.js", ...odd]) assert.ok(keys.includes(name), `${JSON.stringify(name)} listed`);
        assert.ok(!keys.includes(unlisted), "a name with a newline is not listed");
        assert.ok(
          summary.warnings.some((w: string) => w.includes(JSON.stringify(unlisted))),
          JSON.stringify(summary.warnings),
        );
        assert.ok(keys.some((k) => k.endsWith("deep.css")));
        assert.ok(
          !keys.some((k) => k.startsWith("etc-link") || k === "hostname.txt" || k.startsWith("loop/")),
          keys.join(","),
        );
        assert.ok(!keys.includes("fifo.js") && !keys.includes("socket.js"));
        if (follow)
          assert.ok(
            summary.warnings.some((w: string) => /etc-link|hostname\.txt/.test(w)),
            JSON.stringify(summary.warnings),
          );
        await verifyVariants(dir);
      }
    } finally {
      server.close();
    }
  });

  it("many empty files: listed, hashed, none compressed", async () => {
    const dir = await tempDir("empty-");
    dirs.push(dir);
    const count = Number(process.env.PRECOMPRESSOR_EMPTY_FILES ?? 5000);
    for (let d = 0; d < count / 1000; d++) {
      await mkdir(join(dir, `d${d}`));
      await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(join(dir, `d${d}`, `f${i}.js`), "")));
    }
    const r = await runCli([dir, "--no-cache", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).files, count);
    const rerun = await runCli([dir, "--no-cache", "--json"]);
    assert.equal(JSON.parse(rerun.stdout).states.unchanged, count);
  });
});
