// --shard k/n and merge as a CI matrix runs them: each shard a separate process on its own copy of
// the tree, their outputs copied into one tree, merged; the result must equal a single run's.
import assert from "node:assert/strict";
import { cp, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import fg from "fast-glob";
import { copySite, loadManifest, removeDir, runCli, tempDir, verifyVariants } from "../support/helpers.js";

/** The demo site plus 120 generated files of mixed sizes, a few large, so the split has work to balance. */
async function makeTree(): Promise<string> {
  const dir = await copySite();
  for (let i = 0; i < 120; i++) {
    const size = i % 40 === 0 ? 200_000 : 500 + ((i * 7919) % 12_000);
    const line = `export const value${i} = ${JSON.stringify("x".repeat(i % 50))}; // ${i}\n`;
    await mkdir(join(dir, "gen", String(i % 7)), { recursive: true });
    await writeFile(join(dir, "gen", String(i % 7), `m${i}.js`), line.repeat(Math.ceil(size / line.length)));
  }
  return dir;
}

/** Every file below `dir` with its bytes, the bookkeeping files aside. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = await fg("**/*", { cwd: dir, dot: true, onlyFiles: true, ignore: [".precompressor.lock"] });
  const out = new Map<string, string>();
  for (const rel of files.sort()) out.set(rel, (await readFile(join(dir, rel))).toString("base64"));
  return out;
}

/** What an artifact of shard k holds: what the run added to the pristine tree. */
async function shardOutputs(pristine: Map<string, string>, dir: string): Promise<string[]> {
  return [...(await snapshot(dir)).keys()].filter((rel) => !pristine.has(rel));
}

