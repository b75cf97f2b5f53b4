// The piscina task: one source file in, its variants written beside it.
// Workers read and write files themselves so big buffers never cross threads,
// and return plain result objects: errors lose their class across the boundary.
// File operations are synchronous: a worker thread has nothing else to do meanwhile, and a
// round trip through libuv's pool for each stat, read and rename cost more than the work
// (measured on a warm-cache restore, where thread hand-offs took most of the time).

import { createHash } from "node:crypto";
import {
  createReadStream,
  createWriteStream,
  lstatSync,
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
import { writeFileAtomicSync } from "../atomic.js";
import { readCache, writeCache } from "../cache.js";
import { type BrotliKind, createEncodeStream, encodeBuffer, encodeBufferSync, STREAM_THRESHOLD } from "../codecs.js";
import { deltaFileName, encodeDelta } from "../delta.js";
import { type ErrorCode, systemReason } from "../errors.js";
import { VARIANT_SUFFIX } from "../formats.js";
import { digestBytes, formatDigest, hashBytes, hashFile } from "../hash.js";
import { worthItLimit } from "../limits.js";
import type { DeltaEntry, Encoding, VariantEntry } from "../manifest-format.js";
import { containedSync, nameFits, slotIsFree, tempPathFor, unlinkOwnedSync } from "../ownership.js";
import { variantHolds } from "./freshness.js";
import type { CompressResult, CompressTask, DeltaJob, EncodingJob, EncodingOutcome, VariantFailure } from "./tasks.js";

class TaskFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The one-line message of a failed step: the path, what failed, the system error once. */
function failure(code: ErrorCode, path: string, what: string, error: unknown): TaskFailure {
  return new TaskFailure(code, `${path}: ${what} (${systemReason(error)})`);
}

/** Reading the source: gone means it was removed during the run, anything else is a read error. */
function readFailure(path: string, error: unknown): TaskFailure {
  if (error instanceof TaskFailure) return error;
  if ((error as NodeJS.ErrnoException).code === "ENOENT")
    return failure("E_SOURCE_CHANGED", path, "removed during the run", error);
  return failure("E_READ", path, "cannot read", error);
}

function readStep<T>(path: string, step: () => T): T {
  try {
    return step();
  } catch (error) {
    throw readFailure(path, error);
  }
}

/** An encoded result waiting to be put in place once the source is known not to have changed. */
type Pending =
  | { encoding: Encoding; outcome: "compressed" | "restored"; bytes: Buffer; entry: VariantEntry; digest: string }
  | { encoding: Encoding; outcome: "compressed"; temp: string; entry: VariantEntry; digest: string }
  | { encoding: Encoding; outcome: "not-worth-it"; digest: string; cacheIt: boolean }
  | { encoding: Encoding; outcome: "unchanged"; entry: VariantEntry | undefined }
  | { encoding: Encoding; outcome: "would-write" }
  | { encoding: Encoding; outcome: "name-too-long" }
  | { encoding: Encoding; outcome: "failed"; failure: VariantFailure };

export default async function compressFile(task: CompressTask): Promise<CompressResult> {
  try {
    return await run(task);
  } catch (error) {
    if (error instanceof TaskFailure) return { ok: false, code: error.code, message: error.message };
    // Every step names its own failure; reaching here is a bug, still reported as a one-liner.
    return { ok: false, code: "E_READ", message: `${task.path}: ${systemReason(error)}` };
  }
}

async function run(task: CompressTask): Promise<CompressResult> {
  const before = readStep(task.path, () => statSync(task.path));
  if (!before.isFile()) throw new TaskFailure("E_READ", `${task.path}: not a regular file`);
  const streaming = before.size > STREAM_THRESHOLD;
  const source = streaming ? undefined : readStep(task.path, () => readFileSync(task.path));
  if (source && source.length !== before.size) throw changedDuringRun(task.path);
  const hash = source
    ? hashBytes(source)
    : await hashFile(task.path).catch((error: unknown) => {
        throw readFailure(task.path, error);
      });

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
    const deltaFailures: VariantFailure[] = [];
    const deltas =
      source && task.deltas && !task.dryRun
        ? await produceDeltas(task, task.deltas, hash, source, pending, deltaFailures)
        : [];
    const after = readStep(task.path, () => statSync(task.path));
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) throw changedDuringRun(task.path);
    const result = commit(task, pending, hash, before);
    if (result.ok) result.failures.push(...deltaFailures);
    if (result.ok && deltas.length) result.deltas = commitDeltas(task, deltas, before.mtimeMs / 1000, result.failures);
    return result;
  } finally {
    for (const p of pending) if ("temp" in p) rmSync(p.temp, { force: true });
  }
}

