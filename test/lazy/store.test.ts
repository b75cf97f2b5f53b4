import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { cacheEntryPath } from "../../src/cache.js";
import { hashBytes } from "../../src/hash.js";
import { createStore, type ReadyFile, type Store, type StoreOptions } from "../../src/lazy/store.js";
import { markCacheDir } from "../../src/ownership.js";
import { removeDir, tempDir } from "../support/helpers.js";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));

const DIGEST = hashBytes(Buffer.from("settings of one encoding"));

async function cacheFolder(): Promise<string> {
  const cacheDir = join(await tempDir("lazy-store-"), "cache");
  dirs.push(dirname(cacheDir));
  await markCacheDir(cacheDir, "test");
  return cacheDir;
}

/** A real entry file of `bytes` random bytes in the cache layout, last used `ageMs` ago. */
async function entryFile(cacheDir: string, name: string, bytes: number, ageMs: number): Promise<ReadyFile> {
  const path = cacheEntryPath(cacheDir, DIGEST, hashBytes(Buffer.from(name)));
  const content = randomBytes(bytes);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
  const then = new Date(Date.now() - ageMs);
  await utimes(path, then, then);
  return { path, size: bytes, hash: hashBytes(content) };
}

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(5);
  }
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** An entry file the store knows as ready (made by an earlier run: no eviction pass). */
async function readyEntry(store: Store, cacheDir: string, name: string, bytes: number, ageMs: number) {
  const file = await entryFile(cacheDir, name, bytes, ageMs);
  store.ready(name, file, false);
  return file;
}

async function storeWith(options: Partial<StoreOptions> = {}) {
  const cacheDir = await cacheFolder();
  return { cacheDir, store: createStore({ cacheDir, maxSize: 25_000, ...options }) };
}

