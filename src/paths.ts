// The one rule for a path that came from outside (a manifest key, a delta's file name, a folder
// named by a flag): what it must be before precompressor opens, writes or deletes anything by it.
import { stat } from "node:fs/promises";
import { PrecompressorError } from "./errors.js";

/** Whether `text` has a control character (C0 or DEL) other than those `allowed`. */
function hasControl(text: string, allowed = ""): boolean {
  for (const char of text) {
    const code = char.charCodeAt(0);
    if ((code < 0x20 || code === 0x7f) && !allowed.includes(char)) return true;
  }
  return false;
}

/**
 * A POSIX path relative to the served root, with no way out of it by its spelling alone:
 * not absolute, no backslash, no empty, `.` or `..` segment, no control character.
 * Symlinks are the file system's business: callers that act on the path prove containment
 * on what they open.
 *
 * @example
 * isSafeRelativePath("assets/app.js"); // true
 * isSafeRelativePath("../victim/a.txt"); // false
 */
export function isSafeRelativePath(path: string): boolean {
  if (path === "" || path.startsWith("/") || path.includes("\\") || hasControl(path)) return false;
  return path.split("/").every((segment) => segment !== "" && segment !== "." && segment !== "..");
}

/** A value that can go into an HTTP header as it is: no control character other than tab. */
export function isHeaderSafe(value: string): boolean {
  return !hasControl(value, "\t");
}

/**
 * The folder a command works on (or one a flag names, given as `flag`): `E_INPUT_NOT_FOUND` or
 * `E_INPUT_NOT_DIRECTORY` naming it otherwise.
 *
 * @example
 * await assertDirectory("dist");
 * await assertDirectory(release, "--dictionary-from ");
 */
export async function assertDirectory(dir: string, flag = ""): Promise<void> {
  const s = await stat(dir).catch((cause: unknown) => {
    throw new PrecompressorError("E_INPUT_NOT_FOUND", `${flag}${dir}: no such directory`, { path: dir, cause });
  });
  if (!s.isDirectory())
    throw new PrecompressorError("E_INPUT_NOT_DIRECTORY", `${flag}${dir}: not a directory`, { path: dir });
}
