// Lazy mode: compress on first request what the build did not, once per content, into a
// bounded on-disk cache, off the event loop, never making a request wait past maxWaitMs.
// This file wires the options, sources, single flight and store together, and holds the public types.
import { realpath } from "node:fs/promises";
import { cacheEntryPath, notWorthItPath } from "../cache.js";
import { PrecompressorError } from "../errors.js";
import { brotliKindOf } from "../formats.js";
import type { Encoding } from "../manifest-format.js";
import { markCacheDir } from "../ownership.js";
import { createFlight, type Flight } from "./flight.js";
import { type LazyOptions, type LazySettings, resolveLazyOptions } from "./options.js";
import { createSources, type Places, type Sources } from "./source.js";
import { createStore, type Store } from "./store.js";
import { threads } from "./threads.js";
import type { LazyOutcome, LazyTask } from "./worker.js";

export type { LazyOptions } from "./options.js";
export { LAZY_LEVELS } from "./options.js";

/** Compressions waiting for a thread; past this, requests are served identity and retried later. */
const MAX_QUEUE = 1000;

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

/**
 * Counters for tests and monitoring; live, read-only to callers.
 *
 * @example
 * const { hits, misses, compressions } = lazy.metrics;
 */
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

/**
 * The lazy compressor the adapters call on requests the manifest cannot answer.
 *
 * @example
 * const v = await lazy.variant("uploads/report.json", "br", request.signal);
 * await lazy.purge("uploads/report.json");
 */
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

/** The counters kept here; the others are read from the store and the flight. */
type Counts = { -readonly [K in Exclude<keyof LazyMetrics, "evictedBytes" | "tracked" | "inFlight">]: number };

/** One compressor's parts, shared by the steps below. */
interface Parts {
  settings: LazySettings;
  places: Promise<Places>;
  sources: Sources;
  store: Store;
  flight: Flight<void>;
  counts: Counts;
  /** Everything under way is tracked, so idle() can wait for it. */
  track: <T>(work: Promise<T>) => Promise<T>;
  /** The compression on a thread, as an outcome: it never rejects. */
  compress: (task: LazyTask) => Promise<LazyOutcome>;
  isClosed: () => boolean;
}

/** The key of one content in one encoding; the settings digest is in the cache path. */
const keyOf = (sourceHash: string, encoding: Encoding): string => `${sourceHash} ${encoding}`;

/** Record what one compression found, once for the key; a key purged meanwhile records nothing. */
function settle(parts: Parts, key: string, task: LazyTask, outcome: LazyOutcome, current: boolean): void {
  if (parts.isClosed()) return;
  const { counts, store } = parts;
  const path = cacheEntryPath(task.cacheDir, task.digest, task.sourceHash);
  if ((outcome.kind === "ready" || outcome.kind === "not-worth-it") && outcome.compressed) counts.compressions += 1;
  if (!current) {
    // Purged while it ran: what it wrote must not outlive the purge.
    if (outcome.kind === "ready") store.discard(path);
    return;
  }
  switch (outcome.kind) {
    case "ready":
      if (!outcome.compressed) counts.adopted += 1;
      store.ready(key, { path, size: outcome.size, hash: outcome.hash }, outcome.compressed);
      return;
    case "not-worth-it":
      counts.notWorthIt += 1;
      store.none(key);
      return;
    case "stale":
      // Nothing is recorded: the next request hashes the new content, which has another key.
      counts.stale += 1;
      return;
    case "error":
      counts.errors += 1;
      store.failed(key);
      parts.settings.onError(
        new PrecompressorError(outcome.code, `${task.source}: lazy ${task.encoding} failed: ${outcome.message}`, {
          path: task.source,
        }),
      );
  }
}

/** Start the one compression of `key`; `undefined` when the queue is full. */
function start(parts: Parts, key: string, task: LazyTask): Promise<void> | undefined {
  const run = parts.flight.run(key, async (current) => settle(parts, key, task, await parts.compress(task), current()));
  if (!run) return undefined;
  // An old failure's retry: this run decides the key now.
  parts.store.forget(key);
  return parts.track(run);
}

/** The variant of `rel`, after the one compression of its key if there is none yet; no time limit here. */
async function find(parts: Parts, rel: string, encoding: Encoding): Promise<LazyVariant | undefined> {
  const { sources, store, settings } = parts;
  const found = await sources.locate(rel);
  if (!found) {
    parts.counts.refused += 1;
    return undefined;
  }
  const { real } = found;
  const source = sources.of(real, found.stats);
  const now = Date.now();
  const sourceHash = await source.hash;
  if (!sourceHash) return undefined;
  const key = keyOf(sourceHash, encoding);
  let entry = await store.lookup(key, now);
  if (!entry) {
    const run =
      parts.flight.get(key) ??
      start(parts, key, {
        source: real,
        sourceHash,
        encoding,
        level: settings.levels[encoding],
        kind: brotliKindOf(rel),
        minRatio: settings.minRatio,
        cacheDir: settings.cacheDir,
        digest: settings.digests[encoding],
        maxBytes: settings.maxSize,
      });
    if (!run) return undefined;
    await run;
    entry = store.peek(key);
    // The file may have changed while we waited: its new content has another key.
    if (!(await sources.unchanged(real, source.signature))) return undefined;
  }
  if (entry?.state !== "ready") return undefined;
  return { path: entry.path, encoding, size: entry.size, hash: entry.hash, sourceHash, mtimeMs: source.mtimeMs };
}

