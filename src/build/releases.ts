// Previous releases' files, found by the name a file keeps across releases: the dictionaries
// for RFC 9842 deltas.

import { join } from "node:path";
import fg from "fast-glob";
import { logicalName } from "../delta.js";
import { isCompressible } from "../formats.js";
import { hashFile } from "../hash.js";

export interface Dictionary {
  path: string;
  /** `sha256-<base64url>` of its bytes. */
  hash: string;
}

export interface ReleaseIndex {
  /** One dictionary per previous release that has a match for `rel` (same path, else same logical name), deduplicated by content. */
  dictionariesFor(rel: string): Promise<Dictionary[]>;
}

/** Index each previous release folder once; dictionaries are hashed on first use. */
export async function indexReleases(dirs: string[]): Promise<ReleaseIndex> {
  const releases = await Promise.all(
    dirs.map(async (dir) => {
      const files = (
        await fg("**/*", { cwd: dir, dot: false, onlyFiles: true, ignore: ["**/node_modules/**"] })
      ).filter(isCompressible);
      const exact = new Set(files);
      const byLogical = new Map<string, string[]>();
      for (const f of files) byLogical.set(logicalName(f), [...(byLogical.get(logicalName(f)) ?? []), f]);
      return { dir, exact, byLogical };
    }),
  );
  const hashes = new Map<string, Promise<string>>();
  const hashOf = (path: string) => {
    let h = hashes.get(path);
    if (!h) {
      h = hashFile(path);
      hashes.set(path, h);
    }
    return h;
  };
  return {
    async dictionariesFor(rel) {
      const found: Dictionary[] = [];
      for (const { dir, exact, byLogical } of releases) {
        const candidates = byLogical.get(logicalName(rel)) ?? [];
        // An ambiguous logical name (two old files for one new) matches nothing rather than the wrong one.
        const match = exact.has(rel) ? rel : candidates.length === 1 ? candidates[0] : undefined;
        if (!match) continue;
        const path = join(dir, match);
        const hash = await hashOf(path);
        if (!found.some((d) => d.hash === hash)) found.push({ path, hash });
      }
      return found;
    },
  };
}