describe("--shard k/n and merge", () => {
  let source: string;
  let single: Map<string, string>;
  let pristine: Map<string, string>;
  const dirs: string[] = [];

  before(async () => {
    source = await makeTree();
    pristine = await snapshot(source);
    const whole = await tempDir("single-");
    dirs.push(whole);
    await cp(source, whole, { recursive: true, preserveTimestamps: true });
    const r = await runCli([whole, "--no-cache", "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    single = await snapshot(whole);
  });
  after(async () => {
    await removeDir(source);
    for (const d of dirs) await removeDir(d);
  });

  for (const n of [1, 3, 4]) {
    test(`${n} shards in separate processes and copies merge into the single run's tree, byte for byte`, async () => {
      const merged = await tempDir(`merged-${n}-`);
      dirs.push(merged);
      await cp(source, merged, { recursive: true, preserveTimestamps: true });
      const owners = new Map<string, number>();
      const runs = await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const copy = await tempDir(`shard-${i + 1}-of-${n}-`);
          dirs.push(copy);
          await cp(source, copy, { recursive: true, preserveTimestamps: true });
          const r = await runCli([copy, "--shard", `${i + 1}/${n}`, "--no-cache", "--json"]);
          assert.equal(r.code, 0, r.stderr);
          return { copy, index: i + 1, summary: JSON.parse(r.stdout) as { files: number } };
        }),
      );
      for (const { copy, index, summary } of runs) {
        const outputs = await shardOutputs(pristine, copy);
        assert.ok(outputs.includes(`.precompressor.shard-${index}-of-${n}.json`), outputs.join(","));
        assert.ok(!outputs.includes(".precompressor.json"));
        const partial = await loadManifest(copy, join(copy, `.precompressor.shard-${index}-of-${n}.json`));
        assert.equal(Object.keys(partial.files).length, summary.files);
        for (const rel of Object.keys(partial.files)) {
          assert.equal(owners.get(rel), undefined, `${rel} in two shards`);
          owners.set(rel, index);
        }
        // The artifact: only what this shard wrote, copied into the one tree.
        for (const rel of outputs) await cp(join(copy, rel), join(merged, rel), { preserveTimestamps: true });
      }
      const r = await runCli(["merge", merged]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`merged ${n} shards`));
      const result = await snapshot(merged);
      assert.deepEqual([...result.keys()], [...single.keys()]);
      for (const [rel, bytes] of single) assert.equal(result.get(rel), bytes, rel);
      await verifyVariants(merged);
      assert.deepEqual(
        (await readdir(merged)).filter((f) => f.includes(".shard-")),
        [],
        "partial manifests are removed",
      );
    });
  }

  test("shards share the work by bytes", async () => {
    const loads: number[] = [];
    for (let k = 1; k <= 3; k++) {
      const copy = await tempDir(`load-${k}-`);
      dirs.push(copy);
      await cp(source, copy, { recursive: true, preserveTimestamps: true });
      const r = await runCli([copy, "--shard", `${k}/3`, "--no-cache", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(r.stdout) as { encodings: { br?: { bytesBefore: number } } };
      loads.push(summary.encodings.br?.bytesBefore ?? 0);
    }
    const total = loads.reduce((a, b) => a + b, 0);
    // Within one large file (200 KB) of an even share.
    for (const load of loads) assert.ok(Math.abs(load - total / 3) <= 210_000, `${loads.join(", ")}`);
  });

  describe("the cache across shards and machines", () => {
    type States = { states: { compressed: number; restored: number } };
    /** One run on a fresh copy; every variant it lists (in its own manifest, partial or whole) decoded. */
    async function run(args: string[], shard?: string): Promise<States> {
      const copy = await tempDir("cache-run-");
      dirs.push(copy);
      await cp(source, copy, { recursive: true, preserveTimestamps: true });
      const r = await runCli([copy, "--json", ...args, ...(shard ? ["--shard", shard] : [])]);
      assert.equal(r.code, 0, r.stderr);
      const name = shard ? `.precompressor.shard-${shard.replace("/", "-of-")}.json` : ".precompressor.json";
      await verifyVariants(copy, await loadManifest(copy, join(copy, name)));
      return JSON.parse(r.stdout) as States;
    }

    test("a shard fills the cache, and the same shard on a clean copy restores all of it", async () => {
      const cache = await tempDir("cache-shard-");
      dirs.push(cache);
      const first = await run(["--cache-dir", cache], "2/3");
      assert.ok(first.states.compressed > 0);
      const again = await run(["--cache-dir", cache], "2/3");
      assert.equal(again.states.compressed, 0);
      assert.equal(again.states.restored, first.states.compressed);
    });

    test("two shards' caches merged by copying files restore a whole single run", async () => {
      const a = await tempDir("cache-a-");
      const b = await tempDir("cache-b-");
      dirs.push(a, b);
      await run(["--cache-dir", a], "1/2");
      await run(["--cache-dir", b], "2/2");
      await cp(b, a, { recursive: true, force: true });
      const whole = await run(["--cache-dir", a]);
      assert.equal(whole.states.compressed, 0);
      assert.ok(whole.states.restored > 0);
    });

    test("three runs at once sharing one cache folder leave no torn entry", async () => {
      const cache = await tempDir("cache-shared-");
      dirs.push(cache);
      const runs = await Promise.all([1, 2, 3].map(() => run(["--cache-dir", cache])));
      assert.ok(runs.every((r) => r.states.compressed + r.states.restored > 0));
      // Every entry is whole: a torn one would be discarded on read and compressed again.
      const after = await run(["--cache-dir", cache]);
      assert.equal(after.states.compressed, 0);
      assert.equal(after.states.restored, Math.max(...runs.map((r) => r.states.compressed + r.states.restored)));
    });
  });

  describe("merge refuses, naming the shard, and writes nothing", () => {
    async function shardedTree(n: number): Promise<string> {
      const dir = await tempDir(`refuse-${n}-`);
      dirs.push(dir);
      await cp(source, dir, { recursive: true, preserveTimestamps: true });
      for (let k = 1; k <= n; k++) {
        const r = await runCli([dir, "--shard", `${k}/${n}`, "--no-cache", "--quiet"]);
        assert.equal(r.code, 0, r.stderr);
      }
      return dir;
    }
    async function refused(dir: string, pattern: RegExp): Promise<void> {
      const beforeMerge = await snapshot(dir);
      const r = await runCli(["merge", dir]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.deepEqual(await snapshot(dir), beforeMerge);
    }

    test("a missing shard", async () => {
      const dir = await shardedTree(3);
      await rm(join(dir, ".precompressor.shard-2-of-3.json"));
      await refused(dir, /\.precompressor\.shard-2-of-3\.json: missing/);
    });
    test("a shard of another n", async () => {
      const dir = await shardedTree(2);
      const r = await runCli([dir, "--shard", "3/3", "--no-cache", "--quiet"]);
      assert.equal(r.code, 0, r.stderr);
      await refused(dir, /shard-\d-of-\d\.json: written by a run of \d shards/);
    });
    test("a shard written with other settings", async () => {
      const dir = await shardedTree(2);
      const r = await runCli([dir, "--shard", "2/2", "--no-cache", "--quiet", "--gzip-level", "6"]);
      assert.equal(r.code, 0, r.stderr);
      await refused(dir, /shard-2-of-2\.json: written with other settings/);
    });
    test("a file listed by two shards (a duplicated shard)", async () => {
      const dir = await shardedTree(2);
      const one = JSON.parse(await readFile(join(dir, ".precompressor.shard-1-of-2.json"), "utf8"));
      const two = JSON.parse(await readFile(join(dir, ".precompressor.shard-2-of-2.json"), "utf8"));
      two.files = { ...two.files, ...one.files };
      await writeFile(join(dir, ".precompressor.shard-2-of-2.json"), JSON.stringify(two));
      await refused(dir, /shard-2-of-2\.json: lists ".*", as shard 1 does/);
    });
    test("a partial manifest renamed to another shard's name", async () => {
      const dir = await shardedTree(2);
      await rm(join(dir, ".precompressor.shard-2-of-2.json"));
      await cp(join(dir, ".precompressor.shard-1-of-2.json"), join(dir, ".precompressor.shard-2-of-2.json"));
      await refused(dir, /shard-2-of-2\.json: its content says shard \{"index":1,"count":2\}/);
    });
    test("no partial manifest at all", async () => {
      const dir = await tempDir("none-");
      dirs.push(dir);
      await refused(dir, /no partial manifest/);
    });
  });

  test("--shard with a bad value or with --manifest is a usage error naming the flag", async () => {
    for (const args of [
      ["--shard", "4/3"],
      ["--shard", "x"],
      ["--shard", "1/2", "--manifest", "/tmp/m.json"],
    ]) {
      const r = await runCli([source, ...args, "--no-cache"]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /--shard/);
    }
  });
});