function changedDuringRun(path: string): TaskFailure {
  return new TaskFailure("E_SOURCE_CHANGED", `${path}: changed while it was being compressed; run again`);
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
  if (!nameFits(variantPath)) return { encoding, outcome: "name-too-long" };
  const prev = task.previous;
  if (prev && prev.hash === hash && prev.settings[encoding] === digest) {
    const recorded = prev.variants[encoding];
    if (await variantMatches(variantPath, recorded)) return { encoding, outcome: "unchanged", entry: recorded };
  }
  if (task.dryRun) return { encoding, outcome: "would-write" };

  const limit = worthItLimit(size, task.minRatio);
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
  try {
    if (source) {
      const bytes = encodeBufferSync(encoding, source, options) ?? (await encodeBuffer(encoding, source, options));
      if (bytes.length > limit) return { encoding, outcome: "not-worth-it", digest, cacheIt: true };
      return { encoding, outcome: "compressed", bytes, entry: { size: bytes.length, hash: hashBytes(bytes) }, digest };
    }
    return await streamToTemp(task.path, variantPath, encoding, options, limit, digest);
  } catch (error) {
    // The source's own read errors fail the file; an encoder or a temp write fails this variant only.
    if (error instanceof TaskFailure && error.code !== "E_COMPRESS" && error.code !== "E_WRITE") throw error;
    const f =
      error instanceof TaskFailure ? error : failure("E_COMPRESS", variantPath, `${encoding} encoder failed`, error);
    return { encoding, outcome: "failed", failure: { code: f.code, message: f.message } };
  }
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
  if (!nameFits(temp)) throw new TaskFailure("E_WRITE", `${temp}: temp name too long`);
  const hasher = createHash("sha256");
  let written = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hasher.update(chunk);
      written += chunk.length;
      done(null, chunk);
    },
  });
  // Which end failed decides the code: the source (read), the encoder, or the temp file (write).
  const input = createReadStream(path);
  const encoder = createEncodeStream(encoding, options);
  const output = createWriteStream(temp, { flags: "wx" });
  const failed: { step?: "read" | "compress" | "write" } = {};
  input.once("error", () => (failed.step ??= "read"));
  encoder.once("error", () => (failed.step ??= "compress"));
  output.once("error", () => (failed.step ??= "write"));
  try {
    await pipeline(input, encoder, tap, output);
  } catch (error) {
    await rm(temp, { force: true });
    if (failed.step === "read") throw readFailure(path, error);
    if (failed.step === "write") throw failure("E_WRITE", variantPath, "cannot write", error);
    throw failure("E_COMPRESS", variantPath, `${encoding} encoder failed`, error);
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
  if (!variantHolds(recorded, s, () => slotIsFree(variantPath))) return false;
  // A recorded one must still have its bytes too: the same size is not the same content.
  return recorded === undefined || (s !== undefined && (await hashOf(variantPath, s.size)) === recorded.hash);
}

