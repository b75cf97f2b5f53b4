// The persistent cache: encoded bytes addressed by source hash + settings digest,
// so a clean CI checkout restores variants instead of recompressing them.
// Entries are read and written with synchronous calls: they run on worker threads, where
// handing thousands of small file operations to libuv's pool and back cost more than the work.
import { mkdirSync, readFileSync, rmSync, utimesSync } from "node:fs";
import { readdir, rm, rmdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { brotliDecompress, brotliDecompressSync, gunzip, gunzipSync } from "node:zlib";
import { writeFileAtomicSync } from "./atomic.js";
import { digestBody, hashBytes } from "./hash.js";
import type { Encoding } from "./manifest-format.js";
import { isCacheLevel, isOwnTemp, NOT_WORTH_IT_SUFFIX } from "./ownership.js";
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
  const source = digestBody(sourceHash);
  return join(cacheDir, digestBody(digest).slice(0, 16), source.slice(0, 2), source);
}

/** The marker file beside an entry's place that says the encoding was not worth it for this source. */
export function notWorthItPath(entryPath: string): string {
  return `${entryPath}${NOT_WORTH_IT_SUFFIX}`;
}

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
      utimesSync(notWorthItPath(path), now, now);
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
    writeFileAtomicSync(bytes ? path : notWorthItPath(path), bytes ?? "");
  } catch {}
}

interface StoredEntry {
  path: string;
  size: number;
  mtimeMs: number;
}

/** Temp files in the cache are another writer's until they are this old (a killed writer's after). */
const TEMP_GRACE_MS = 10 * 60_000;

/**
 * Our entries in a cache folder, and temp files a killed writer left: exactly the three-level
 * entry pattern, real folders only (a symlinked folder is not entered). Foreign files are not listed.
 */
async function ownedEntries(cacheDir: string): Promise<{ entries: StoredEntry[]; staleTemps: string[] }> {
  const entries: StoredEntry[] = [];
  const staleTemps: string[] = [];
  const now = Date.now();
  const walk = async (folder: string, depth: number): Promise<void> => {
    const dirents = await readdir(folder, { withFileTypes: true }).catch(() => []);
    for (const d of dirents) {
      const path = join(folder, d.name);
      if (depth < 2 && d.isDirectory() && isCacheLevel(depth, d.name)) await walk(path, depth + 1);
      else if (depth === 2 && d.isFile() && (isCacheLevel(2, d.name) || isOwnTemp(d.name))) {
        const s = await stat(path).catch(() => undefined);
        if (!s) continue;
        if (isCacheLevel(2, d.name)) entries.push({ path, size: s.size, mtimeMs: s.mtimeMs });
        else if (now - s.mtimeMs > TEMP_GRACE_MS) staleTemps.push(path);
      }
    }
  };
  await walk(cacheDir, 0);
  return { entries, staleTemps };
}

/**
 * Delete least recently used entries until the cache holds at most `maxBytes` of them. Returns bytes
 * freed. Only our entries count and go: a foreign file in the folder is neither counted nor touched.
 */
export async function evictCache(cacheDir: string, maxBytes: number): Promise<number> {
  const { entries, staleTemps } = await ownedEntries(cacheDir);
  await Promise.all(staleTemps.map((t) => rm(t, { force: true })));
  let total = entries.reduce((sum, e) => sum + e.size, 0);
  if (total <= maxBytes) return 0;
  entries.sort((a, b) => a.mtimeMs - b.mtimeMs);
  let freed = 0;
  for (const e of entries) {
    if (total <= maxBytes) break;
    await rm(e.path, { force: true });
    total -= e.size;
    freed += e.size;
  }
  return freed;
}

/**
 * Delete every entry of ours in `cacheDir`, and the folders of ours left empty. Foreign files stay,
 * and so does the folder with its tag while anything foreign is in it. Returns entries removed.
 */
export async function emptyCache(cacheDir: string): Promise<number> {
  const { entries } = await ownedEntries(cacheDir);
  await Promise.all(entries.map((e) => rm(e.path, { force: true })));
  // rmdir removes only empty folders: a foreign file keeps its folder.
  const folders = new Set(entries.map((e) => dirname(e.path)));
  for (const f of folders) await rmdir(f).catch(() => {});
  for (const f of new Set([...folders].map((f) => dirname(f)))) await rmdir(f).catch(() => {});
  return entries.length;
}