/** `work`'s answer, or `undefined` once `maxWaitMs` has passed or `signal` aborted, whichever is first. */
function answerWithin(parts: Parts, work: Promise<LazyVariant | undefined>, signal?: AbortSignal) {
  const { counts } = parts;
  return new Promise<LazyVariant | undefined>((answer) => {
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
    const timer = setTimeout(() => finish(undefined, "timeouts"), parts.settings.maxWaitMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    work.then((v) => finish(v));
  });
}

/** Drop one file's keys and files: its current content's and the last one seen. */
async function purgeFile(parts: Parts, rel: string): Promise<void> {
  const { sources, store, settings } = parts;
  const found = await sources.locate(rel);
  if (!found) return;
  const hashes = new Set<string | undefined>([await sources.known(found.real)?.hash]);
  sources.forget(found.real);
  hashes.add(await sources.of(found.real, found.stats).hash);
  sources.forget(found.real);
  for (const hash of hashes) {
    if (!hash) continue;
    for (const encoding of settings.encodings) {
      const key = keyOf(hash, encoding);
      parts.flight.forget(key);
      store.forget(key);
      const path = cacheEntryPath(settings.cacheDir, settings.digests[encoding], hash);
      await store.discard(path, notWorthItPath(path));
    }
  }
}

/** Drop every key and every entry of ours; the cache folder is emptied only if it is ours. */
async function purgeAll(parts: Parts): Promise<void> {
  parts.flight.forget();
  parts.sources.forget();
  parts.store.clear();
  const ours = await parts.places.then(
    () => true,
    () => false,
  );
  if (ours) await parts.store.empty();
}

/** The set of work under way, and a wait for all of it (and what it starts) to end. */
function tracker() {
  const busy = new Set<Promise<unknown>>();
  return {
    track<T>(p: Promise<T>): Promise<T> {
      busy.add(p);
      p.then(
        () => busy.delete(p),
        () => busy.delete(p),
      );
      return p;
    },
    async idle(): Promise<void> {
      while (busy.size > 0) await Promise.allSettled([...busy]);
    },
  };
}

/** The root's and the cache's real paths, once the cache folder is created and tagged as ours. */
async function setUpPlaces({ root, cacheDir }: LazySettings): Promise<Places> {
  // Created and tagged, or refused when it holds someone else's files: never emptied.
  await markCacheDir(cacheDir, "lazy.cacheDir");
  return { root: await realpath(root), cache: await realpath(cacheDir) };
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
  const settings = resolveLazyOptions(options);
  const { track, idle } = tracker();
  const pool = threads(settings);
  const places = track(setUpPlaces(settings));
  const store = createStore({ cacheDir: settings.cacheDir, maxSize: settings.maxSize, track });
  const flight = createFlight<void>({ concurrency: settings.concurrency, maxQueue: MAX_QUEUE });
  const sources = createSources({ places, minSize: settings.minSize, maxFileSize: settings.maxFileSize });
  const counts: Counts = {
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
  };
  let closed = false;
  const isClosed = () => closed;
  const parts: Parts = { settings, places, sources, store, flight, counts, track, compress: pool.compress, isClosed };
  places.then(
    // An earlier run or a smaller maxSize may have left the folder over the bound.
    () => store.evict(),
    (cause) =>
      settings.onError(
        cause instanceof PrecompressorError
          ? cause
          : new PrecompressorError("E_INPUT_NOT_FOUND", `lazy mode: ${(cause as Error).message}`, { cause }),
      ),
  );
  const reaper = setInterval(() => {
    const before = Date.now() - settings.reapIntervalMs;
    store.reap(before);
    sources.reap(before);
  }, settings.reapIntervalMs);
  // The reaper alone must not keep a process alive.
  reaper.unref();

  return {
    variant(rel, encoding, signal) {
      if (closed || signal?.aborted || !settings.encodings.has(encoding)) {
        counts.misses += 1;
        return Promise.resolve(undefined);
      }
      return answerWithin(parts, track(find(parts, rel, encoding).catch(() => undefined)), signal);
    },
    purge: (rel) => (rel === undefined ? purgeAll(parts) : purgeFile(parts, rel)),
    idle,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(reaper);
      flight.close();
      await pool.destroy();
      await store.close();
      sources.forget();
    },
    metrics: Object.defineProperties(counts, {
      evictedBytes: { get: () => store.evictedBytes, enumerable: true },
      tracked: { get: () => store.size + flight.keys, enumerable: true },
      inFlight: { get: () => flight.active, enumerable: true },
    }) as LazyMetrics,
  };
}
