// The persistent cache: encoded bytes addressed by source hash + settings digest,
// so a clean CI checkout restores variants instead of recompressing them.
// Entries are read and written with synchronous calls: they run on worker threads, where
// handing thousands of small file operations to libuv's pool and back cost more than the work.
import { mkdirSync, readFileSync, rmSync, utimesSync } from "node:fs";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { brotliDecompress, brotliDecompressSync, gunzip, gunzipSync } from "node:zlib";
import { writeFileAtomicSync } from "./atomic.js";
import { hashBytes } from "./hash.js";
import type { Encoding } from "./manifest-format.js";
import { zstdDecompressBuffer } from "./zstd.js";

const DECODE: Record<Encoding, (b: Buffer) => Promise<Buffer>> = {
  gzip: promisify(gunzip),
  br: promisify(brotliDecompress),
  zstd: zstdDecompressBuffer,
};

/** Decode a variant off the event loop; tests use it to prove bytes decode to the source. */
export function decodeVariant(encoding: Encoding, bytes: Buffer): Promise<Buffer> {
  return DECODE[encoding](bytes);
}

/** The cache's own decoder, in place on the worker thread that called it. */
const DECODE_HERE: Record<Encoding, (b: Buffer) => Buffer | Promise<Buffer>> = {
  gzip: gunzipSync,
  br: brotliDecompressSync,
  zstd: zstdDecompressBuffer,
};

/** What the cache knows for one key: the encoded bytes, or that the encoding was not worth it. */
export type CacheHit = { kind: "bytes"; bytes: Buffer } | { kind: "not-worth-it" };

/** Where the cache keeps (digest, sourceHash); lazy mode serves these files directly. */
export function cacheEntryPath(cacheDir: string, digest: string, sourceHash: string): string {
  // Keys are base64url, so they are safe file names; the prefix folder keeps directories small.
  return join(cacheDir, digest.slice(7, 23), sourceHash.slice(7, 9), sourceHash.slice(7));
}
const NOT_WORTH_IT = ".none";

/**
 * Look up a cached variant. Bytes are returned only when they decode to content with
 * `sourceHash`: a corrupt or truncated entry is removed and reported as a miss.
 */
export async function readCache(
  cacheDir: string,
  digest: string,
  encoding: Encoding,
  sourceHash: string,
): Promise<CacheHit | undefined> {
  const path = cacheEntryPath(cacheDir, digest, sourceHash);
  const now = new Date();
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    try {
      utimesSync(`${path}${NOT_WORTH_IT}`, now, now);
      return { kind: "not-worth-it" };
    } catch {
      return undefined;
    }
  }
  let decoded: Buffer | undefined;
  try {
    decoded = await DECODE_HERE[encoding](bytes);
  } catch {}
  if (!decoded || hashBytes(decoded) !== sourceHash) {
    rmSync(path, { force: true });
    return undefined;
  }
  // The modification time is the LRU clock.
  try {
    utimesSync(path, now, now);
  } catch {}
  return { kind: "bytes", bytes };
}

/** Store a variant (or the fact that none was worth writing). Cache failures never fail the build. */
export function writeCache(cacheDir: string, digest: string, sourceHash: string, bytes: Buffer | undefined): void {
  const path = cacheEntryPath(cacheDir, digest, sourceHash);
  try {
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileAtomicSync(bytes ? path : `${path}${NOT_WORTH_IT}`, bytes ?? "");
  } catch {}
}

/** Delete least recently used entries until the cache holds at most `maxBytes`. Returns bytes freed. */
export async function evictCache(cacheDir: string, maxBytes: number): Promise<number> {
  const entries: { path: string; size: number; mtimeMs: number }[] = [];
  let total = 0;
  let names: string[];
  try {
    names = (await readdir(cacheDir, { recursive: true })) as string[];
  } catch {
    return 0;
  }
  for (const name of names) {
    const path = join(cacheDir, name);
    const s = await stat(path).catch(() => undefined);
    if (!s?.isFile()) continue;
    entries.push({ path, size: s.size, mtimeMs: s.mtimeMs });
    total += s.size;
  }
  if (total <= maxBytes) return 0;
  entries.sort((a, b) => a.mtimeMs - b.mtimeMs);
  let freed = 0;
  for (const e of entries) {
    if (total - freed <= maxBytes) break;
    await rm(e.path, { force: true });
    freed += e.size;
  }
  return freed;
}
