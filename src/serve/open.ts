// The one file opener: bytes come only from a regular file, checked on the opened descriptor,
// opened in a way that cannot block, and (for served paths) proven inside the root.
import { createHash } from "node:crypto";
import type { Stats } from "node:fs";
import { constants } from "node:fs";
import { type FileHandle, open, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, relative, sep } from "node:path";
import { formatDigest } from "../hash.js";
import { isHidden } from "./resolver.js";

// O_NONBLOCK: a FIFO swapped in after the check opens at once instead of pinning a libuv thread.
// O_NOFOLLOW: the final component was resolved already, so a symlink there now is a swap.
const FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0);

/** An open regular file and what `fstat` said of it when opened: read at most `stats.size` bytes. */
export interface Opened {
  handle: FileHandle;
  stats: Stats;
}

/**
 * Open `path` for reading if it is a regular file; `undefined` for anything else (missing, FIFO,
 * socket, device, directory, a symlink now). `recheck` runs after the open and must name, by device
 * and inode, the very file that was opened (see {@link createOpener}).
 */
export async function openRegular(
  path: string,
  recheck?: () => Promise<string | undefined>,
): Promise<Opened | undefined> {
  // A stat first, so a device or FIFO is not even opened in the usual case.
  if (!(await stat(path).catch(() => undefined))?.isFile()) return undefined;
  const handle = await open(path, FLAGS).catch(() => undefined);
  if (!handle) return undefined;
  const stats = await handle.stat().catch(() => undefined);
  const again = stats?.isFile() && recheck ? await recheck() : path;
  const same = again && (await stat(again).catch(() => undefined));
  if (stats?.isFile() && same && same.dev === stats.dev && same.ino === stats.ino) return { handle, stats };
  await handle.close();
  return undefined;
}

/** Read the whole of an opened file, never past the size `fstat` gave (a file growing meanwhile). */
export async function readOpened({ handle, stats }: Opened): Promise<Buffer> {
  const bytes = Buffer.allocUnsafe(stats.size);
  let at = 0;
  while (at < bytes.length) {
    const { bytesRead } = await handle.read(bytes, at, bytes.length - at, at);
    if (bytesRead === 0) break; // shrunk while read: the caller's hash check rejects it
    at += bytesRead;
  }
  return at === bytes.length ? bytes : bytes.subarray(0, at);
}

/** `sha256-<base64url>` of an opened file's first `stats.size` bytes, read by position (a stream may follow). */
export async function hashOpened({ handle, stats }: Opened): Promise<string> {
  const hash = createHash("sha256");
  const chunk = Buffer.allocUnsafe(Math.min(stats.size, 1024 * 1024));
  for (let at = 0; at < stats.size; ) {
    const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, stats.size - at), at);
    if (bytesRead === 0) break; // shorter than its stat said: the hash cannot match
    hash.update(chunk.subarray(0, bytesRead));
    at += bytesRead;
  }
  return formatDigest(hash);
}

/** The content hash of `path` if it is a regular file (never blocking on a FIFO), else `undefined`. */
export async function hashRegularFile(path: string): Promise<string | undefined> {
  const opened = await openRegular(path);
  if (!opened) return undefined;
  try {
    return await hashOpened(opened);
  } finally {
    await opened.handle.close();
  }
}

/** What the opener refuses besides what leaves the root. */
export interface Containment {
  /** Dotfiles may be served (the manifest never is). */
  dotfiles?: boolean;
  /** A real folder inside the root never served from (lazy mode's cache). */
  exclude?: string;
}

/**
 * The real path of `rel` under `realRoot` when every symlink on the way stays inside it and
 * leads to nothing hidden (a dotfile, the manifest, `exclude`); `undefined` otherwise.
 */
export async function realInside(
  realRoot: string,
  rel: string,
  options: Containment = {},
): Promise<string | undefined> {
  const real = await realpath(join(realRoot, rel)).catch(() => undefined);
  if (!real) return undefined;
  const inside = relative(realRoot, real);
  if (inside === "" || isAbsolute(inside) || inside.split(sep)[0] === "..") return undefined;
  if (options.exclude && (real === options.exclude || real.startsWith(options.exclude + sep))) return undefined;
  return isHidden(inside.split(sep).join("/"), options.dotfiles) ? undefined : real;
}

/**
 * The opener of one served root: `open(rel)` gives the regular file `rel` names inside the root, or
 * `undefined` (then 404 or `next()`). Proven on the descriptor: after the open, the path is resolved
 * and checked again, and its device and inode must be `fstat`'s. A swap of any component before the
 * open gives another inode than the checked path has after it, so what is read is what is inside,
 * however the path changes later. Portable, unlike reading `/proc/self/fd/N`.
 *
 * @example
 * const opener = createOpener("dist");
 * const file = await opener.open("assets/app.js");
 */
export function createOpener(root: string, options: Containment = {}) {
  let realRoot: Promise<string> | undefined;
  return {
    /** The file and the real path it was proven at (which may name another file than `rel`: a symlink). */
    async open(rel: string): Promise<(Opened & { real: string }) | undefined> {
      realRoot ??= realpath(root).catch(() => root);
      const at = await realRoot;
      // Resolved each time: the folder to exclude may appear after the opener (lazy mode's cache).
      const exclude = options.exclude && (await realpath(options.exclude).catch(() => options.exclude));
      const rules = { ...options, exclude };
      const real = await realInside(at, rel, rules);
      const opened = real === undefined ? undefined : await openRegular(real, () => realInside(at, rel, rules));
      return opened && real !== undefined ? { ...opened, real } : undefined;
    },
  };
}
