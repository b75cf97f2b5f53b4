// Human-readable output of the CLI: the summary table.

import type { Summary } from "../build/summary.js";
import type { Encoding, Manifest } from "../manifest-format.js";

const LABEL = { gzip: "gzip", br: "brotli", zstd: "zstd" } as const;

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length))) ?? [];
  return rows
    .map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join("  "))
    .join("\n");
}

/** The end-of-run summary: per encoding bytes before/after and ratio, file states, skips, failures. */
export function formatSummary(s: Summary): string {
  const rows = [["encoding", "variants", "before", "after", "ratio", "not worth it"]];
  for (const [encoding, t] of Object.entries(s.encodings)) {
    const ratio = t.bytesBefore ? (t.bytesAfter / t.bytesBefore).toFixed(3) : "-";
    rows.push([
      LABEL[encoding as keyof typeof LABEL],
      String(t.files),
      formatBytes(t.bytesBefore),
      formatBytes(t.bytesAfter),
      ratio,
      String(t.notWorthIt),
    ]);
  }
  for (const [encoding, d] of Object.entries(s.deltas)) {
    rows.push([`${encoding} (deltas)`, String(d.files), "", formatBytes(d.bytes), "", ""]);
  }
  const st = s.states;
  const lines = [
    table(rows),
    "",
    `${s.files} files in manifest: ${st.compressed} compressed, ${st.restored} restored from cache, ${st.unchanged} unchanged, ${st.removed} removed, ${st.failed} failed`,
    `skipped: ${s.skipped.type} not a compressible type, ${s.skipped.minSize} below --min-size, ${s.skipped.nameTooLong} with a variant name over 255 bytes (served identity)`,
    `time: ${(s.durationMs / 1000).toFixed(2)} s${s.dryRun ? " (dry run: nothing written)" : ""}`,
  ];
  for (const f of s.failures) lines.push(`failed: ${f.message}`);
  return lines.join("\n");
}

/**
 * `--verbose`: one line per entry of `changes`, in its order: state, path, and for a file written or restored its
 * bytes and each variant's, as the manifest records them (`compressed  app.js  5120 B  gzip 1514 B  br 1290 B`).
 */
export function formatChanges(s: Summary, manifest: Manifest | undefined): string[] {
  const encodings = Object.keys(s.encodings) as Encoding[];
  const width = Math.max(0, ...s.changes.map((c) => c.state.length));
  return s.changes.map((c) => {
    const parts = [c.state.padEnd(width), c.path];
    const entry = c.state === "compressed" || c.state === "restored" ? manifest?.files[c.path] : undefined;
    if (entry) parts.push(`${entry.size} B`);
    for (const e of encodings) {
      const variant = entry?.variants[e];
      if (variant) parts.push(`${e} ${variant.size} B`);
    }
    return parts.join("  ");
  });
}

/** One line per run (the build plugins, `--watch`): states, bytes before and after the smallest encoding, time. */
export function formatRunLine(s: Summary): string {
  const st = s.states;
  const best = Object.entries(s.encodings).sort(([, a], [, b]) => a.bytesAfter - b.bytesAfter)[0];
  const bytes = best
    ? `; ${LABEL[best[0] as keyof typeof LABEL]} ${formatBytes(best[1].bytesBefore)} -> ${formatBytes(best[1].bytesAfter)}`
    : "";
  return (
    `${s.files} ${s.files === 1 ? "file" : "files"}: ${st.compressed} compressed, ${st.restored} restored, ${st.unchanged} unchanged, ` +
    `${st.removed} removed, ${st.failed} failed${bytes} in ${(s.durationMs / 1000).toFixed(2)} s`
  );
}
