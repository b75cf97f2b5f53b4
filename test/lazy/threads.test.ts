import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { settingsDigest } from "../../src/build/settings.js";
import { cacheEntryPath, decodeVariant } from "../../src/cache.js";
import { hashBytes } from "../../src/hash.js";
import { threads } from "../../src/lazy/threads.js";
import type { LazyTask } from "../../src/lazy/worker.js";
import { ROOT, removeDir, tempDir } from "../support/helpers.js";

const CODE = readFileSync(join(ROOT, "node_modules", "typescript", "lib", "typescript.js")).subarray(0, 1_000_000);

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));

async function taskFor(bytes: Buffer, level: number): Promise<LazyTask> {
  const base = await tempDir("lazy-threads-");
  dirs.push(base);
  const source = join(base, "a.js");
  await writeFile(source, bytes);
  const digest = settingsDigest({ encoding: "br", level, minSize: 1024, minRatio: 0.95 });
  const common = { encoding: "br", kind: "text", minRatio: 0.95, maxBytes: 1e9 } as const;
  return { ...common, source, sourceHash: hashBytes(bytes), level, cacheDir: join(base, "cache"), digest };
}

describe("lazy threads", () => {
  const pool = threads({ concurrency: 1, timeoutMs: 60_000 });
  // br 11 on 1 MB takes seconds: far past this limit wherever the tests run.
  const tight = threads({ concurrency: 1, timeoutMs: 50 });
  after(() => Promise.all([pool.destroy(), tight.destroy()]));

  it("compresses on a thread into the cache, and the entry decodes to the source", async () => {
    const bytes = CODE.subarray(0, 50_000);
    const task = await taskFor(bytes, 5);
    const outcome = await pool.compress(task);
    const written = await readFile(cacheEntryPath(task.cacheDir, task.digest, task.sourceHash));
    assert.ok((await decodeVariant("br", written)).equals(bytes));
    assert.deepEqual(outcome, { kind: "ready", size: written.length, hash: hashBytes(written), compressed: true });
  });

  it("turns the worker's failure and its own time limit into error outcomes, never rejections", async () => {
    const blocked = await taskFor(CODE.subarray(0, 5000), 5);
    // A file where the cache folder must be: the write fails on the thread.
    await writeFile(blocked.cacheDir, "in the way");
    const failed = await pool.compress(blocked);
    assert.equal(failed.kind === "error" && failed.code, "E_WRITE");
    const slow = await tight.compress(await taskFor(CODE, 11));
    assert.deepEqual(slow, { kind: "error", code: "E_COMPRESS", message: "took longer than 50 ms" });
  });
});
