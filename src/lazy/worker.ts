// The lazy-mode piscina task: one source file in, one cache entry out. It runs off the event
// loop, and returns plain result objects: errors lose their class across the thread boundary.
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { writeFileAtomic } from "../atomic.js";
import { cacheEntryPath, readCache, writeCache } from "../cache.js";
import { type BrotliKind, encodeBuffer } from "../codecs.js";
import type { ErrorCode } from "../errors.js";
import { hashBytes } from "../hash.js";
import { worthItLimit } from "../limits.js";
import type { Encoding } from "../manifest-format.js";
import { openRegular, readOpened } from "../serve/open.js";

export interface LazyTask {
  /** Real path of the source, already checked to be inside the root. */
  source: string;
  /** What the caller hashed: the entry is stored under this key only if the bytes read still hash to it. */
  sourceHash: string;
  encoding: Encoding;
  level: number;
  kind: BrotliKind;
  minRatio: number;
  cacheDir: string;
  /** Settings digest of this encoding. */
  digest: string;
  /** The cache's bound: a larger variant would evict everything, itself included. */
  maxBytes: number;
}

export type LazyOutcome =
  /** `compressed` is false when a verified entry was already on disk (another process, an earlier run). */
  | { kind: "ready"; size: number; hash: string; compressed: boolean }
  | { kind: "not-worth-it"; compressed: boolean }
  /** The file no longer holds the content the caller hashed: nothing was written. */
  | { kind: "stale" }
  | { kind: "error"; code: ErrorCode; message: string };

export default async function lazyCompress(task: LazyTask): Promise<LazyOutcome> {
  let step: ErrorCode = "E_READ";
  try {
    const { cacheDir, digest, encoding, sourceHash } = task;
    // An entry is trusted only after it decodes to the content hash (readCache removes corrupt ones).
    const hit = await readCache(cacheDir, digest, encoding, sourceHash);
    if (hit?.kind === "not-worth-it") return { kind: "not-worth-it", compressed: false };
    if (hit) return { kind: "ready", size: hit.bytes.length, hash: hashBytes(hit.bytes), compressed: false };

    // Never blocking on a FIFO swapped in, never past the size fstat gave.
    const opened = await openRegular(task.source);
    if (!opened) return { kind: "stale" };
    const source = await readOpened(opened).finally(() => opened.handle.close());
    if (hashBytes(source) !== sourceHash) return { kind: "stale" };
    step = "E_COMPRESS";
    const bytes = await encodeBuffer(encoding, source, { level: task.level, size: source.length, kind: task.kind });
    step = "E_WRITE";
    if (bytes.length > worthItLimit(source.length, task.minRatio)) {
      await writeCache(cacheDir, digest, sourceHash, undefined);
      return { kind: "not-worth-it", compressed: true };
    }
    if (bytes.length > task.maxBytes) return { kind: "not-worth-it", compressed: true };
    const path = cacheEntryPath(cacheDir, digest, sourceHash);
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, bytes);
    return { kind: "ready", size: bytes.length, hash: hashBytes(bytes), compressed: true };
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return { kind: "error", code: step, message: `${e.code ?? ""} ${e.message}`.trim() };
  }
}