describe("lazy store", () => {
  it("evicts the least recently used entries once a write takes the folder past maxSize", async () => {
    const { cacheDir, store } = await storeWith();
    const a = await readyEntry(store, cacheDir, "a", 10_000, 30_000);
    const b = await readyEntry(store, cacheDir, "b", 10_000, 20_000);
    await store.evict();
    assert.equal(store.evictedBytes, 0, "20 KB fit in 25 KB");

    const c = await entryFile(cacheDir, "c", 10_000, 0);
    store.ready("c", c, true);
    await store.evict();
    assert.equal(await exists(a.path), false, "the oldest entry goes first");
    assert.equal(await exists(b.path), true);
    assert.equal(await exists(c.path), true);
    assert.equal(store.evictedBytes, 10_000);
    // The evicted key is found missing on its next lookup, even within the touch interval.
    assert.equal(await store.lookup("a", Date.now()), undefined);
    assert.equal(store.peek("a"), undefined);
    assert.equal((await store.lookup("c", Date.now()))?.state, "ready");
  });

  it("a hit refreshes its entry's LRU clock, so the next eviction takes another one", async () => {
    const { cacheDir, store } = await storeWith({ touchIntervalMs: 0 });
    const a = await readyEntry(store, cacheDir, "a", 10_000, 30_000);
    const b = await readyEntry(store, cacheDir, "b", 10_000, 20_000);
    const before = (await stat(a.path)).mtimeMs;
    assert.equal((await store.lookup("a", Date.now()))?.state, "ready");
    assert.ok((await stat(a.path)).mtimeMs > before + 25_000, "the touch moves the mtime to now");

    store.ready("c", await entryFile(cacheDir, "c", 10_000, 10_000), true);
    await store.evict();
    assert.equal(await exists(a.path), true, "touched: kept");
    assert.equal(await exists(b.path), false, "now the least recently used: evicted");
  });

  it("touches at most once per interval, and forgets an entry another process deleted", async () => {
    const { cacheDir, store } = await storeWith({ touchIntervalMs: 200 });
    const a = await readyEntry(store, cacheDir, "a", 1000, 60_000);
    const old = new Date(Date.now() - 60_000);
    await utimes(a.path, old, old);
    await store.lookup("a", Date.now());
    assert.ok((await stat(a.path)).mtimeMs < old.getTime() + 1000, "within the interval: no touch");
    await sleep(250);
    await store.lookup("a", Date.now());
    assert.ok((await stat(a.path)).mtimeMs > old.getTime(), "past the interval: touched");

    // Another process sharing the folder evicted it.
    await rm(a.path);
    await sleep(250);
    assert.equal(await store.lookup("a", Date.now()), undefined);
    assert.equal(store.size, 0);
  });

  it("answers a failed key as failed until its retry time, then as unknown", async () => {
    const { store } = await storeWith({ failureRetryMs: 100 });
    store.failed("k");
    assert.equal((await store.lookup("k", Date.now()))?.state, "failed");
    await sleep(150);
    assert.equal(await store.lookup("k", Date.now()), undefined);
    // Kept until a new run decides the key: the caller forgets it when it starts one.
    assert.equal(store.peek("k")?.state, "failed");
    store.forget("k");
    assert.equal(store.size, 0);
  });

  it("the reaper drops keys not used for an interval, failed and not-worth-it ones included", async () => {
    const { cacheDir, store } = await storeWith();
    store.failed("failed");
    store.none("none");
    store.ready("ready", await entryFile(cacheDir, "r", 1000, 0), false);
    await sleep(60);
    await store.lookup("ready", Date.now());
    store.reap(Date.now() - 30);
    assert.equal(store.peek("failed"), undefined);
    assert.equal(store.peek("none"), undefined);
    assert.equal(store.peek("ready")?.state, "ready", "used within the interval: kept");
    assert.equal(store.size, 1);
  });

  it("the reaper runs the pass a write during another pass left owed, and no pass otherwise", async () => {
    const { cacheDir, store } = await storeWith({ maxSize: 5000 });
    const a = await entryFile(cacheDir, "a", 2000, 30_000);
    const b = await entryFile(cacheDir, "b", 2000, 20_000);
    store.ready("a", a, true);
    // Written during a's pass: that pass goes round once more, and the reaper owes one more.
    store.ready("b", b, true);
    await store.evict();
    // Another process sharing the folder takes it past the bound.
    await entryFile(cacheDir, "c", 2000, 10_000);
    store.reap(0);
    await until(async () => !(await exists(a.path)));
    assert.equal(await exists(b.path), true);

    // Nothing of ours written since: the reaper leaves the folder alone.
    await entryFile(cacheDir, "d", 2000, 5_000);
    store.reap(0);
    await sleep(200);
    assert.equal(await exists(b.path), true);
  });

  it("eviction unlinks: a reader that opened an entry before it went reads all of it", async () => {
    const { cacheDir, store } = await storeWith({ maxSize: 15_000 });
    const a = await readyEntry(store, cacheDir, "a", 10_000, 30_000);
    const reader = await open(a.path);
    try {
      store.ready("b", await entryFile(cacheDir, "b", 10_000, 0), true);
      await store.evict();
      assert.equal(await exists(a.path), false);
      const { buffer, bytesRead } = await reader.read(Buffer.alloc(20_000), 0, 20_000, 0);
      assert.equal(bytesRead, a.size);
      assert.equal(hashBytes(buffer.subarray(0, bytesRead)), a.hash);
    } finally {
      await reader.close();
    }
  });

  it("one eviction pass at a time: a call during a pass shares it", async () => {
    const { cacheDir, store } = await storeWith({ maxSize: 5000 });
    const a = await entryFile(cacheDir, "a", 4000, 20_000);
    const b = await entryFile(cacheDir, "b", 4000, 0);
    const first = store.evict();
    assert.equal(store.evict(), first);
    await first;
    assert.equal(await exists(a.path), false);
    assert.equal(await exists(b.path), true);
    assert.equal(store.evictedBytes, 4000);
  });

  it("discard and empty delete files; clear and close forget every key", async () => {
    const { cacheDir, store } = await storeWith();
    const a = await readyEntry(store, cacheDir, "a", 1000, 0);
    const b = await readyEntry(store, cacheDir, "b", 1000, 0);
    await store.discard(a.path, `${a.path}.none`);
    assert.equal(await exists(a.path), false);
    assert.equal(store.peek("a")?.state, "ready", "discard touches files only");
    store.clear();
    assert.equal(store.size, 0);
    await store.empty();
    assert.equal(await exists(b.path), false);
    assert.ok((await readdir(cacheDir)).includes("CACHEDIR.TAG"), "the folder stays ours");
    store.none("n");
    await store.close();
    assert.equal(store.size, 0);
  });
});
