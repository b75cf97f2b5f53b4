// Issue 18: where a cold build's time goes beyond the codecs, on the small-file corpus. Each fixed
// per-file cost is measured alone, one file at a time, so the README can say which part of the gap
// to the codec floor is ours and which is Node's.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstatSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zlib from "node:zlib";
import fg from "fast-glob";
import { Piscina } from "piscina";
import { writeManifest } from "../src/manifest.js";
import type { ManifestEntry } from "../src/manifest-format.js";
import { eligibleFiles } from "./bench-build.js";
import { heading, median, OUR_BIN, ourCliReady, printTable, type SectionContext } from "./bench-util.js";
import { ensureCorpus } from "./corpus.js";

const micro = (ms: number, n: number) => `${((ms * 1000) / n).toFixed(1)} µs`;

/** Median wall time of a short command, each repeat its own process. */
function startup(args: string[], repeats = 7): number {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    execFileSync(process.execPath, args, { stdio: "ignore" });
    times.push(performance.now() - started);
  }
  return median(times);
}

/** Time `step` once per file, `rounds` times over the corpus, and keep the median round. */
function perFile<T>(files: readonly T[], rounds: number, step: (file: T) => void): number {
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const started = performance.now();
    for (const f of files) step(f);
    times.push(performance.now() - started);
  }
  return median(times);
}

/** Page faults and time of one encode per file: the encoders' own state allocation, per call. */
function encoderCost(inputs: readonly Buffer[], encode: (b: Buffer) => Buffer): { ms: number; faults: number } {
  const before = process.resourceUsage().minorPageFault;
  const started = performance.now();
  for (const b of inputs) encode(b);
  return { ms: performance.now() - started, faults: process.resourceUsage().minorPageFault - before };
}

export async function runCostsBench(ctx: SectionContext): Promise<void> {
  heading("Per-file fixed costs on the small-file corpus (issue 18)");
  const corpus = await ensureCorpus({ quick: ctx.quick, name: "small" });
  const all = (await fg("**/*", { cwd: corpus.dir, onlyFiles: true })).sort();
  const paths = all.map((rel) => join(corpus.dir, rel));
  const eligible = await eligibleFiles(corpus.dir, all);
  const n = paths.length;
  const rounds = Math.max(3, ctx.rounds);
  const scratch = await mkdtemp(join(tmpdir(), "bench-costs-"));
  try {
    const bytes = paths.map((p) => readFileSync(p));
    const rows: string[][] = [];
    const add = (what: string, ms: number, count = n) => rows.push([what, micro(ms, count), `${ms.toFixed(1)} ms`]);
    add(
      "walk (fast-glob, stats: true)",
      perFile([0], rounds, () => fg.sync("**/*", { cwd: corpus.dir, stats: true })),
    );
    add(
      "lstat",
      perFile(paths, rounds, (p) => lstatSync(p)),
    );
    add(
      "read",
      perFile(paths, rounds, (p) => readFileSync(p)),
    );
    add(
      "sha256",
      perFile(bytes, rounds, (b) => createHash("sha256").update(b).digest("base64url")),
    );
    let i = 0;
    add(
      "temp file + rename (1 KB)",
      perFile(paths, rounds, () => {
        const temp = join(scratch, `t${i}.tmp`);
        writeFileSync(temp, bytes[0] ?? "");
        renameSync(temp, join(scratch, `v${i++ % 64}`));
      }),
    );
    // An echo worker: what is left of a task is the hand-off itself, and the structured clone of its payload.
    const echo = join(scratch, "echo.mjs");
    writeFileSync(echo, "export default (task) => ({ ok: true, path: task.path });\n");
    const pool = new Piscina({
      filename: echo,
      maxThreads: 2,
      minThreads: 2,
    });
    await pool.run({ path: "warm-up" });
    const started = performance.now();
    await Promise.all(all.map((rel) => pool.run({ path: rel, size: 1, jobs: [{ encoding: "gzip", level: 9 }] })));
    add("thread hand-off (piscina task round trip, 2 threads)", performance.now() - started);
    await pool.destroy();
    const entries = Object.fromEntries(
      all.map((rel): [string, ManifestEntry] => [
        rel,
        { hash: `sha256-${"A".repeat(43)}`, size: 1000, mtimeMs: 1e12, type: "image/svg+xml", variants: {} },
      ]),
    );
    const manifestPath = join(scratch, "manifest.json");
    const writeStarted = performance.now();
    await writeManifest(manifestPath, { version: 1, generator: "bench", settings: {}, files: entries });
    add("manifest write (all entries)", performance.now() - writeStarted);
    printTable([`${n} files, one at a time`, "per file", "total"], rows);

    heading("Start-up (median of 7 processes)");
    const bare = startup(["-e", "0"]);
    const start: string[][] = [
      ["node -e 0", `${bare.toFixed(1)} ms`],
      ["node + import piscina", `${startup(["--input-type=module", "-e", "await import('piscina')"]).toFixed(1)} ms`],
      [
        "node + import fast-glob",
        `${startup(["--input-type=module", "-e", "await import('fast-glob')"]).toFixed(1)} ms`,
      ],
    ];
    if (ourCliReady().ok) start.push(["precompressor --version", `${startup([OUR_BIN, "--version"]).toFixed(1)} ms`]);
    printTable(["process", "wall"], start);

    heading("Encoder set-up: one encode per eligible file, time and minor page faults");
    const inputs = eligible.map((f) => readFileSync(join(corpus.dir, f.rel)));
    const tiny = inputs.map(() => Buffer.from("x".repeat(64)));
    const encoders: [string, (b: Buffer) => Buffer][] = [
      ["gzip 9", (b) => zlib.gzipSync(b, { level: 9 })],
      ["brotli 11", (b) => zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } })],
      [
        "brotli 11 + size hint",
        (b) =>
          zlib.brotliCompressSync(b, {
            params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.length },
          }),
      ],
    ];
    const encodeRows = encoders.map(([name, encode]) => {
      const real = encoderCost(inputs, encode);
      const setup = encoderCost(tiny, encode);
      return [
        name,
        micro(real.ms, inputs.length),
        String(Math.round(real.faults / inputs.length)),
        micro(setup.ms, tiny.length),
        String(Math.round(setup.faults / tiny.length)),
      ];
    });
    printTable(
      [`${inputs.length} eligible files`, "per file", "faults/file", "64 B input (set-up only)", "faults/call"],
      encodeRows,
    );
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
