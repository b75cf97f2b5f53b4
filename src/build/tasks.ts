// The messages that cross the build's thread and process boundaries, declared once for both sides:
// the main thread and pool (pool.ts), the piscina thread (worker.ts), and the Node 20 host child
// process (host-pool.ts and worker-host.ts). Types only: every side imports them, none imports another side.
import type { BrotliKind } from "../codecs.js";
import type { ErrorCode } from "../errors.js";
import type { DeltaEncoding, DeltaEntry, Encoding, VariantEntry } from "../manifest-format.js";

export interface EncodingJob {
  encoding: Encoding;
  level: number;
  /** Settings digest of this encoding: the cache key and the manifest's record. */
  digest: string;
}

export interface CompressTask {
  path: string;
  /** The root with symlinks resolved: nothing is written or removed unless its folder is inside. */
  realRoot: string;
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

export type EncodingOutcome =
  | "compressed"
  | "restored"
  | "unchanged"
  | "not-worth-it"
  | "would-write"
  /** The variant's own name would pass the file system's limit: skipped, served identity. */
  | "name-too-long"
  /** Encoding or writing failed: the variant is not listed, the failure is in `failures`. */
  | "failed";

/** A failure of one variant or delta; the file itself is still listed. */
export interface VariantFailure {
  code: ErrorCode;
  message: string;
}

export type CompressResult =
  | {
      ok: true;
      hash: string;
      size: number;
      mtimeMs: number;
      variants: Partial<Record<Encoding, VariantEntry>>;
      deltas: DeltaEntry[];
      outcomes: Partial<Record<Encoding, EncodingOutcome>>;
      failures: VariantFailure[];
    }
  | { ok: false; code: ErrorCode; message: string };

export type HostRequest = { type: "run"; id: number; task: CompressTask } | { type: "abort"; id: number };
export type HostReply = { id: number; result: CompressResult } | { id: number; error: string; aborted: boolean };

/** What runs the compression tasks: a piscina pool here, or one in the child process. */
export interface TaskRunner {
  run(task: CompressTask, options: { signal?: AbortSignal }): Promise<CompressResult>;
  destroy(): Promise<void>;
}
