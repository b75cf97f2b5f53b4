// The piscina task: one source file in, its variants written beside it.
// Workers read and write files themselves so big buffers never cross threads,
// and return plain result objects: errors lose their class across the boundary.
// File operations are synchronous: a worker thread has nothing else to do meanwhile, and a
// round trip through libuv's pool for each stat, read and rename cost more than the work
// (a warm-cache restore of 4,759 files spent 60% of its time in thread hand-offs).

import { createHash } from "node:crypto";
import {
  createReadStream,
  createWriteStream,
  readFileSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  utimesSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { tempPathFor, writeFileAtomicSync } from "./atomic.js";
import { readCache, writeCache } from "./cache.js";
import { type BrotliKind, createEncodeStream, encodeBuffer, encodeBufferSync, STREAM_THRESHOLD } from "./codecs.js";
import { deltaFileName, encodeDelta } from "./delta.js";
import type { ErrorCode } from "./errors.js";
import { VARIANT_SUFFIX } from "./formats.js";
import { formatDigest, hashBytes, hashFile } from "./hash.js";
import type { DeltaEncoding, DeltaEntry, Encoding, VariantEntry } from "./manifest-format.js";

export interface EncodingJob {
  encoding: Encoding;
  level: number;
  /** Settings digest of this encoding: the cache key and the manifest's record. */
  digest: string;
}

export interface CompressTask {
  path: string;
  kind: BrotliKind;
  /** Encodings to produce; empty for files that are only hashed and listed. */
  jobs: EncodingJob[];
  minRatio: number;
  /** What the last run recorded, so an edit-free `touch` costs a hash, not a compression. */
  previous?: {
    hash: string;
    variants: Partial<Record<Encoding, VariantEntry>>;
    deltas?: DeltaEntry[];
    settings: Partial<Record<Encoding | DeltaEncoding, string>>;
  };
  /** RFC 9842 deltas to produce against previous releases' files. */
  deltas?: DeltaJob;
  cacheDir?: string;
  /** Decide only: compress nothing, write nothing. */
  dryRun: boolean;
}

export interface DeltaJob {
  /** The file's path relative to the root; delta files are named after it. */
  rel: string;
  encodings: { encoding: DeltaEncoding; level: number; digest: string }[];
  dictionaries: { path: string; hash: string }[];
}

export type EncodingOutcome = "compressed" | "restored" | "unchanged" | "not-worth-it" | "would-write";

export type CompressResult =
  | {
      ok: true;
      hash: string;
      size: number;
      mtimeMs: number;
      variants: Partial<Record<Encoding, VariantEntry>>;
      deltas: DeltaEntry[];
      outcomes: Partial<Record<Encoding, EncodingOutcome>>;
    }
  | { ok: false; code: ErrorCode; message: string };

class TaskFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** An encoded result waiting to be put in place once the source is known not to have changed. */
type Pending =
  | { encoding: Encoding; outcome: "compressed" | "restored"; bytes: Buffer; entry: VariantEntry; digest: string }
  | { encoding: Encoding; outcome: "compressed"; temp: string; entry: VariantEntry; digest: string }
  | { encoding: Encoding; outcome: "not-worth-it"; digest: string; cacheIt: boolean }
  | { encoding: Encoding; outcome: "unchanged"; entry: VariantEntry | undefined }
  | { encoding: Encoding; outcome: "would-write" };

export default async function compressFile(task: CompressTask): Promise<CompressResult> {
  try {
    return await run(task);
  } catch (error) {
    if (error instanceof TaskFailure) return { ok: false, code: error.code, message: error.message };
    const e = error as NodeJS.ErrnoException;
    const code: ErrorCode = e.syscall === "open" || e.syscall === "read" || e.code === "EISDIR" ? "E_READ" : "E_WRITE";
    return { ok: false, code, message: `${task.path}: ${e.code ?? ""} ${e.message}`.replace(/\s+/g, " ") };
  }
}

async function run(task: CompressTask): Promise<CompressResult> {
  const before = statSync(task.path);
  if (!before.isFile()) throw new TaskFailure("E_READ", `${task.path}: not a regular file`);
  const streaming = before.size > STREAM_THRESHOLD;
  const source = streaming ? undefined : readFileSync(task.path);
  if (source && source.length !== before.size) throw changedDuringRun(task.path);
  const hash = source ? hashBytes(source) : await hashFile(task.path);

  const pending: Pending[] = [];
  try {
    if (source) {
      // Encoders run on this thread, one after another; only zstd from the bindings goes to libuv's
      // pool, and overlaps with the rest.
      pending.push(...(await Promise.all(task.jobs.map((job) => produce(task, job, hash, before.size, source)))));
    } else {
      // Streamed files one encoding at a time: three big encoders at once would defeat bounded memory.
      for (const job of task.jobs) pending.push(await produce(task, job, hash, before.size, source));
    }
    // The source must be the bytes we hashed and encoded, or nothing is put in place.
    const deltas =
      source && task.deltas && !task.dryRun ? await produceDeltas(task, task.deltas, hash, source, pending) : [];
    const after = statSync(task.path);
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) throw changedDuringRun(task.path);
    const result = commit(task, pending, hash, before);
    if (result.ok) result.deltas = commitDeltas(task, deltas, before.mtimeMs / 1000);
    return result;
  } finally {
    for (const p of pending) if ("temp" in p) rmSync(p.temp, { force: true });
  }
}

