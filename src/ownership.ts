// The one rule for what precompressor may delete or overwrite: variant and delta paths it derived
// from a validated entry and proved inside the root, its own temp files (one exact name pattern),
// and entries of a cache folder it marked. Everything else belongs to someone else.
import { randomBytes } from "node:crypto";
import { accessSync, constants, lstatSync, realpathSync, unlinkSync } from "node:fs";
import { mkdir, readdir, readFile, realpath, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join, parse, resolve, sep } from "node:path";
import fg from "fast-glob";
import { PrecompressorError, systemReason } from "./errors.js";

/** Our temp files, and only ours: `.pc-` + 20 hex digits + `.tmp`. A user's `x.pctmp` is never one. */
export const TEMP_NAME = /^\.pc-[0-9a-f]{20}\.tmp$/;

/** A glob that finds every candidate for {@link TEMP_NAME} in a tree (it matches more: filter with `isOwnTemp`). */
export const TEMP_GLOB = "**/.pc-*.tmp";

/** Bytes a file name may have on the file systems a site is built on (ext4, xfs, btrfs, APFS, NTFS in UTF-16 aside). */
export const NAME_MAX = 255;

/**
 * A fresh temp path in `path`'s folder. Its name is 28 bytes whatever `path` is called, so a
 * temp fits wherever a variant's own name fits (the old `<name>.<pid>-<id>.pctmp` did not).
 */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.pc-${randomBytes(10).toString("hex")}.tmp`);
}

/** Whether a file name (not a path) is one of our temp files. */
export function isOwnTemp(name: string): boolean {
  return TEMP_NAME.test(name);
}

/** Whether {@link TEMP_GLOB} matches `name` (a last segment): a candidate, ours only if {@link isOwnTemp}. */
export function matchesTempGlob(name: string): boolean {
  return name.startsWith(".pc-") && name.endsWith(".tmp");
}

/** Every temp file of ours under `dir` (workers stopped mid-write leave them): our exact name, nothing else. */
export async function findOwnTemps(dir: string): Promise<string[]> {
  const temps = await fg(TEMP_GLOB, { cwd: dir, dot: true, absolute: true, suppressErrors: true });
  return temps.filter((t) => isOwnTemp(basename(t)));
}

/** Whether `path`'s last segment fits {@link NAME_MAX} bytes. */
export function nameFits(path: string): boolean {
  return Buffer.byteLength(basename(path)) <= NAME_MAX;
}

/** `real` is `realRoot` or below it (both already resolved). */
export function isInside(real: string, realRoot: string): boolean {
  return real === realRoot || real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
}

/** `path`'s folder resolved through symlinks; `undefined` when it is gone. */
function realFolder(path: string): string | undefined {
  try {
    return realpathSync.native(dirname(path));
  } catch {
    return undefined;
  }
}

/**
 * `path` with its folder resolved through symlinks, if that folder is inside `realRoot`;
 * `undefined` when a symlinked folder on the way leads out (or the folder is gone).
 * The last segment is not followed: deleting or renaming over a symlink replaces the link.
 */
export function containedSync(realRoot: string, path: string): string | undefined {
  const folder = realFolder(path);
  return folder && isInside(folder, realRoot) ? join(folder, basename(path)) : undefined;
}

/**
 * Delete a file precompressor made, at `path` under `realRoot`. Never follows a folder out of the
 * root and never removes a directory. Returns why it could not, or `undefined` (also when absent).
 */
export async function removeOwned(realRoot: string, path: string): Promise<string | undefined> {
  const folder = realFolder(path);
  if (!folder) return undefined;
  if (!isInside(folder, realRoot)) return `${path}: its folder leads outside ${realRoot}; left alone`;
  try {
    if (unlinkOwnedSync(join(folder, basename(path))) === "directory")
      return `${path}: a directory sits where a variant goes; left alone`;
    return undefined;
  } catch (error) {
    return `${path}: cannot remove (${systemReason(error)})`;
  }
}

/**
 * Unlink a file already proven ours and inside the root. Already gone is fine. A directory is
 * never ours to remove, and serves no one as a variant: it is left, and said. Other errors throw.
 */
export function unlinkOwnedSync(path: string): "removed" | "absent" | "directory" {
  try {
    unlinkSync(path);
    return "removed";
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "absent";
    if (code === "EISDIR") return "directory";
    throw error;
  }
}

/** Nothing sits in a variant's place and its folder takes writes: a missing variant there was not worth it. */
export function slotIsFree(path: string): boolean {
  try {
    lstatSync(path);
    return false;
  } catch {}
  try {
    accessSync(dirname(path), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Cache Directory Tagging Specification's file, and the line that makes it one. */
export const CACHE_TAG = "CACHEDIR.TAG";
const CACHE_TAG_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55";
const CACHE_TAG_TEXT = `${CACHE_TAG_SIGNATURE}\n# This folder is a cache made by precompressor: https://bford.info/cachedir/\n`;

