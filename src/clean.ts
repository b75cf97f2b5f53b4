// `precompressor clean`: remove what the manifest says we wrote, and nothing else.
import { rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PrecompressorError } from "./errors.js";
import { VARIANT_SUFFIX } from "./formats.js";
import { acquireLock, LOCK_NAME } from "./lock.js";
import { MANIFEST_NAME, readManifest } from "./manifest.js";
import type { Encoding } from "./manifest-format.js";

export interface CleanOptions {
  dir?: string;
  manifest?: string;
  /** Lazy mode's cache folder, emptied too when given. */
  lazyCacheDir?: string;
}

export interface CleanSummary {
  removed: number;
  warnings: string[];
}

/**
 * Delete every variant the manifest lists, then the manifest (and lazy mode's cache when
 * `lazyCacheDir` is given). A `.gz` the user put there themselves is not in the manifest, so it survives.
 *
 * @example
 * await clean({ dir: "dist" });
 */
export async function clean(options: CleanOptions = {}): Promise<CleanSummary> {
  const dir = resolve(options.dir ?? "dist");
  const isDir = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) throw new PrecompressorError("E_INPUT_NOT_FOUND", `${dir}: no such directory`, { path: dir });
  const manifestPath = options.manifest ? resolve(options.manifest) : join(dir, MANIFEST_NAME);
  const release = await acquireLock(join(dir, LOCK_NAME));
  try {
    const { manifest, warnings } = await readManifest(manifestPath);
    let removed = 0;
    for (const [rel, entry] of Object.entries(manifest?.files ?? {})) {
      for (const encoding of Object.keys(entry.variants) as Encoding[]) {
        await rm(join(dir, rel + VARIANT_SUFFIX[encoding]), { force: true });
        removed += 1;
      }
      for (const delta of entry.deltas ?? []) {
        await rm(join(dir, delta.file), { force: true });
        removed += 1;
      }
    }
    await rm(manifestPath, { force: true });
    if (options.lazyCacheDir) await rm(resolve(options.lazyCacheDir), { recursive: true, force: true });
    return { removed, warnings };
  } finally {
    await release();
  }
}
