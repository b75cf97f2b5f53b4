// Walk the root and list candidate files; classification happens in plan.ts.
import { realpath } from "node:fs/promises";
import { sep } from "node:path";
import fg from "fast-glob";
import { TEMP_SUFFIX } from "./atomic.js";

export interface ScanOptions {
  dir: string;
  include: string[];
  exclude: string[];
  followSymlinks: boolean;
}

export interface ScannedFile {
  /** POSIX path relative to the root: the manifest key. */
  rel: string;
  path: string;
  size: number;
  mtimeMs: number;
}

export interface ScanResult {
  files: ScannedFile[];
  /** Temp files a killed run left behind, to sweep. */
  temps: string[];
  /** Symlinks that resolve outside the root, never followed. */
  outside: string[];
}

/** Always skipped: dependencies and our own bookkeeping files. */
const ALWAYS_IGNORED = ["**/node_modules/**"];

export async function scan(options: ScanOptions): Promise<ScanResult> {
  const entries = await fg(options.include, {
    cwd: options.dir,
    dot: false,
    onlyFiles: true,
    stats: true,
    followSymbolicLinks: options.followSymlinks,
    ignore: [...ALWAYS_IGNORED, ...options.exclude],
    // An unreadable folder must not abort the walk; it is reported by the files it hides.
    suppressErrors: true,
  });
  const root = await realpath(options.dir);
  const result: ScanResult = { files: [], temps: [], outside: [] };
  for (const entry of entries) {
    const path = `${options.dir}${sep}${entry.path}`;
    if (entry.path.endsWith(TEMP_SUFFIX)) {
      result.temps.push(path);
      continue;
    }
    const stats = entry.stats;
    if (!stats) continue;
    if (stats.isSymbolicLink() || entry.dirent.isSymbolicLink()) {
      if (!options.followSymlinks) continue;
      const target = await realpath(path).catch(() => undefined);
      if (!target?.startsWith(root + sep)) {
        result.outside.push(entry.path);
        continue;
      }
    }
    if (!stats.isFile() && !entry.dirent.isSymbolicLink()) continue;
    result.files.push({ rel: entry.path, path, size: stats.size, mtimeMs: stats.mtimeMs });
  }
  result.files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return result;
}