/** The suffix of the cache's marker that an encoding was not worth it for a source (cache.ts). */
export const NOT_WORTH_IT_SUFFIX = ".none";

/** Cache entries: `<16 digest chars>/<2 hash chars>/<43 hash chars>[.none]`, all base64url. */
const ENTRY_LEVELS = [
  /^[A-Za-z0-9_-]{16}$/,
  /^[A-Za-z0-9_-]{2}$/,
  new RegExp(`^[A-Za-z0-9_-]{43}(${NOT_WORTH_IT_SUFFIX.replace(".", "\\.")})?$`),
];

/** Whether `name` is ours at `depth` of a cache folder: 0 and 1 are folders, 2 the entry files. */
export function isCacheLevel(depth: number, name: string): boolean {
  return ENTRY_LEVELS[depth]?.test(name) ?? false;
}

async function hasCacheTag(dir: string): Promise<boolean> {
  const text = await readFile(join(dir, CACHE_TAG), "utf8").catch(() => "");
  return text.startsWith(CACHE_TAG_SIGNATURE);
}

/**
 * An entry folder of ours, a tagged cache folder, or (caches from before tags, like the lazy
 * cache under the build's) a folder holding only entry folders.
 */
async function isOurs(path: string, entryFolder: boolean): Promise<boolean> {
  if (entryFolder || (await hasCacheTag(path))) return true;
  const names = await readdir(path).catch(() => undefined);
  return names !== undefined && names.length > 0 && names.every((n) => isCacheLevel(0, n));
}

/**
 * Make `dir` a cache folder of ours, or refuse it. A missing or empty folder is created and
 * tagged; a tagged one is used; a folder holding only our entries (a cache from before tags) is
 * tagged. Any other non-empty folder belongs to someone else: `E_INPUT_REFUSED`, and nothing in it is touched.
 * `what` names the flag or option in the message.
 */
export async function markCacheDir(dir: string, what: string): Promise<void> {
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw new PrecompressorError("E_WRITE", `${what} ${dir}: cannot read (${systemReason(error)})`, {
      path: dir,
      cause: error,
    });
  });
  if (names?.includes(CACHE_TAG) && (await hasCacheTag(dir))) return;
  for (const name of names ?? []) {
    // The tag itself may be mid-write by a process tagging the folder at this moment.
    if (name === CACHE_TAG || (await isOurs(join(dir, name), isCacheLevel(0, name)))) continue;
    throw refused(dir, what, `it holds files precompressor did not make (${JSON.stringify(name)})`);
  }
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, CACHE_TAG), CACHE_TAG_TEXT, { flag: "wx" }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    });
  } catch (error) {
    throw new PrecompressorError("E_WRITE", `${what} ${dir}: cannot create the cache folder (${systemReason(error)})`, {
      path: dir,
      cause: error,
    });
  }
}

function refused(dir: string, what: string, why: string): PrecompressorError {
  return new PrecompressorError("E_INPUT_REFUSED", `${what} ${dir}: refusing to use it as a cache folder: ${why}`, {
    path: dir,
  });
}

/**
 * Whether `dir` is a cache folder precompressor may delete entries in: tagged by us. `clean` also
 * refuses `/`, the home folder, the site itself and any folder holding the site, tag or not.
 */
export async function assertCacheToEmpty(cacheDir: string, siteDir: string, what: string): Promise<boolean> {
  const real = await realpath(cacheDir).catch(() => resolve(cacheDir));
  const site = await realpath(siteDir).catch(() => resolve(siteDir));
  if (real === parse(real).root) throw refused(cacheDir, what, "it is the root folder");
  if (real === (await realpath(homedir()).catch(() => resolve(homedir()))))
    throw refused(cacheDir, what, "it is the home folder");
  if (isInside(site, real)) throw refused(cacheDir, what, "it is or holds the site folder");
  const exists = await stat(real).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!exists) return false;
  if (await hasCacheTag(real)) return true;
  if ((await readdir(real)).length === 0) return false;
  throw refused(cacheDir, what, `it has no ${CACHE_TAG}, so precompressor did not make it`);
}
