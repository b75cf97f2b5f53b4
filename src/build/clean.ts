// `precompressor clean`: remove what the manifest says we wrote, and nothing else.
import { realpath, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { emptyCache } from "../cache.js";
import { VARIANT_SUFFIX } from "../formats.js";
import { MANIFEST_NAME, readManifest } from "../manifest.js";
import type { Encoding } from "../manifest-format.js";
import { assertCacheToEmpty, removeOwned } from "../ownership.js";
import { assertDirectory } from "../paths.js";
import { acquireLock, LOCK_NAME } from "./lock.js";

export interface CleanOptions {
  dir?: string;
  manifest?: string;
  /** Lazy mode's cache folder, emptied of precompressor's entries too when given. */
  lazyCacheDir?: string;
}

export interface CleanSummary {
  removed: number;
  warnings: string[];
}

/**
 * Delete every variant and delta the manifest lists, then the manifest (and lazy mode's cache
 * entries when `lazyCacheDir` is given). A `.gz` the user put there themselves is not in the
 * manifest, so it survives; so does every file in the cache folder that is not one of our entries.
 * A cache folder that is `/`, the home folder, the site or holds it, or lacks our `CACHEDIR.TAG`
 * while not empty, is refused with `E_INPUT_REFUSED` before anything is deleted.
 *
 * @example
 * await clean({ dir: "dist" });
 */
export async function clean(options: CleanOptions = {}): Promise<CleanSummary> {
  const dir = resolve(options.dir ?? "dist");
  await assertDirectory(dir);
  const cacheDir = options.lazyCacheDir ? resolve(options.lazyCacheDir) : undefined;
  const emptyIt = cacheDir ? await assertCacheToEmpty(cacheDir, dir, "--lazy-cache-dir") : false;
  const manifestPath = options.manifest ? resolve(options.manifest) : join(dir, MANIFEST_NAME);
  const release = await acquireLock(join(dir, LOCK_NAME));
  try {
    const { manifest, warnings } = await readManifest(manifestPath);
    const realDir = await realpath(dir);
    let removed = 0;
    const remove = async (path: string) => {
      const problem = await removeOwned(realDir, path);
      if (problem) warnings.push(problem);
      else removed += 1;
    };
    for (const [rel, entry] of Object.entries(manifest?.files ?? {})) {
      for (const encoding of Object.keys(entry.variants) as Encoding[])
        await remove(join(dir, rel + VARIANT_SUFFIX[encoding]));
      for (const delta of entry.deltas ?? []) await remove(join(dir, delta.file));
    }
    await rm(manifestPath, { force: true });
    if (cacheDir && emptyIt) await emptyCache(cacheDir);
    return { removed, warnings };
  } finally {
    await release();
  }
}
