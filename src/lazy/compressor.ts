// Lazy mode: compress on first request what the build did not, once per content, into a
// bounded on-disk cache, off the event loop, never making a request wait past maxWaitMs.
import type { Stats } from "node:fs";
import { realpath, rm, stat, utimes } from "node:fs/promises";
import { resolve } from "node:path";
import { Piscina } from "piscina";
import { settingsDigest } from "../build/settings.js";
import { cacheEntryPath, emptyCache, evictCache } from "../cache.js";
import { PrecompressorError } from "../errors.js";
import { ALL_ENCODINGS, brotliKindOf, isCompressible } from "../formats.js";
import { checkLevel, checkMinRatio, DEFAULT_MIN_SIZE } from "../limits.js";
import type { Encoding } from "../manifest-format.js";
import { markCacheDir } from "../ownership.js";
import { isSafeRelativePath } from "../paths.js";
import { hashRegularFile, realInside } from "../serve/open.js";
import { isHidden } from "../serve/resolver.js";
import type { LazyOutcome, LazyTask } from "./worker.js";

/** Run from TypeScript sources (tests via tsx) or from the built dist/. */
const workerUrl = new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);

/**
 * Lazy levels are lower than the build's: on a 1 MiB JS file br 5 takes ~30 ms (17.1 %) where br 9
 * takes ~150 ms (16.5 %) and br 11 ~3 s (14.4 %); gzip 6 matches gzip 9's size at half the time;
 * zstd 9 ~60 ms (17.2 %) on the bindings. At ~30 MB/s a typical file is ready for its first
 * requests, and a burst of uploads does not queue for minutes on one thread.
 */
export const LAZY_LEVELS: Readonly<Record<Encoding, number>> = { gzip: 6, br: 5, zstd: 9 };

/** Compressions waiting for a thread; past this, requests are served identity and retried later. */
const MAX_QUEUE = 1000;
/** A failed key is retried after this long, so a transient error (disk full) does not stick forever. */
const FAILURE_RETRY_MS = 10 * 60_000;
/** The LRU clock (cache file mtime) is advanced, and the entry's presence checked, at most this often. */
const TOUCH_INTERVAL_MS = 1000;

export interface LazyOptions {
  /** The served folder; only regular files inside it (after resolving symlinks) are compressed. */
  root: string;
  /** Where variants are kept, keyed by content hash, encoding and settings. Shareable by processes. */
  cacheDir: string;
  /** Bytes the cache directory may hold; least recently used entries go first. Default 256 MiB. */
  maxSize?: number;
  /** Longest a request waits for a compression before it is served identity. Default 50. */
  maxWaitMs?: number;
  /** Time limit of one compression; past it the work is stopped and the key served identity. Default 30 s. */
  timeoutMs?: number;
  /** Compression threads. Default 1: lazy work must leave CPU for requests. */
  concurrency?: number;
  /** Encodings lazy mode produces; others get `undefined`. Default gzip, br, zstd. */
  encodings?: Encoding[];
  /** Per-encoding levels. Default {@link LAZY_LEVELS}. */
  levels?: Partial<Record<Encoding, number>>;
  /** Smaller files are served identity. Default 1024. */
  minSize?: number;
  /** A variant is kept only if at most this fraction of the source. Default 0.95. */
  minRatio?: number;
  /** Larger files are served identity (they are read whole into memory). Default 32 MiB. */
  maxFileSize?: number;
  /** How often in-memory state of keys not requested since is dropped, and the cache size enforced. Default 60 s. */
  reapIntervalMs?: number;
  /** Told about failed compressions, once per key (not per request). Default: `console.warn`. */
  onError?: (error: PrecompressorError) => void;
}

/** A variant ready on disk. */
export interface LazyVariant {
  /** Absolute path of the encoded file in the cache; open it, and serve identity if it is gone (just evicted). */
  path: string;
  encoding: Encoding;
  /** Bytes of the encoded file. */
  size: number;
  /** `sha256-<base64url>` of the encoded bytes. */
  hash: string;
  /** `sha256-<base64url>` of the source: the ETag basis. */
  sourceHash: string;
  /** Modification time of the source the variant was made from: Last-Modified. */
  mtimeMs: number;
}

