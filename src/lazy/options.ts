// Lazy mode's options: what each means, its default and its check, resolved once into settings.
// Ranges and rules shared with the build (levels, min ratio, min size) come from limits.ts.
import { resolve } from "node:path";
import { settingsDigest } from "../build/settings.js";
import type { PrecompressorError } from "../errors.js";
import { ALL_ENCODINGS } from "../formats.js";
import { badOption, checkLevel, checkMinRatio, DEFAULT_MIN_SIZE } from "../limits.js";
import type { Encoding } from "../manifest-format.js";

/**
 * Lazy levels are lower than the build's: a file must be ready for its first requests, and a
 * burst of uploads must not queue for minutes on one thread (the README's lazy section has figures).
 *
 * @example
 * createLazyCompressor({ root: "dist", cacheDir, levels: { br: LAZY_LEVELS.br + 1 } });
 */
export const LAZY_LEVELS: Readonly<Record<Encoding, number>> = { gzip: 6, br: 5, zstd: 9 };

/** Options of `createLazyCompressor()`; the adapters' `lazy` option is these without `root`. */
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

/** {@link LazyOptions} checked, with defaults, absolute paths, and each encoding's level and settings digest. */
export interface LazySettings {
  root: string;
  cacheDir: string;
  maxSize: number;
  maxWaitMs: number;
  timeoutMs: number;
  concurrency: number;
  encodings: ReadonlySet<Encoding>;
  minSize: number;
  minRatio: number;
  maxFileSize: number;
  reapIntervalMs: number;
  onError: (error: PrecompressorError) => void;
  levels: Readonly<Record<Encoding, number>>;
  /** The cache key part of each encoding's settings: a new level is a new key, never a stale hit. */
  digests: Readonly<Record<Encoding, string>>;
}

function positive(name: string, value: number): number {
  if (!(value > 0)) throw badOption(`lazy.${name}`, "expected a positive number");
  return value;
}

/**
 * Check `options` and fill in the defaults; throws `E_BAD_OPTION` naming the option.
 *
 * @example
 * const settings = resolveLazyOptions({ root: "dist", cacheDir: "/var/cache/site" });
 * settings.levels.br; // 5
 */
export function resolveLazyOptions(options: LazyOptions): LazySettings {
  // Checked in this order, so that of two bad options the same one is named as before.
  const settings = {
    root: resolve(options.root),
    cacheDir: resolve(options.cacheDir),
    maxSize: positive("maxSize", options.maxSize ?? 256 * 1024 * 1024),
    maxWaitMs: Math.max(0, options.maxWaitMs ?? 50),
    timeoutMs: positive("timeoutMs", options.timeoutMs ?? 30_000),
    concurrency: Math.max(1, Math.floor(options.concurrency ?? 1)),
    encodings: new Set(options.encodings ?? ALL_ENCODINGS),
    minSize: Math.max(0, options.minSize ?? DEFAULT_MIN_SIZE),
    minRatio: checkMinRatio("lazy.minRatio", options.minRatio),
    maxFileSize: options.maxFileSize ?? 32 * 1024 * 1024,
    reapIntervalMs: positive("reapIntervalMs", options.reapIntervalMs ?? 60_000),
    onError: options.onError ?? ((e: PrecompressorError) => console.warn(`precompressor: ${e.message}`)),
  };
  const levels = {} as Record<Encoding, number>;
  const digests = {} as Record<Encoding, string>;
  for (const encoding of settings.encodings) {
    if (!ALL_ENCODINGS.includes(encoding)) throw badOption("lazy", `unknown "${encoding}"`);
    const level = options.levels?.[encoding] ?? LAZY_LEVELS[encoding];
    levels[encoding] = checkLevel(`lazy.levels.${encoding}`, encoding, level);
    const { minSize, minRatio } = settings;
    digests[encoding] = settingsDigest({ encoding, level: levels[encoding], minSize, minRatio });
  }
  return { ...settings, levels, digests };
}