/** A regular file at `path` itself: a symlink in a variant's place is never taken for ours. */
function statOrUndefined(path: string): Stats | undefined {
  try {
    const s = lstatSync(path);
    return s.isFile() ? s : undefined;
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
  const failures: VariantFailure[] = [];
  // Proved once per file: the folder its variants go into is inside the root, symlinks resolved.
  const inside = task.dryRun || containedSync(task.realRoot, task.path) !== undefined;
  for (const p of pending) {
    const variantPath = task.path + VARIANT_SUFFIX[p.encoding];
    outcomes[p.encoding] = p.outcome;
    if (p.outcome === "failed") failures.push(p.failure);
    if (p.outcome === "failed" || p.outcome === "would-write" || p.outcome === "name-too-long") continue;
    // A dry run decides and writes nothing.
    if (task.dryRun) {
      if (p.outcome === "unchanged" && p.entry) variants[p.encoding] = p.entry;
      continue;
    }
    try {
      if (!inside) throw new TaskFailure("E_WRITE", `${variantPath}: its folder leads outside the root; not written`);
      const entry = put(task, p, variantPath, hash, mtime);
      if (entry) variants[p.encoding] = entry;
    } catch (error) {
      // A file system with a shorter limit than NAME_MAX says so only now: a skip, as planned ones are.
      if ((error as NodeJS.ErrnoException).code === "ENAMETOOLONG") {
        outcomes[p.encoding] = "name-too-long";
        continue;
      }
      outcomes[p.encoding] = "failed";
      const f = error instanceof TaskFailure ? error : failure("E_WRITE", variantPath, "cannot write", error);
      failures.push({ code: f.code, message: f.message });
    }
  }
  return { ok: true, hash, size: source.size, mtimeMs: source.mtimeMs, variants, deltas: [], outcomes, failures };
}

/** Put one variant in place (or take a stale one away); returns what the manifest may list. */
function put(
  task: CompressTask,
  p: Exclude<Pending, { outcome: "failed" | "would-write" | "name-too-long" }>,
  variantPath: string,
  hash: string,
  mtime: number,
): VariantEntry | undefined {
  if (p.outcome === "not-worth-it") {
    // A stale or foreign file in our variant's place would be served by nginx: remove it.
    unlinkOwnedSync(variantPath);
    if (p.cacheIt && task.cacheDir) writeCache(task.cacheDir, p.digest, hash, undefined);
    return undefined;
  }
  if (p.outcome === "unchanged") {
    // Same bytes, newer source mtime (a `touch`, a fresh checkout): keep Last-Modified in step.
    if (p.entry) utimesSync(variantPath, mtime, mtime);
    return p.entry;
  }
  if ("temp" in p) {
    utimesSync(p.temp, mtime, mtime);
    renameSync(p.temp, variantPath);
  } else {
    writeFileAtomicSync(variantPath, p.bytes, mtime);
    if (p.outcome === "compressed" && task.cacheDir) writeCache(task.cacheDir, p.digest, hash, p.bytes);
  }
  return p.entry;
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
  failures: VariantFailure[],
): Promise<PendingDelta[]> {
  const sizes = pending
    .map((p) => ("entry" in p ? p.entry?.size : undefined))
    .filter((n): n is number => n !== undefined);
  const best = Math.min(worthItLimit(source.length, task.minRatio), ...sizes);
  const out: PendingDelta[] = [];
  const prev = task.previous;
  for (const dictionary of job.dictionaries) {
    let bytes: Buffer | undefined;
    for (const { encoding, level, digest } of job.encodings) {
      const file = deltaFileName(job.rel, digestBytes(dictionary.hash), encoding);
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
      // A delta is an extra: an unreadable dictionary or a failing encoder costs this delta only.
      let delta: Buffer;
      try {
        bytes ??= readStep(dictionary.path, () => readFileSync(dictionary.path));
        delta = await encodeDelta(encoding, source, bytes, level);
      } catch (error) {
        const path = deltaPath(task.path, job.rel, file);
        const f =
          error instanceof TaskFailure ? error : failure("E_COMPRESS", path, `${encoding} encoder failed`, error);
        failures.push({ code: f.code, message: f.message });
        continue;
      }
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

function commitDeltas(
  task: CompressTask,
  deltas: PendingDelta[],
  mtime: number,
  failures: VariantFailure[],
): DeltaEntry[] {
  const rel = task.deltas?.rel ?? "";
  const listed: DeltaEntry[] = [];
  // Deltas sit beside the source, so the same folder must be proved inside the root.
  if (!containedSync(task.realRoot, task.path)) return listed;
  for (const d of deltas) {
    const path = deltaPath(task.path, rel, d.entry.file);
    // A delta is an extra: one whose name is too long is not written, and not a failure.
    if (!nameFits(path)) continue;
    try {
      if (d.bytes) writeFileAtomicSync(path, d.bytes, mtime);
      listed.push(d.entry);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENAMETOOLONG") continue;
      const f = failure("E_WRITE", path, "cannot write", error);
      failures.push({ code: f.code, message: f.message });
    }
  }
  return listed;
}