/** Counters for tests and monitoring; live, read-only to callers. */
export interface LazyMetrics {
  /** Compressions actually run (the single-flight count). */
  readonly compressions: number;
  /** Entries found on disk (another process, an earlier run) and verified instead of compressed. */
  readonly adopted: number;
  /** Calls answered with a variant. */
  readonly hits: number;
  /** Calls answered `undefined`, for any reason below or none (ineligible, not worth it, failed). */
  readonly misses: number;
  /** Calls refused: outside the root, dotfile, manifest, not a regular file, ineligible type or size. */
  readonly refused: number;
  /** Calls that stopped waiting at `maxWaitMs`. */
  readonly timeouts: number;
  /** Calls whose signal aborted while they waited. */
  readonly aborted: number;
  /** Compressions that showed the encoding is not worth it (remembered, not retried). */
  readonly notWorthIt: number;
  /** Results dropped because the source changed during the work. */
  readonly stale: number;
  /** Failed or timed-out compressions. */
  readonly errors: number;
  /** Bytes the LRU eviction removed. */
  readonly evictedBytes: number;
  /** Keys held in memory now. */
  readonly tracked: number;
  /** Compressions running or queued now. */
  readonly inFlight: number;
}

/** The lazy compressor the adapters call on requests the manifest cannot answer. */
export interface LazyCompressor {
  /**
   * The variant of `rel` (a POSIX path relative to the root, no leading slash, already URL-decoded)
   * in `encoding`, or `undefined`: serve identity. Never rejects and never waits longer than
   * `maxWaitMs` or past `signal`'s abort; the compression it starts goes on in the background.
   */
  variant(rel: string, encoding: Encoding, signal?: AbortSignal): Promise<LazyVariant | undefined>;
  /** Drop the cached variants of one file (its current content and the last one seen), or of all files. */
  purge(rel?: string): Promise<void>;
  /** Resolves when no compression, hash or eviction is under way (tests, graceful shutdown). */
  idle(): Promise<void>;
  /** Stop the reaper and the threads; running compressions are abandoned. Later calls get `undefined`. */
  close(): Promise<void>;
  readonly metrics: LazyMetrics;
}

/** What a source file looked like when hashed: any write changes ctime, a replace changes the inode. */
type Signature = string;
const signatureOf = (s: Stats): Signature => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;

interface Source {
  signature: Signature;
  mtimeMs: number;
  /** Shared by concurrent requests; `undefined` when the file changed while it was read. */
  hash: Promise<string | undefined>;
  usedAt: number;
}

type Entry =
  | { state: "pending"; done: Promise<void>; usedAt: number }
  | { state: "ready"; path: string; size: number; hash: string; usedAt: number; touchedAt: number }
  | { state: "none"; usedAt: number }
  | { state: "failed"; failedAt: number; usedAt: number };

function positive(name: string, value: number): number {
  if (!(value > 0)) throw new PrecompressorError("E_BAD_OPTION", `lazy.${name}: expected a positive number`);
  return value;
}

/** A request path the lazy compressor may look at: the serving path rule, nothing hidden, compressible. */
function eligibleName(rel: string): boolean {
  return typeof rel === "string" && isSafeRelativePath(rel) && !isHidden(rel) && isCompressible(rel);
}

/**
 * Create the lazy compressor of one served folder.
 *
 * @example
 * const lazy = createLazyCompressor({ root: "dist", cacheDir: "/var/cache/site" });
 * const v = await lazy.variant("uploads/report.json", "br", abortSignalOfTheRequest);
 * if (v) serve(v.path, { "Content-Encoding": "br", ETag: `"${v.sourceHash}-br"` });
 */
