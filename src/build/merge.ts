// `precompressor merge`: join the partial manifests of `--shard k/n` jobs into the one manifest a
// single run would have written. Everything is checked before anything is written.
import { readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PrecompressorError } from "../errors.js";
import { loadManifest, MANIFEST_NAME, writeManifest } from "../manifest.js";
import type { Manifest, ManifestEntry } from "../manifest-format.js";
import { assertDirectory } from "../paths.js";
import { acquireLock, LOCK_NAME } from "./lock.js";
import { partialManifestName, type Shard, shardOfPartialName } from "./shard.js";

export interface MergeOptions {
  /** The tree the shards' outputs were copied into. Default `dist`. */
  dir?: string;
  /** Where the merged manifest goes. Default `<dir>/.precompressor.json`. */
  manifest?: string;
}

export interface MergeSummary {
  manifest: string;
  shards: number;
  files: number;
  warnings: string[];
}

/**
 * Merge `<dir>/.precompressor.shard-k-of-n.json` (k = 1..n) into `<dir>/.precompressor.json` and
 * remove the partial manifests. A missing, duplicated or incompatible shard throws `E_SHARD` naming
 * it, and nothing is written.
 *
 * @example
 * await merge({ dir: "dist" }); // after copying every job's artifact into dist/
 */
export async function merge(options: MergeOptions = {}): Promise<MergeSummary> {
  const dir = resolve(options.dir ?? "dist");
  await assertDirectory(dir);
  const manifestPath = options.manifest ? resolve(options.manifest) : join(dir, MANIFEST_NAME);
  const release = await acquireLock(join(dir, LOCK_NAME));
  try {
    const shards = await partialsIn(dir);
    const warnings: string[] = [];
    const parts = await Promise.all(shards.map((shard) => readPartial(dir, shard, warnings)));
    const merged = joinParts(dir, parts);
    await writeManifest(manifestPath, merged);
    await Promise.all(shards.map((shard) => rm(join(dir, partialManifestName(shard)), { force: true })));
    return { manifest: manifestPath, shards: shards.length, files: Object.keys(merged.files).length, warnings };
  } finally {
    await release();
  }
}

const shardError = (dir: string, shard: Shard, reason: string) =>
  new PrecompressorError("E_SHARD", `${join(dir, partialManifestName(shard))}: ${reason}`, {
    path: join(dir, partialManifestName(shard)),
  });

/** The shards present, 1..n of one n, each once; otherwise the first one missing or out of place. */
async function partialsIn(dir: string): Promise<Shard[]> {
  const found = (await readdir(dir)).flatMap((name) => shardOfPartialName(name) ?? []);
  const first = found[0];
  if (!first) throw new PrecompressorError("E_SHARD", `${dir}: no partial manifest (.precompressor.shard-k-of-n.json)`);
  const count = first.count;
  const odd = found.find((s) => s.count !== count);
  if (odd) throw shardError(dir, odd, `written by a run of ${odd.count} shards, but another is of ${count}`);
  const have = new Set(found.map((s) => s.index));
  for (let index = 1; index <= count; index++) {
    if (!have.has(index)) throw shardError(dir, { index, count }, "missing");
  }
  return found.sort((a, b) => a.index - b.index);
}

async function readPartial(dir: string, shard: Shard, warnings: string[]): Promise<[Shard, Manifest]> {
  const path = join(dir, partialManifestName(shard));
  const manifest = await loadManifest(path, (message) => warnings.push(`${path}: ${message}`)).catch(
    (cause: unknown) => {
      if (cause instanceof PrecompressorError) throw cause;
      throw new PrecompressorError("E_SHARD", `${path}: unreadable (${(cause as NodeJS.ErrnoException).code})`, {
        path,
        cause,
      });
    },
  );
  if (manifest.shard?.index !== shard.index || manifest.shard.count !== shard.count)
    throw shardError(dir, shard, `its content says shard ${JSON.stringify(manifest.shard ?? null)}`);
  return [shard, manifest];
}

/** One manifest from compatible parts: the same generator and settings, and no file in two parts. */
function joinParts(dir: string, parts: [Shard, Manifest][]): Manifest {
  // partialsIn found shard 1 at least.
  const head = (parts[0] as [Shard, Manifest])[1];
  const owner = new Map<string, number>();
  const files: [string, ManifestEntry][] = [];
  for (const [shard, part] of parts) {
    if (part.generator !== head.generator || JSON.stringify(part.settings) !== JSON.stringify(head.settings))
      throw shardError(dir, shard, "written with other settings or another precompressor version than shard 1");
    for (const [key, entry] of Object.entries(part.files)) {
      const other = owner.get(key);
      if (other !== undefined) throw shardError(dir, shard, `lists ${JSON.stringify(key)}, as shard ${other} does`);
      owner.set(key, shard.index);
      files.push([key, entry]);
    }
  }
  // The order a single run writes (its keys, sorted), so a merged tree is byte-identical to one.
  files.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { version: 1, generator: head.generator, settings: head.settings, files: Object.fromEntries(files) };
}