function changedDuringRun(path: string): TaskFailure {
  return new TaskFailure("E_READ", `${path}: changed while it was being compressed; run again`);
}

async function produce(
  task: CompressTask,
  job: EncodingJob,
  hash: string,
  size: number,
  source: Buffer | undefined,
): Promise<Pending> {
  const { encoding, digest } = job;
  const variantPath = task.path + VARIANT_SUFFIX[encoding];
  const prev = task.previous;
  if (prev && prev.hash === hash && prev.settings[encoding] === digest) {
    const recorded = prev.variants[encoding];
    if (await variantMatches(variantPath, recorded)) return { encoding, outcome: "unchanged", entry: recorded };
  }
  if (task.dryRun) return { encoding, outcome: "would-write" };

  const limit = Math.floor(size * task.minRatio);
  if (task.cacheDir && source) {
    const hit = await readCache(task.cacheDir, digest, encoding, hash);
    if (hit?.kind === "not-worth-it") return { encoding, outcome: "not-worth-it", digest, cacheIt: false };
    if (hit && hit.bytes.length <= limit) {
      return {
        encoding,
        outcome: "restored",
        bytes: hit.bytes,
        entry: { size: hit.bytes.length, hash: hashBytes(hit.bytes) },
        digest,
      };
    }
  }
  const options = { level: job.level, size, kind: task.kind };
  if (source) {
    const bytes = encodeBufferSync(encoding, source, options) ?? (await encodeBuffer(encoding, source, options));
    if (bytes.length > limit) return { encoding, outcome: "not-worth-it", digest, cacheIt: true };
    return { encoding, outcome: "compressed", bytes, entry: { size: bytes.length, hash: hashBytes(bytes) }, digest };
  }
  return streamToTemp(task.path, variantPath, encoding, options, limit, digest);
}

async function streamToTemp(
  path: string,
  variantPath: string,
  encoding: Encoding,
  options: { level: number; size: number; kind: BrotliKind },
  limit: number,
  digest: string,
): Promise<Pending> {
  const temp = tempPathFor(variantPath);
  const hasher = createHash("sha256");
  let written = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hasher.update(chunk);
      written += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(createReadStream(path), createEncodeStream(encoding, options), tap, createWriteStream(temp));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  if (written > limit) {
    await rm(temp, { force: true });
    return { encoding, outcome: "not-worth-it", digest, cacheIt: false };
  }
  return { encoding, outcome: "compressed", temp, entry: { size: written, hash: formatDigest(hasher) }, digest };
}

