// The bytes behind an answer as they are on disk now: opened by the one opener, read or hashed
// once per version, kept in memory by content hash.
import type { FileHandle } from "node:fs/promises";
import { hashBytes } from "../hash.js";
import { createOpener, hashOpened, readOpened } from "./open.js";
import { etagOf, type Resolved } from "./resolver.js";

// A file changed more recently may still be being written in place (a build rewriting index.html).
export const SETTLE_MS = 100;

/** A file as it is on disk now. */
export interface OnDisk {
  /** The bytes (small files) or the open descriptor they were hashed from (large ones). */
  body: Buffer | FileHandle;
  hash: string;
  size: number;
  mtimeMs: number;
  /** Unchanged while read and for {@link SETTLE_MS} before: not being written in place. */
  settled: boolean;
}

/** Where bodies come from: `cacheBytes` of memory by hash, files up to `cacheFileBytes` read whole. */
export interface DiskOptions {
  cacheBytes?: number;
  cacheFileBytes?: number;
  dotfiles?: boolean;
}

/**
 * The reader of one root's files. `fromDisk(rel)` is `undefined` when no regular file inside the
 * root is there (404, never 5xx); a small file is read and cached by hash, a large one hashed.
 *
 * @example
 * const disk = createDiskReader("/srv/dist", {});
 * const found = await disk.fromDisk("assets/app.js");
 */
export function createDiskReader(root: string, options: DiskOptions) {
  const cacheBytes = options.cacheBytes ?? 32 * 1024 * 1024;
  const cache = createBodyCache(cacheBytes);
  const cacheFileBytes = cacheBytes > 0 ? (options.cacheFileBytes ?? 1024 * 1024) : -1;
  // Concurrent reads of one version of a small file are one read; each version of a large one is hashed once.
  const reads = new Map<string, Promise<Buffer>>();
  const digests = new Map<string, Promise<string>>();

  const opener = createOpener(root, { dotfiles: options.dotfiles });

  async function fromDisk(rel: string): Promise<OnDisk | undefined> {
    const opened = await opener.open(rel);
    if (!opened) return undefined;
    const { handle, stats: before } = opened;
    try {
      // One version of one file: a rename brings a new inode, a write in place new times.
      const id = `${before.dev}:${before.ino}:${before.size}:${before.mtimeMs}:${before.ctimeMs}`;
      let bytes: Buffer | undefined;
      let digest: Promise<string> | undefined;
      // An empty file is bytes too: there is no range to stream.
      if (before.size <= Math.max(cacheFileBytes, 0)) {
        let read = reads.get(id);
        if (!read) {
          read = readOpened(opened).finally(() => reads.delete(id));
          reads.set(id, read);
        }
        bytes = await read;
      } else {
        digest = digests.get(id);
        if (!digest) {
          if (digests.size >= 4096) digests.clear();
          digest = hashOpened(opened);
          digests.set(id, digest);
          digest.catch(() => digests.delete(id));
        }
      }
      const hash = bytes ? hashBytes(bytes) : await (digest as Promise<string>);
      const after = await handle.stat();
      const unchanged =
        after.size === before.size && after.mtimeMs === before.mtimeMs && after.ctimeMs === before.ctimeMs;
      // Written while hashed: that hash describes no version.
      if (!unchanged) digests.delete(id);
      if (bytes) {
        await handle.close();
        // Keyed by content, so right for any manifest that lists these bytes.
        cache.put(hash, bytes);
      }
      return {
        body: bytes ?? handle,
        hash,
        size: bytes?.length ?? before.size,
        mtimeMs: after.mtimeMs,
        settled: unchanged && Date.now() - Math.max(after.mtimeMs, after.ctimeMs) >= SETTLE_MS,
      };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  return { fromDisk, cache };
}

/** The manifest's answer for a file, restated for the bytes really on disk (a deploy in flight). */
export function restate(file: Resolved, disk: OnDisk): Resolved {
  const mtime = Math.floor(disk.mtimeMs / 1000) * 1000;
  return {
    ...file,
    size: disk.size,
    hash: disk.hash,
    etag: etagOf(disk.hash, file.encoding),
    mtime,
    lastModified: new Date(mtime).toUTCString(),
    // Transitional: revalidated, then a 304 once the new manifest lists these same bytes.
    cacheControl: "no-cache",
  };
}

export async function release(disk: OnDisk | undefined): Promise<void> {
  if (disk && !Buffer.isBuffer(disk.body)) await disk.body.close();
}

/** A least-recently-used map of verified bodies by content hash, bounded in bytes. */
function createBodyCache(maxBytes: number) {
  const bodies = new Map<string, Buffer>();
  let bytes = 0;
  return {
    get(hash: string): Buffer | undefined {
      const body = bodies.get(hash);
      if (body) {
        // Re-insert: Map order is the recency order.
        bodies.delete(hash);
        bodies.set(hash, body);
      }
      return body;
    },
    put(hash: string, body: Buffer): void {
      if (body.length > maxBytes || bodies.has(hash)) return;
      bodies.set(hash, body);
      bytes += body.length;
      for (const [old, oldBody] of bodies) {
        if (bytes <= maxBytes) break;
        bodies.delete(old);
        bytes -= oldBody.length;
      }
    },
  };
}
