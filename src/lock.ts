// One run per directory at a time: a second run fails clearly instead of interleaving writes.
import { open, readFile, rm } from "node:fs/promises";
import { PrecompressorError } from "./errors.js";

export const LOCK_NAME = ".precompressor.lock";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Take the lock at `path`, or throw E_LOCKED naming the holder. A lock whose process died is taken over. */
export async function acquireLock(path: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new PrecompressorError("E_WRITE", `${path}: cannot create lock file (${(error as Error).message})`, {
          path,
          cause: error,
        });
      }
      const holder = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
      if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
        throw new PrecompressorError(
          "E_LOCKED",
          `${path}: another precompressor run (pid ${holder}) is working on this directory`,
          { path },
        );
      }
      // The holder was killed: its lock is stale.
      await rm(path, { force: true });
    }
  }
  throw new PrecompressorError("E_LOCKED", `${path}: could not take the lock`, { path });
}