export function createLazyCompressor(options: LazyOptions): LazyCompressor {
  const root = resolve(options.root);
  const cacheDir = resolve(options.cacheDir);
  const maxSize = positive("maxSize", options.maxSize ?? 256 * 1024 * 1024);
  const maxWaitMs = Math.max(0, options.maxWaitMs ?? 50);
  const timeoutMs = positive("timeoutMs", options.timeoutMs ?? 30_000);
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
  const encodings = new Set(options.encodings ?? ALL_ENCODINGS);
  const minSize = Math.max(0, options.minSize ?? DEFAULT_MIN_SIZE);
  const minRatio = checkMinRatio("lazy.minRatio", options.minRatio);
  const maxFileSize = options.maxFileSize ?? 32 * 1024 * 1024;
  const reapIntervalMs = positive("reapIntervalMs", options.reapIntervalMs ?? 60_000);
  const onError = options.onError ?? ((e: PrecompressorError) => console.warn(`precompressor: ${e.message}`));
  const levels = {} as Record<Encoding, number>;
  const digests = {} as Record<Encoding, string>;
  for (const encoding of encodings) {
    if (!ALL_ENCODINGS.includes(encoding)) throw new PrecompressorError("E_BAD_OPTION", `lazy: unknown "${encoding}"`);
    levels[encoding] = checkLevel(
      `lazy.levels.${encoding}`,
      encoding,
      options.levels?.[encoding] ?? LAZY_LEVELS[encoding],
    );
    digests[encoding] = settingsDigest({ encoding, level: levels[encoding], minSize, minRatio });
  }

  const counts = {
    compressions: 0,
    adopted: 0,
    hits: 0,
    misses: 0,
    refused: 0,
    timeouts: 0,
    aborted: 0,
    notWorthIt: 0,
    stale: 0,
    errors: 0,
    evictedBytes: 0,
  };
  const sources = new Map<string, Source>();
  const entries = new Map<string, Entry>();
  /** Everything under way, so idle() can wait for it. */
  const busy = new Set<Promise<unknown>>();
  const queue: (() => void)[] = [];
  let running = 0;
  let closed = false;
  let pool: Piscina | undefined;
  let evicting: Promise<void> | undefined;
  let evictAgain = false;
  let wroteSinceEvict = false;

  const track = <T>(p: Promise<T>): Promise<T> => {
    busy.add(p);
    p.then(
      () => busy.delete(p),
      () => busy.delete(p),
    );
    return p;
  };

  // Real paths, once: the root's to contain requests, the cache's so it is never served from.
  const places = track(
    (async () => {
      // Created and tagged, or refused when it holds someone else's files: never emptied.
      await markCacheDir(cacheDir, "lazy.cacheDir");
      return { root: await realpath(root), cache: await realpath(cacheDir) };
    })(),
  );
  places.then(
    // An earlier run or a smaller maxSize may have left the folder over the bound.
    () => evict(),
    (cause) =>
      onError(
        cause instanceof PrecompressorError
          ? cause
          : new PrecompressorError("E_INPUT_NOT_FOUND", `lazy mode: ${(cause as Error).message}`, { cause }),
      ),
  );

  /** The real path of an eligible regular file inside the root, with its stat; `undefined` otherwise. */
  async function locate(rel: string): Promise<{ real: string; stats: Stats } | undefined> {
    if (!eligibleName(rel)) return undefined;
    const at = await places;
    // The serving opener's containment rule: inside the root, nothing hidden, never the cache.
    const real = await realInside(at.root, rel, { exclude: at.cache });
    if (!real) return undefined;
    const stats = await stat(real).catch(() => undefined);
    if (!stats?.isFile() || stats.size < minSize || stats.size > maxFileSize) return undefined;
    return { real, stats };
  }

  /** The content hash of the file as `stats` describes it, hashed once per signature. */
  function sourceOf(real: string, stats: Stats): Source {
    const signature = signatureOf(stats);
    const known = sources.get(real);
    if (known?.signature === signature) return known;
    // Hashed without blocking: the path may have become a FIFO since it was stat'ed.
    const hash = hashRegularFile(real).then(
      // A write during the read leaves a hash of no real content: use it for nothing.
      async (h) => ((await stat(real).then(signatureOf, () => "")) === signature ? h : undefined),
      () => undefined,
    );
    const source: Source = { signature, mtimeMs: stats.mtimeMs, hash, usedAt: Date.now() };
    sources.set(real, source);
    hash.then((h) => {
      // Forget a torn read, so the next request hashes again.
      if (h === undefined && sources.get(real) === source) sources.delete(real);
    });
    return source;
  }

  function getPool(): Piscina {
    pool ??= new Piscina({ filename: workerUrl.href, minThreads: 0, maxThreads: concurrency, idleTimeout: 30_000 });
    return pool;
  }

  /** Start the one compression of `key`; later callers find the entry and wait on it or reuse it. */
  function start(key: string, task: LazyTask): Entry | undefined {
    if (queue.length >= MAX_QUEUE) return undefined;
    let release = () => {};
    const turn = new Promise<void>((go) => {
      if (running < concurrency) go();
      else queue.push(go);
    }).then(() => {
      running += 1;
      release = () => {
        running -= 1;
        queue.shift()?.();
      };
    });
    // The limit counts from when the work starts, not from when it was queued.
    const run = turn
      .then(() => {
        if (closed) throw new Error("closed");
        return getPool().run(task, { signal: AbortSignal.timeout(timeoutMs) }) as Promise<LazyOutcome>;
      })
      .catch(
        (error: Error): LazyOutcome => ({
          kind: "error",
          code: "E_COMPRESS",
          message: error.name === "AbortError" ? `took longer than ${timeoutMs} ms` : error.message,
        }),
      )
      .finally(() => release());
    const entry: Entry = {
      state: "pending",
      done: track(run.then((outcome) => settle(key, entry, task, outcome))),
      usedAt: Date.now(),
    };
    entries.set(key, entry);
    return entry;
  }

  function settle(key: string, entry: Entry, task: LazyTask, outcome: LazyOutcome): void {
    if (closed) return;
    const path = cacheEntryPath(cacheDir, task.digest, task.sourceHash);
    if ((outcome.kind === "ready" || outcome.kind === "not-worth-it") && outcome.compressed) counts.compressions += 1;
    if (entries.get(key) !== entry) {
      // Purged while it ran: what it wrote must not outlive the purge.
      if (outcome.kind === "ready") track(rm(path, { force: true }));
      return;
    }
    const usedAt = entry.usedAt;
    switch (outcome.kind) {
      case "ready":
        if (!outcome.compressed) counts.adopted += 1;
        entries.set(key, {
          state: "ready",
          path,
          size: outcome.size,
          hash: outcome.hash,
          usedAt,
          touchedAt: Date.now(),
        });
        if (outcome.compressed) {
          wroteSinceEvict = true;
          evict();
        }
        return;
      case "not-worth-it":
        counts.notWorthIt += 1;
        entries.set(key, { state: "none", usedAt });
        return;
      case "stale":
        counts.stale += 1;
        entries.delete(key);
        return;
      case "error":
        counts.errors += 1;
        entries.set(key, { state: "failed", failedAt: Date.now(), usedAt });
        onError(
          new PrecompressorError(outcome.code, `${task.source}: lazy ${task.encoding} failed: ${outcome.message}`, {
            path: task.source,
          }),
        );
    }
  }

  /** One LRU pass at a time; a write during a pass asks for one more. */
  function evict(): void {
    if (evicting) {
      evictAgain = true;
      return;
    }
    wroteSinceEvict = false;
    evicting = track(
      (async () => {
        do {
          evictAgain = false;
          // Unlink, never truncate: a process that opened an entry keeps reading it.
          const freed = await evictCache(cacheDir, maxSize);
          counts.evictedBytes += freed;
          // Which entries went is not known: have each one's next hit check that it is still there.
          if (freed > 0) for (const entry of entries.values()) if (entry.state === "ready") entry.touchedAt = 0;
        } while (evictAgain && !closed);
      })()
        .catch(() => {})
        .finally(() => {
          evicting = undefined;
        }),
    );
  }

  async function find(rel: string, encoding: Encoding): Promise<LazyVariant | undefined> {
    const found = await locate(rel);
    if (!found) {
      counts.refused += 1;
      return undefined;
    }
    const { real, stats } = found;
    const source = sourceOf(real, stats);
    const now = Date.now();
    source.usedAt = now;
    const sourceHash = await source.hash;
    if (!sourceHash) return undefined;
    const key = `${sourceHash} ${encoding}`;
    let entry = entries.get(key);
    if (entry?.state === "ready" && now - entry.touchedAt >= TOUCH_INTERVAL_MS) {
      // Once a second, not per request: advance the LRU clock, which also tells whether it was evicted
      // (by us or another process sharing the folder). Within that second the adapter's open may find
      // it gone, and serves identity.
      entry.touchedAt = now;
      const date = new Date(now);
      if (
        !(await utimes(entry.path, date, date).then(
          () => true,
          () => false,
        ))
      ) {
        // A concurrent request may already have restarted it.
        if (entries.get(key) === entry) entries.delete(key);
        entry = entries.get(key);
      }
    }
    if (entry?.state === "failed" && now - entry.failedAt > FAILURE_RETRY_MS) entry = undefined;
    entry ??= start(key, {
      source: real,
      sourceHash,
      encoding,
      level: levels[encoding],
      kind: brotliKindOf(rel),
      minRatio,
      cacheDir,
      digest: digests[encoding],
      maxBytes: maxSize,
    });
    if (!entry) return undefined;
    entry.usedAt = now;
    if (entry.state === "pending") {
      await entry.done;
      entry = entries.get(key);
      // The file may have changed while we waited: its new content has another key.
      if ((await stat(real).then(signatureOf, () => "")) !== source.signature) return undefined;
    }
    if (entry?.state !== "ready") return undefined;
    return { path: entry.path, encoding, size: entry.size, hash: entry.hash, sourceHash, mtimeMs: source.mtimeMs };
  }

  function reap(): void {
    const before = Date.now() - reapIntervalMs;
    for (const [key, entry] of entries) {
      if (entry.state !== "pending" && entry.usedAt < before) entries.delete(key);
    }
    for (const [real, source] of sources) {
      if (source.usedAt < before) sources.delete(real);
    }
    if (wroteSinceEvict) evict();
  }
  const reaper = setInterval(reap, reapIntervalMs);
  // The reaper alone must not keep a process alive.
  reaper.unref();

  return {
    variant(rel, encoding, signal) {
      if (closed || signal?.aborted || !encodings.has(encoding)) {
        counts.misses += 1;
        return Promise.resolve(undefined);
      }
      const work = track(find(rel, encoding).catch(() => undefined));
      return new Promise((answer) => {
        let settled = false;
        const finish = (v: LazyVariant | undefined, why?: "timeouts" | "aborted") => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          if (why) counts[why] += 1;
          counts[v ? "hits" : "misses"] += 1;
          answer(v);
        };
        const onAbort = () => finish(undefined, "aborted");
        const timer = setTimeout(() => finish(undefined, "timeouts"), maxWaitMs);
        signal?.addEventListener("abort", onAbort, { once: true });
        work.then((v) => finish(v));
      });
    },

    async purge(rel) {
      if (rel === undefined) {
        entries.clear();
        sources.clear();
        // Our entries only, and the folder stays: another process may be about to write into it.
        if (
          await places.then(
            () => true,
            () => false,
          )
        )
          await emptyCache(cacheDir);
        return;
      }
      const found = await locate(rel);
      if (!found) return;
      const hashes = new Set<string | undefined>([await sources.get(found.real)?.hash]);
      sources.delete(found.real);
      hashes.add(await sourceOf(found.real, found.stats).hash);
      sources.delete(found.real);
      for (const hash of hashes) {
        if (!hash) continue;
        for (const encoding of encodings) {
          entries.delete(`${hash} ${encoding}`);
          const path = cacheEntryPath(cacheDir, digests[encoding], hash);
          await Promise.all([rm(path, { force: true }), rm(`${path}.none`, { force: true })]);
        }
      }
    },

    async idle() {
      while (busy.size > 0) await Promise.allSettled([...busy]);
    },

    async close() {
      if (closed) return;
      closed = true;
      clearInterval(reaper);
      for (const go of queue.splice(0)) go();
      await pool?.destroy();
      await evicting;
      entries.clear();
      sources.clear();
    },

    metrics: Object.defineProperties(counts, {
      tracked: { get: () => entries.size, enumerable: true },
      inFlight: { get: () => running + queue.length, enumerable: true },
    }) as LazyMetrics,
  };
}
