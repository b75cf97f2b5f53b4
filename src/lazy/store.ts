// The bounded cache: what is known of each settled key (ready on disk, not worth it, failed), the
// LRU clock its hits advance, eviction to maxSize, the reaper of idle keys, and purges.
import { rm, utimes } from "node:fs/promises";
import { emptyCache, evictCache } from "../cache.js";

/** A failed key is retried after this long, so a transient error (disk full) does not stick forever. */
export const FAILURE_RETRY_MS = 10 * 60_000;
/** The LRU clock (cache file mtime) is advanced, and the entry's presence checked, at most this often. */
export const TOUCH_INTERVAL_MS = 1000;

/** A variant file in the cache, as the compression that wrote or verified it described it. */
export interface ReadyFile {
  path: string;
  size: number;
  hash: string;
}

export type Entry =
  | ({ state: "ready"; usedAt: number; touchedAt: number } & ReadyFile)
  | { state: "none"; usedAt: number }
  | { state: "failed"; failedAt: number; usedAt: number };

export interface StoreOptions {
  cacheDir: string;
  /** Bytes of entries the folder may hold after each eviction pass. */
  maxSize: number;
  /** Default {@link TOUCH_INTERVAL_MS}. */
  touchIntervalMs?: number;
  /** Default {@link FAILURE_RETRY_MS}. */
  failureRetryMs?: number;
  /** Told about work the store starts in the background, so the owner's `idle()` can wait for it. */
  track?: <T>(work: Promise<T>) => Promise<T>;
}

export interface Store {
  /** What is known of `key` at `now`, marked used; `undefined` if nothing, evicted, or failed long enough ago. */
  lookup(key: string, now: number): Promise<Entry | undefined>;
  /** What is known of `key`, as it is: no touch, no use. */
  peek(key: string): Entry | undefined;
  /** `key` has a file on disk; `wrote` (ours, just now) runs an eviction pass. */
  ready(key: string, file: ReadyFile, wrote: boolean): void;
  /** `key`'s encoding is not worth it: remembered, not retried. */
  none(key: string): void;
  /** `key` failed: answered `undefined` until the retry time has passed. */
  failed(key: string): void;
  /** Forget `key`: its next lookup finds nothing. */
  forget(key: string): void;
  /** Delete `paths` (a purged key's files, or what a run wrote after its key was purged). */
  discard(...paths: string[]): Promise<void>;
  /** Forget every key. */
  clear(): void;
  /** Delete every entry of ours in the folder; the folder and its tag stay. */
  empty(): Promise<void>;
  /** One LRU pass at a time; a call during a pass asks for one more. Resolves when they are done. */
  evict(): Promise<void>;
  /** Forget keys not used since `before`; enforce the bound if anything was written since the last pass. */
  reap(before: number): void;
  /** Stop eviction after its current pass, wait for it, and forget every key. */
  close(): Promise<void>;
  readonly size: number;
  /** Bytes the LRU eviction removed. */
  readonly evictedBytes: number;
}

/** Advance `path`'s modification time, the LRU clock; false when the file is gone. */
const touch = (path: string, now: number): Promise<boolean> =>
  utimes(path, new Date(now), new Date(now)).then(
    () => true,
    () => false,
  );

/**
 * LRU passes over one cache folder, one at a time: a call during a pass asks for one more, and a
 * write during a pass leaves one owed to the next `evictIfOwed`. `onFreed` hears of each pass that freed bytes.
 */
function evictor(options: Required<Pick<StoreOptions, "cacheDir" | "maxSize" | "track">>, onFreed: () => void) {
  let evictedBytes = 0;
  let evicting: Promise<void> | undefined;
  let again = false;
  let owed = false;
  let closed = false;

  function evict(): Promise<void> {
    if (evicting) {
      again = true;
      return evicting;
    }
    owed = false;
    evicting = options.track(
      (async () => {
        do {
          again = false;
          // Unlink, never truncate: a process that opened an entry keeps reading it.
          const freed = await evictCache(options.cacheDir, options.maxSize);
          evictedBytes += freed;
          if (freed > 0) onFreed();
        } while (again && !closed);
      })()
        .catch(() => {})
        .finally(() => {
          evicting = undefined;
        }),
    );
    return evicting;
  }

  return {
    evict,
    /** One of ours was just written: a pass now, or one owed if a pass is running. */
    wrote(): void {
      owed = true;
      evict();
    },
    evictIfOwed(): void {
      if (owed) evict();
    },
    async close(): Promise<void> {
      closed = true;
      await evicting;
    },
    get evictedBytes() {
      return evictedBytes;
    },
  };
}

/**
 * Create the store of one cache folder; the folder must exist and be ours (see `markCacheDir`).
 *
 * @example
 * const store = createStore({ cacheDir, maxSize: 256 * 1024 ** 2 });
 * store.ready(key, { path, size, hash }, true); // and evicts down to maxSize
 * const entry = await store.lookup(key, Date.now()); // touched: it is now the most recently used
 */
export function createStore(options: StoreOptions): Store {
  const { cacheDir, maxSize, touchIntervalMs = TOUCH_INTERVAL_MS, failureRetryMs = FAILURE_RETRY_MS } = options;
  const track = options.track ?? (<T>(work: Promise<T>) => work);
  const entries = new Map<string, Entry>();
  // Which entries a pass removed is not known: have each one's next hit check that it is still there.
  const eviction = evictor({ cacheDir, maxSize, track }, () => {
    for (const entry of entries.values()) if (entry.state === "ready") entry.touchedAt = 0;
  });

  async function lookup(key: string, now: number): Promise<Entry | undefined> {
    let entry = entries.get(key);
    if (entry?.state === "ready" && now - entry.touchedAt >= touchIntervalMs) {
      // Once a second, not per request: advance the LRU clock, which also tells whether it was evicted
      // (by us or another process sharing the folder). Within that second the adapter's open may find
      // it gone, and serves identity.
      entry.touchedAt = now;
      if (!(await touch(entry.path, now))) {
        // A concurrent request may already have made it again.
        if (entries.get(key) === entry) entries.delete(key);
        entry = entries.get(key);
      }
    }
    if (entry?.state === "failed" && now - entry.failedAt > failureRetryMs) return undefined;
    if (entry) entry.usedAt = now;
    return entry;
  }

  async function discard(...paths: string[]): Promise<void> {
    await track(Promise.all(paths.map((path) => rm(path, { force: true }))));
  }

  return {
    lookup,
    peek: (key) => entries.get(key),
    ready(key, file, wrote) {
      const now = Date.now();
      entries.set(key, { state: "ready", ...file, usedAt: now, touchedAt: now });
      if (wrote) eviction.wrote();
    },
    none(key) {
      entries.set(key, { state: "none", usedAt: Date.now() });
    },
    failed(key) {
      const now = Date.now();
      entries.set(key, { state: "failed", failedAt: now, usedAt: now });
    },
    forget(key) {
      entries.delete(key);
    },
    discard,
    clear() {
      entries.clear();
    },
    async empty() {
      // Our entries only, and the folder stays: another process may be about to write into it.
      await emptyCache(cacheDir);
    },
    evict: eviction.evict,
    reap(before) {
      for (const [key, entry] of entries) if (entry.usedAt < before) entries.delete(key);
      eviction.evictIfOwed();
    },
    async close() {
      await eviction.close();
      entries.clear();
    },
    get size() {
      return entries.size;
    },
    get evictedBytes() {
      return eviction.evictedBytes;
    },
  };
}
