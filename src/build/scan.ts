// Walk the root and list candidate files; classification happens in precompress.ts.
import { lstatSync, readdir, type Stats, statSync } from "node:fs";
import { lstat, realpath, stat } from "node:fs/promises";
import { basename, dirname, relative, sep } from "node:path";
import fg from "fast-glob";
import { isOwnTemp, matchesTempGlob, TEMP_GLOB } from "../ownership.js";
import { isSafeRelativePath } from "../paths.js";

export interface ScanOptions {
  dir: string;
  include: string[];
  exclude: string[];
  followSymlinks: boolean;
}

export interface ScannedFile {
  /** POSIX path relative to the root: the manifest key. */
  readonly rel: string;
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

/** A million files are walked at once: the full path is derived when asked for, not stored beside the key. */
class File implements ScannedFile {
  constructor(
    private readonly root: string,
    readonly rel: string,
    readonly size: number,
    readonly mtimeMs: number,
  ) {}

  get path(): string {
    return `${this.root}${sep}${this.rel}`;
  }
}

export interface ScanResult {
  files: ScannedFile[];
  /** Temp files a killed run left behind, to sweep. */
  temps: string[];
  /** Entries skipped with a reason the user should see (symlinks leaving the root, loops, unopenable names). */
  warnings: string[];
  /** Folders the walk could not read (permission denied), relative to the root. */
  unreadable: string[];
}

/** Always skipped: dependencies. */
const ALWAYS_IGNORED = ["**/node_modules/**"];

export async function scan(options: ScanOptions): Promise<ScanResult> {
  const result: ScanResult = { files: [], temps: [], warnings: [], unreadable: [] };
  // Our temp files are dotfiles, which the user's globs do not match: one more pattern, same walk.
  // Streamed: fast-glob's promise API keeps every entry's Dirent alive past the walk.
  const entries = fg.stream([...options.include, TEMP_GLOB], {
    cwd: options.dir,
    dot: false,
    onlyFiles: true,
    followSymbolicLinks: options.followSymlinks,
    ignore: ALWAYS_IGNORED.concat(options.exclude),
    // Symlink loops end in ELOOP and vanished entries in ENOENT: neither may abort the walk.
    suppressErrors: true,
    fs: {
      readdir: reportingReaddir(options.dir, result.unreadable),
      stat: guardedStat(options.dir, await realpath(options.dir), result.warnings),
    } as unknown as fg.FileSystemAdapter,
  });
  // An unchanged rerun is mostly these stats. Synchronous calls take a few microseconds each;
  // the same calls sent through libuv's pool cost several times that in thread hand-offs.
  // Each Stats dies at once (only its size and mtime are kept): a million of them would not fit the bound.
  const statOf = options.followSymlinks ? statSync : lstatSync;
  for await (const entry of entries) {
    const rel = entry as string;
    const name = basename(rel);
    const path = `${options.dir}${sep}${rel}`;
    if (isOwnTemp(name)) {
      result.temps.push(path);
      continue;
    }
    // A dotfile only our temp glob matched: not a file of the site (dotfiles are not listed).
    if (matchesTempGlob(name)) continue;
    const s = tryStat(statOf, path);
    // Names that are not valid UTF-8 come back altered and cannot be opened again.
    if (!s)
      result.warnings.push(
        `${JSON.stringify(rel)}: cannot be opened under its listed name (not valid UTF-8?); skipped`,
      );
    // A manifest key with a control character or a backslash is never acted on (src/paths.ts): not listed.
    else if (!isSafeRelativePath(rel))
      result.warnings.push(`${JSON.stringify(rel)}: a name with a control character or a backslash; not listed`);
    else if (s.isFile()) result.files.push(new File(options.dir, rel, s.size, s.mtimeMs));
  }
  result.files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return result;
}

/**
 * The file of `files` (sorted by `rel`, as `scan` returns them) whose key is `rel`: a search, not a
 * Set of a million keys beside the list.
 */
export function listed(files: readonly ScannedFile[], rel: string): ScannedFile | undefined {
  let lo = 0;
  let hi = files.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const file = files[mid] as ScannedFile;
    if (file.rel === rel) return file;
    if (file.rel < rel) lo = mid + 1;
    else hi = mid;
  }
  return undefined;
}

function tryStat(statOf: typeof statSync, path: string): Stats | undefined {
  try {
    return statOf(path);
  } catch {
    return undefined;
  }
}

/**
 * fast-glob resolves each symlink it meets through this `stat`. A target outside the root, or a
 * folder that is its own ancestor (`loop -> .`), is answered with the link itself, which the
 * walk neither lists nor enters: nothing outside the root is ever read, and loops end at once.
 */
function guardedStat(root: string, realRoot: string, warnings: string[]) {
  const reals = new Map<string, Promise<string | undefined>>();
  const real = (p: string) => {
    let r = reals.get(p);
    if (!r) {
      r = realpath(p).catch(() => undefined);
      reals.set(p, r);
    }
    return r;
  };
  const decide = async (path: string): Promise<Stats> => {
    const rel = relative(root, path).split(sep).join("/");
    const target = await real(path);
    if (target !== realRoot && !target?.startsWith(realRoot + sep)) {
      warnings.push(`${rel}: symlink leads outside the root; not followed`);
      return lstat(path);
    }
    const stats = await stat(path);
    if (stats.isDirectory()) {
      for (let folder = dirname(path); folder.length >= root.length; folder = dirname(folder)) {
        if ((await real(folder)) === target) {
          warnings.push(`${rel}: symlink loop; not followed`);
          return lstat(path);
        }
        if (folder === root) break;
      }
    }
    return stats;
  };
  return (path: string, ...rest: unknown[]) => {
    const cb = rest.pop() as (err: Error | null, stats?: Stats) => void;
    decide(path).then((s) => cb(null, s), cb);
  };
}

type Callback = (err: NodeJS.ErrnoException | null, entries: unknown[]) => void;

/** fast-glob drops an unreadable folder silently; this readdir notes it, then lets the walk go on. */
function reportingReaddir(root: string, unreadable: string[]) {
  // fast-glob calls readdir(path, cb) or readdir(path, options, cb) depending on its settings.
  return (path: string, ...rest: unknown[]) => {
    const cb = rest.pop() as Callback;
    const onDone: Callback = (err, entries) => {
      if (err?.code === "EACCES" || err?.code === "EPERM") {
        unreadable.push(relative(root, path).split(sep).join("/"));
        return cb(null, []);
      }
      cb(err, entries);
    };
    (readdir as (...args: unknown[]) => void)(path, ...rest, onDone);
  };
}
