// Every file this tool writes goes to a temp name in the same folder and is
// renamed into place, so a reader (or a crash) never sees a torn file.
import { renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { rename, rm, utimes, writeFile } from "node:fs/promises";
import { tempPathFor } from "./ownership.js";

/**
 * Write `bytes` (or the chunks of a long text, one after another) to `path` atomically; with `mtime`
 * (seconds), the file gets that modification time before it appears (nginx takes Last-Modified from the variant).
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array | string | Iterable<string>,
  mtime?: number,
): Promise<void> {
  const temp = tempPathFor(path);
  try {
    // "wx": a temp name is never an existing file, not even one that looks like ours.
    await writeFile(temp, bytes, { flag: "wx" });
    if (mtime) await utimes(temp, mtime, mtime);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * `writeFileAtomic` without the thread pool, for worker threads: a small write done in place
 * costs less than a hand-off to libuv's pool and back.
 */
export function writeFileAtomicSync(path: string, bytes: Uint8Array | string, mtime?: number): void {
  const temp = tempPathFor(path);
  try {
    writeFileSync(temp, bytes, { flag: "wx" });
    if (mtime) utimesSync(temp, mtime, mtime);
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}
