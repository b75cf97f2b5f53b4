// One run per directory at a time: a second run fails clearly instead of interleaving writes.
//
// Why not proper-lockfile: it breaks a stale lock by rmdir + mkdir, and two processes that both saw
// it stale can each remove the other's fresh lock. Here a lock is a file published whole by link()
// (so no reader sees it half-written), held while its pid is alive, and a stale one is unlinked
// only by the holder of `<lock>.break`, after re-reading that it is still the very file seen stale.
import { randomBytes } from "node:crypto";
import { link, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { PrecompressorError, systemReason } from "../errors.js";
import { tempPathFor } from "../ownership.js";

export const LOCK_NAME = ".precompressor.lock";

/** `.lock.break` may itself be broken (via `.lock.break.break`); that one is never broken. */
const MAX_DEPTH = 2;
const ATTEMPTS = 5;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The pid of a lock's content (first line); older versions wrote the pid alone. */
function holderOf(content: string): number | undefined {
  const pid = Number.parseInt(content.split("\n")[0] ?? "", 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

type Taken = { release: () => Promise<void> } | { holder: number };

/** Publish `content` at `path` if nothing is there: the file appears complete or not at all. */
async function publish(path: string, content: string): Promise<boolean> {
  const temp = tempPathFor(path);
  try {
    await writeFile(temp, content, { flag: "wx" });
    await link(temp, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ENOENT: a run sweeping temp files took ours between write and link; try again.
    if (code === "EEXIST" || code === "ENOENT") return false;
    throw new PrecompressorError("E_WRITE", `${path}: cannot create lock file (${systemReason(error)})`, {
      path,
      cause: error,
    });
  } finally {
    await rm(temp, { force: true });
  }
}

async function take(path: string, depth: number): Promise<Taken> {
  const content = `${process.pid}\n${randomBytes(12).toString("hex")}\n`;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (await publish(path, content)) {
      return {
        release: async () => {
          // Only our own file: if the lock was (wrongly) broken and retaken, it is someone else's.
          if ((await readFile(path, "utf8").catch(() => "")) === content) await unlink(path).catch(() => {});
        },
      };
    }
    const seen = await readFile(path, "utf8").catch(() => undefined);
    // Released between our link and our read: try again.
    if (seen === undefined) continue;
    const holder = holderOf(seen);
    if (holder !== undefined && isAlive(holder)) return { holder };
    if (depth >= MAX_DEPTH)
      throw new PrecompressorError("E_LOCKED", `${path}: left by a dead process; remove it by hand`, { path });
    await breakStale(path, seen, depth);
  }
  throw new PrecompressorError("E_LOCKED", `${path}: could not take the lock`, { path });
}

/**
 * Unlink the lock at `path` if it still holds `seen`. Only the holder of `<path>.break` may:
 * so between its re-read and its unlink, no one else can remove the file, and no one can create
 * one either (it exists); the file it unlinks is the stale one, never a lock taken since.
 */
async function breakStale(path: string, seen: string, depth: number): Promise<void> {
  const guard = await take(`${path}.break`, depth + 1);
  if (!("release" in guard)) return;
  try {
    if ((await readFile(path, "utf8").catch(() => undefined)) === seen) await unlink(path).catch(() => {});
  } finally {
    await guard.release();
  }
}

/**
 * Take the lock at `path`, or throw `E_LOCKED` naming the holder. A lock whose process died is
 * taken over; at most one process holds it at any moment, however many race for it.
 */
export async function acquireLock(path: string): Promise<() => Promise<void>> {
  const taken = await take(path, 0);
  if ("release" in taken) return taken.release;
  throw new PrecompressorError(
    "E_LOCKED",
    `${path}: another precompressor run (pid ${taken.holder}) is working on this directory`,
    { path },
  );
}