/** A variant on disk is trusted only when the manifest recorded it and its bytes still hash the same. */
async function variantMatches(variantPath: string, recorded: VariantEntry | undefined): Promise<boolean> {
  const s = statOrUndefined(variantPath);
  if (!recorded) return s === undefined;
  if (!s || s.size !== recorded.size) return false;
  return (await hashOf(variantPath, s.size)) === recorded.hash;
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Small files in one read; big ones streamed, so memory stays bounded. */
function hashOf(path: string, size: number): Promise<string> | string {
  return size > STREAM_THRESHOLD ? hashFile(path) : hashBytes(readFileSync(path));
}

function commit(
  task: CompressTask,
  pending: Pending[],
  hash: string,
  source: { size: number; mtimeMs: number },
): CompressResult {
  // Seconds as a float keep the sub-millisecond part that a Date would drop.
  const mtime = source.mtimeMs / 1000;
  const variants: Partial<Record<Encoding, VariantEntry>> = {};
  const outcomes: Partial<Record<Encoding, EncodingOutcome>> = {};
  for (const p of pending) {
    const variantPath = task.path + VARIANT_SUFFIX[p.encoding];
    outcomes[p.encoding] = p.outcome;
    // A dry run decides and writes nothing.
    if (p.outcome === "would-write") continue;
    if (task.dryRun) {
      if (p.outcome === "unchanged" && p.entry) variants[p.encoding] = p.entry;
      continue;
    }
    if (p.outcome === "not-worth-it") {
      // A stale or foreign file in our variant's place would be served by nginx: remove it.
      rmSync(variantPath, { force: true });
      if (p.cacheIt && task.cacheDir) writeCache(task.cacheDir, p.digest, hash, undefined);
      continue;
    }
    if (p.outcome === "unchanged") {
      if (p.entry) {
        variants[p.encoding] = p.entry;
        // Same bytes, newer source mtime (a `touch`, a fresh checkout): keep Last-Modified in step.
        utimesSync(variantPath, mtime, mtime);
      }
      continue;
    }
    variants[p.encoding] = p.entry;
    if ("temp" in p) {
      utimesSync(p.temp, mtime, mtime);
      renameSync(p.temp, variantPath);
    } else {
      writeFileAtomicSync(variantPath, p.bytes, mtime);
      if (p.outcome === "compressed" && task.cacheDir) writeCache(task.cacheDir, p.digest, hash, p.bytes);
    }
  }
  return { ok: true, hash, size: source.size, mtimeMs: source.mtimeMs, variants, deltas: [], outcomes };
}

type PendingDelta = { entry: DeltaEntry; bytes?: Buffer };

/**
 * Deltas against each previous release's file, kept only when smaller than the file's best
 * ordinary variant. One the last run wrote for the same source, dictionary and settings is reused.
 */
async function produceDeltas(
  task: CompressTask,
  job: DeltaJob,
  hash: string,
  source: Buffer,
  pending: Pending[],
): Promise<PendingDelta[]> {
  const sizes = pending
    .map((p) => ("entry" in p ? p.entry?.size : undefined))
    .filter((n): n is number => n !== undefined);
  const best = Math.min(Math.floor(source.length * task.minRatio), ...sizes);
  const out: PendingDelta[] = [];
  const prev = task.previous;
  for (const dictionary of job.dictionaries) {
    let bytes: Buffer | undefined;
    for (const { encoding, level, digest } of job.encodings) {
      const file = deltaFileName(job.rel, Buffer.from(dictionary.hash.slice(7), "base64url"), encoding);
      const recorded = prev?.deltas?.find((d) => d.dict === dictionary.hash && d.encoding === encoding);
      if (
        recorded &&
        prev?.hash === hash &&
        prev.settings[encoding] === digest &&
        (await deltaMatches(task.path, job.rel, recorded))
      ) {
        out.push({ entry: recorded });
        continue;
      }
      bytes ??= readFileSync(dictionary.path);
      const delta = await encodeDelta(encoding, source, bytes, level);
      if (delta.length < best)
        out.push({
          entry: { dict: dictionary.hash, encoding, size: delta.length, hash: hashBytes(delta), file },
          bytes: delta,
        });
    }
  }
  return out;
}

/** The delta file sits beside the source: its path is the source's path with the delta's name. */
function deltaPath(sourcePath: string, rel: string, file: string): string {
  return sourcePath.slice(0, sourcePath.length - rel.length) + file;
}

async function deltaMatches(sourcePath: string, rel: string, recorded: DeltaEntry): Promise<boolean> {
  const path = deltaPath(sourcePath, rel, recorded.file);
  const s = statOrUndefined(path);
  return s?.size === recorded.size && (await hashOf(path, s.size)) === recorded.hash;
}

function commitDeltas(task: CompressTask, deltas: PendingDelta[], mtime: number): DeltaEntry[] {
  const rel = task.deltas?.rel ?? "";
  for (const d of deltas) {
    if (d.bytes) writeFileAtomicSync(deltaPath(task.path, rel, d.entry.file), d.bytes, mtime);
  }
  return deltas.map((d) => d.entry);
}
