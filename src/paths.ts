// The one rule for a path that came from outside (a manifest key, a delta's file name):
// what it must look like before precompressor opens, writes or deletes anything by it.

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
