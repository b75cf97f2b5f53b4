// What a run tells its caller: counts per state, bytes per encoding, the changed files and failures.
import type { DeltaEncoding, Encoding } from "../manifest-format.js";
import type { FileFailure, FileState, Ledger } from "./ledger.js";

export interface EncodingTotals {
  /** Variants of this encoding in place after the run. */
  files: number;
  /** Bytes of every eligible file. */
  bytesBefore: number;
  /** Bytes served to a client of this encoding: the variant where there is one, else the original. */
  bytesAfter: number;
  /** Eligible files whose variant was not worth writing (`--min-ratio`). */
  notWorthIt: number;
}

export interface Summary {
  dir: string;
  manifest: string;
  dryRun: boolean;
  /** Files listed in the manifest (served), and how many of them had each state. */
  files: number;
  states: Record<"compressed" | "restored" | "unchanged" | "removed" | "failed", number>;
  /** Files not compressed (or not in every encoding), by reason. */
  skipped: {
    type: number;
    minSize: number;
    /** Files with a variant whose own name would pass the file system's 255-byte limit: listed, served identity. */
    nameTooLong: number;
  };
  encodings: Partial<Record<Encoding, EncodingTotals>>;
  /** RFC 9842 deltas in place after the run, per encoding (with `dictionaryFrom`). */
  deltas: Partial<Record<DeltaEncoding, { files: number; bytes: number }>>;
  /** Every file whose state is not `unchanged`, sorted by path. */
  changes: { path: string; state: FileState }[];
  failures: FileFailure[];
  warnings: string[];
  durationMs: number;
}

/** The summary of a closed ledger; `durationMs` is the caller's to fill. */
export function summarise(ledger: Ledger, warnings: string[]): Summary {
  const { opts, sorted, plan, entries } = ledger;
  const states = { compressed: 0, restored: 0, unchanged: 0, removed: 0, failed: 0 };
  for (const c of ledger.changes) if (c.state in states) states[c.state as keyof typeof states] += 1;
  // Unchanged: listed last time and nothing to do now; a new image is neither changed nor unchanged.
  const changed = new Set(ledger.changes.map((c) => c.path));
  states.unchanged = sorted.served.filter((f) => sorted.previous?.files[f.rel] && !changed.has(f.rel)).length;
  const encodings: Summary["encodings"] = {};
  for (const encoding of opts.encodings) {
    const totals: EncodingTotals = { files: 0, bytesBefore: 0, bytesAfter: 0, notWorthIt: 0 };
    for (const rel of plan.eligible) {
      const entry = entries.get(rel);
      if (!entry) continue;
      const variant = entry.variants[encoding];
      totals.bytesBefore += entry.size;
      totals.bytesAfter += variant?.size ?? entry.size;
      if (variant) totals.files += 1;
      else if (!opts.dryRun && !ledger.tooLong.get(rel)?.has(encoding) && !ledger.failed.has(rel))
        totals.notWorthIt += 1;
    }
    encodings[encoding] = totals;
  }
  const deltas: Summary["deltas"] = {};
  for (const entry of entries.values()) {
    for (const d of entry.deltas ?? []) {
      const t = deltas[d.encoding] ?? { files: 0, bytes: 0 };
      t.files += 1;
      t.bytes += d.size;
      deltas[d.encoding] = t;
    }
  }
  return {
    dir: opts.dir,
    manifest: opts.manifestPath,
    dryRun: opts.dryRun,
    files: entries.size,
    states,
    skipped: ledger.skipped,
    encodings,
    deltas,
    changes: ledger.changes,
    failures: ledger.failures,
    warnings,
    durationMs: 0,
  };
}
