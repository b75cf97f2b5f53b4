// `--shard k/n`: which files one job of a CI matrix compresses. Pure: the same tree gives every
// job the same split, so n jobs that each read the whole tree agree without talking.
import { createHash } from "node:crypto";
import { PrecompressorError } from "../errors.js";

/** Job `index` (1-based) of `count`. */
export interface Shard {
  index: number;
  count: number;
}

/**
 * Parse `k/n` (1 <= k <= n) as given to `--shard`.
 *
 * @example
 * parseShard("2/4"); // { index: 2, count: 4 }
 */
export function parseShard(text: string): Shard {
  const match = /^([1-9][0-9]*)\/([1-9][0-9]*)$/.exec(text.trim());
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || index > count || count > 10_000)
    throw new PrecompressorError("E_BAD_OPTION", `--shard: expected k/n with 1 <= k <= n <= 10000, got "${text}"`);
  return { index, count };
}

/** The partial manifest a shard writes beside the full one. */
export function partialManifestName(shard: Shard): string {
  return `.precompressor.shard-${shard.index}-of-${shard.count}.json`;
}

/** The shard a partial manifest's name says it holds, or undefined for any other name. */
export function shardOfPartialName(name: string): Shard | undefined {
  const match = /^\.precompressor\.shard-([1-9][0-9]*)-of-([1-9][0-9]*)\.json$/.exec(name);
  return match ? { index: Number(match[1]), count: Number(match[2]) } : undefined;
}

/** One file as the split sees it: its key and what compressing it costs, in arbitrary units. */
export interface Weighted {
  rel: string;
  weight: number;
}

/** A file's place on the ring [0, 2^48): a hash of its key, so neighbours do not cluster by folder. */
function positionOf(rel: string): number {
  return createHash("sha256").update(rel).digest().readUIntBE(0, 6);
}

/**
 * Split files into `count` shards of near-equal total weight. Files are laid on a ring by the hash of
 * their key and cut into `count` arcs of equal weight, so a file that changes size or appears only
 * nudges the cut points: just the files next to a cut can change shards. Any key, listed or not (a removed
 * file's orphans), falls in exactly one arc.
 *
 * @example
 * const shardOf = splitShards(files, 4);
 * shardOf("assets/app.js"); // 1..4
 */
export function splitShards<T extends { rel: string }>(
  files: readonly T[],
  count: number,
  weightOf: (file: T) => number = (file) => (file as unknown as Weighted).weight,
): (rel: string) => number {
  // Typed arrays, not an object a file: a million-file tree is split in tens of megabytes, not hundreds.
  const at = new Float64Array(files.length);
  const weight = new Float64Array(files.length);
  let total = 0;
  files.forEach((file, i) => {
    at[i] = positionOf(file.rel);
    weight[i] = Math.max(0, weightOf(file));
    total += weight[i] as number;
  });
  const order = Uint32Array.from(files.keys()).sort((a, b) => (at[a] as number) - (at[b] as number));
  // starts[i] is where arc i + 2 begins on the ring; arc 1 is everything before starts[0].
  const starts: number[] = [];
  let before = 0;
  for (const i of order) {
    const w = weight[i] as number;
    // A file belongs to the arc its weight's midpoint falls in: balanced to within one file.
    const arc = total > 0 ? Math.min(count - 1, Math.floor(((before + w / 2) * count) / total)) : 0;
    while (starts.length < arc) starts.push(at[i] as number);
    before += w;
  }
  while (starts.length < count - 1) starts.push(2 ** 48);
  return (rel) => {
    const at = positionOf(rel);
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((starts[mid] as number) <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

/**
 * What a file costs a run, for the split: a file with variants is encoded about in proportion to its
 * bytes, on top of a fixed cost per file; any other file is only hashed, about a hundred times faster.
 */
export function fileCost(size: number, compressible: boolean): number {
  return compressible ? 4096 + size : 64 + size / 100;
}
