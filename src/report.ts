// Human-readable output of the CLI: the summary table.
import type { Summary } from "./precompress.js";

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
