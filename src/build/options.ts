// Validate and default the library's options once, with errors that name the option.
import { homedir } from "node:os";
import { join, parse, resolve } from "node:path";
import { PrecompressorError } from "../errors.js";
import { ALL_ENCODINGS } from "../formats.js";
import { badOption, checkLevel, checkMinRatio, DEFAULT_LEVELS, DEFAULT_MIN_SIZE } from "../limits.js";
import { MANIFEST_NAME } from "../manifest.js";
import type { Encoding } from "../manifest-format.js";
import { parseShard, partialManifestName, type Shard } from "./shard.js";

/** Options of `precompress()`; each mirrors a CLI flag. */
export interface PrecompressOptions {
  /** The folder to compress. Default `dist`. */
  dir?: string;
  /** Default all three: `["gzip", "br", "zstd"]`. */
  encodings?: Encoding[];
  gzipLevel?: number;
  brotliLevel?: number;
  zstdLevel?: number;
  /** Files smaller than this many bytes get no variants. Default 1024. */
  minSize?: number;
  /** A variant is written only if `compressed <= minRatio * original`. Default 0.95. */
  minRatio?: number;
  /** Globs relative to `dir`. Default every file. */
  include?: string[];
  exclude?: string[];
  followSymlinks?: boolean;
  /** Worker threads. Default: available parallelism. */
  concurrency?: number;
  /** Manifest path. Default `<dir>/.precompressor.json`. */
  manifest?: string;
  /** Use the persistent cache. Default true. */
  cache?: boolean;
  /** Default `node_modules/.cache/precompressor` under the working directory. */
  cacheDir?: string;
  /** Bytes; least recently used entries go first. Default 1 GiB. */
  cacheMaxSize?: number;
  /** Decide what would change and write nothing. */
  check?: boolean;
  dryRun?: boolean;
  /** Allow a root or home folder as `dir`. */
  force?: boolean;
  /**
   * `"k/n"`: compress only this job's share of a CI matrix of n (split by bytes, the same in every job)
   * and write `<dir>/.precompressor.shard-k-of-n.json`; `merge()` joins the n partial manifests.
   */
  shard?: string | Shard;
  /** Previous releases' folders: eligible files get RFC 9842 deltas (dcz, dcb) against their old versions. */
  dictionaryFrom?: string[];
  onProgress?: (progress: Progress) => void;
  /** Stops the run: no new file starts, finished ones stay, and it rejects with `E_ABORTED`. */
  signal?: AbortSignal;
  /** Non-fatal problems (a corrupt manifest, a symlink leaving the root). Default: ignored. */
  onWarning?: (message: string) => void;
}

export interface Progress {
  done: number;
  total: number;
  path: string;
}

export interface ResolvedOptions {
  dir: string;
  encodings: Encoding[];
  levels: Record<Encoding, number>;
  minSize: number;
  minRatio: number;
  include: string[];
  exclude: string[];
  followSymlinks: boolean;
  concurrency: number | undefined;
  manifestPath: string;
  cacheDir: string | undefined;
  cacheMaxSize: number;
  check: boolean;
  dryRun: boolean;
  dictionaryFrom: string[];
  /** `--shard k/n`: this run compresses only its share and writes a partial manifest. */
  shard: Shard | undefined;
}

function integerIn(option: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw badOption(option, `expected a whole number from ${min} to ${max}, got ${value}`);
  return value;
}

/** A glob that could reach outside `dir`: absolute (also `C:`), or with a `..` segment. */
function globs(option: string, patterns: string[] | undefined): string[] {
  for (const pattern of patterns ?? []) {
    const body = pattern.replace(/^!+/, "");
    const leaves = /^([/\\]|[A-Za-z]:)/.test(body) || body.split(/[/\\]/).includes("..");
    if (leaves) throw badOption(option, `"${pattern}" reaches outside the folder (absolute or with a ".." segment)`);
  }
  return patterns ?? [];
}

export function resolveOptions(options: PrecompressOptions): ResolvedOptions {
  const dir = resolve(options.dir ?? "dist");
  // A home folder or `/` is almost certainly a typo, and compressing it writes everywhere.
  if (!options.force && (dir === parse(dir).root || dir === resolve(homedir()))) {
    throw new PrecompressorError(
      "E_INPUT_REFUSED",
      `${dir}: refusing to compress a root or home folder (pass --force to insist)`,
      { path: dir },
    );
  }
  const encodings = [...new Set(options.encodings ?? ALL_ENCODINGS)];
  if (encodings.length === 0) throw badOption("--encodings", "at least one encoding is needed");
  for (const e of encodings) {
    if (!ALL_ENCODINGS.includes(e)) throw badOption("--encodings", `unknown encoding "${e}" (use gzip, br, zstd)`);
  }
  const levels: Record<Encoding, number> = {
    gzip: checkLevel("--gzip-level", "gzip", options.gzipLevel ?? DEFAULT_LEVELS.gzip),
    br: checkLevel("--brotli-level", "br", options.brotliLevel ?? DEFAULT_LEVELS.br),
    zstd: checkLevel("--zstd-level", "zstd", options.zstdLevel ?? DEFAULT_LEVELS.zstd),
  };
  const minRatio = checkMinRatio("--min-ratio", options.minRatio);
  const concurrency =
    options.concurrency === undefined ? undefined : integerIn("--concurrency", options.concurrency, 1, 256);
  const cacheEnabled = options.cache ?? true;
  const shard = typeof options.shard === "string" ? parseShard(options.shard) : options.shard;
  if (shard) parseShard(`${shard.index}/${shard.count}`);
  // Partial manifests sit in dir under names merge looks for: a manifest elsewhere would be lost.
  if (shard && options.manifest)
    throw badOption("--shard", `writes ${partialManifestName(shard)} in dir; drop --manifest`);
  return {
    dir,
    encodings,
    levels,
    minSize: integerIn("--min-size", options.minSize ?? DEFAULT_MIN_SIZE, 0, Number.MAX_SAFE_INTEGER),
    minRatio,
    include: options.include?.length ? globs("--include", options.include) : ["**/*"],
    exclude: globs("--exclude", options.exclude),
    followSymlinks: options.followSymlinks ?? false,
    concurrency,
    manifestPath: options.manifest
      ? resolve(options.manifest)
      : join(dir, shard ? partialManifestName(shard) : MANIFEST_NAME),
    cacheDir: cacheEnabled ? resolve(options.cacheDir ?? join("node_modules", ".cache", "precompressor")) : undefined,
    cacheMaxSize: integerIn("--cache-max-size", options.cacheMaxSize ?? 1024 ** 3, 0, Number.MAX_SAFE_INTEGER),
    check: options.check ?? false,
    dictionaryFrom: (options.dictionaryFrom ?? []).map((d) => resolve(d)),
    dryRun: (options.dryRun ?? false) || (options.check ?? false),
    shard,
  };
}
