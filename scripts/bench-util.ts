// Shared by the bench sections: run a tool as a child process with its wall
// time and the peak memory of its whole process tree, check that every variant
// it wrote decodes to its source, and print small tables.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zlib from "node:zlib";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import fg from "fast-glob";
import { ROOT } from "./corpus.js";

export type Encoding = "gzip" | "br" | "zstd";
export const ENCODINGS: readonly Encoding[] = ["gzip", "br", "zstd"];
export const SUFFIX: Readonly<Record<Encoding, string>> = { gzip: ".gz", br: ".br", zstd: ".zst" };

/** What bench.ts hands every section, including `scripts/bench-server.ts` if it exists. */
export interface SectionContext {
  quick: boolean;
  /** Alternating rounds per tool; the median is reported. */
  rounds: number;
}

export const GNU_TIME = "/usr/bin/time";
const hasGnuTime = existsSync(GNU_TIME);
const PAGE_SIZE = pageSize();
/** /proc is sampled this often for the tree's resident memory. */
const RSS_POLL_MS = 20;

function pageSize(): number {
  try {
    return Number(execFileSync("getconf", ["PAGESIZE"], { encoding: "utf8" }).trim()) || 4096;
  } catch {
    return 4096;
  }
}

export interface Measured {
  ms: number;
  /** Sum of resident memory over the process and all its descendants, highest sample. */
  treePeakRss: number;
  /** Peak RSS of the largest single process, from the kernel via GNU time (exact, not sampled); 0 without it. */
  largestProcessRss: number;
  /** User + system CPU of the tree (GNU time); less sensitive than wall time to other load on a shared machine. */
  cpuMs: number;
  stdout: string;
  stderr: string;
}

/** Every pid below `root`: children are listed per thread, and gzipper spawns zstd from worker threads. */
function descendants(root: number): number[] {
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // exited between two reads
    }
    for (const tid of tasks) {
      let children = "";
      try {
        children = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8");
      } catch {}
      for (const child of children.split(" ")) {
        if (child.trim()) {
          found.push(Number(child));
          queue.push(Number(child));
        }
      }
    }
  }
  return found;
}

function residentBytes(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/statm`, "utf8").split(" ");
    return Number(fields[1]) * PAGE_SIZE;
  } catch {
    return 0;
  }
}

/**
 * Run `command args` to completion, timing it from spawn to exit. Throws with
 * the output on a non-zero exit: a failed run has no meaningful time.
 */
export async function measure(command: string, args: string[], options: { cwd?: string } = {}): Promise<Measured> {
  const timeDir = hasGnuTime ? await mkdtemp(join(tmpdir(), "bench-time-")) : undefined;
  const timeFile = timeDir ? join(timeDir, "rusage") : undefined;
  const [file, argv] = timeFile ? [GNU_TIME, ["-f", "%M %U %S", "-o", timeFile, command, ...args]] : [command, args];
  const started = performance.now();
  const child = spawn(file, argv, {
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (b: Buffer) => out.push(b));
  child.stderr.on("data", (b: Buffer) => err.push(b));
  let treePeakRss = 0;
  const poll = setInterval(() => {
    if (child.pid === undefined) return;
    // Under GNU time the tool is time's child; time's own few hundred KB are left out.
    const pids = descendants(child.pid);
    const tree = timeFile ? pids : [child.pid, ...pids];
    const total = tree.reduce((sum, pid) => sum + residentBytes(pid), 0);
    if (total > treePeakRss) treePeakRss = total;
  }, RSS_POLL_MS);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  const ms = performance.now() - started;
  clearInterval(poll);
  const stdout = Buffer.concat(out).toString();
  const stderr = Buffer.concat(err).toString();
  let largestProcessRss = 0;
  let cpuMs = Number.NaN;
  if (timeFile && timeDir) {
    const text = await readFile(timeFile, "utf8").catch(() => "");
    await rm(timeDir, { recursive: true, force: true });
    // GNU time writes "Command exited with non-zero status N" before the figures on failure.
    const [kib, user, system] = (text.trim().split("\n").at(-1) ?? "").split(" ").map(Number);
    largestProcessRss = Number.isFinite(kib) ? (kib as number) * 1024 : 0;
    cpuMs = ((user ?? Number.NaN) + (system ?? Number.NaN)) * 1000;
  }
  if (code !== 0) {
    throw new Error(
      `${command} ${args.slice(0, 8).join(" ")} … exited with ${code}\n${stderr.slice(-4000)}\n${stdout.slice(-2000)}`,
    );
  }
  return { ms, treePeakRss: Math.max(treePeakRss, largestProcessRss), largestProcessRss, cpuMs, stdout, stderr };
}

const nodeZstd = zlib as unknown as { zstdDecompressSync?: (b: Buffer) => Buffer };

/** The decoders are independent of the encoders under test: node:zlib, and for zstd node:zlib or the reference bindings. */
async function decode(encoding: Encoding, bytes: Buffer): Promise<Buffer> {
  if (encoding === "gzip") return gunzipSync(bytes);
  if (encoding === "br") return brotliDecompressSync(bytes);
  if (nodeZstd.zstdDecompressSync) return nodeZstd.zstdDecompressSync(bytes);
  const { decompress } = await import("@mongodb-js/zstd");
  return decompress(bytes);
}

export interface EncodingTally {
  files: number;
  bytes: number;
  /** Bytes of the sources of these variants. */
  sourceBytes: number;
}

export interface Verified {
  perEncoding: Record<Encoding, EncodingTally>;
  /** `<rel path>\0<encoding>` -> variant size, to compare tools file by file. */
  sizes: Map<string, number>;
}

export interface VerifyOptions {
  /** Relative paths of the sources the tool was given. */
  sources: ReadonlySet<string>;
  /** When set, every source must still equal its copy here: a tool must not touch its input. */
  pristine?: string;
  /** Each of these (rel path, encoding) must have a variant: a tool that silently skipped files would look faster. */
  required?: Iterable<readonly [string, Encoding]>;
  /** Files the tool keeps for itself and that are neither source nor variant. */
  bookkeeping?: (rel: string) => boolean;
}

/**
 * Decode every variant under `dir` and compare it byte for byte with its
 * source; throw on any mismatch, on a variant of a variant (`a.js.gz.br`),
 * on a stray file, or on a missing required variant.
 */
export async function verifyOutput(tool: string, dir: string, options: VerifyOptions): Promise<Verified> {
  const perEncoding = Object.fromEntries(ENCODINGS.map((e) => [e, { files: 0, bytes: 0, sourceBytes: 0 }])) as Record<
    Encoding,
    EncodingTally
  >;
  const sizes = new Map<string, number>();
  const failures: string[] = [];
  const entries = await fg("**/*", { cwd: dir, dot: true, onlyFiles: true });
  entries.sort();
  for (const rel of entries) {
    if (options.sources.has(rel)) {
      if (options.pristine) {
        const [now, before] = await Promise.all([readFile(join(dir, rel)), readFile(join(options.pristine, rel))]);
        if (!now.equals(before)) failures.push(`${rel}: source was modified`);
      }
      continue;
    }
    if (options.bookkeeping?.(rel)) continue;
    const encoding = ENCODINGS.find((e) => rel.endsWith(SUFFIX[e]));
    const source = encoding ? rel.slice(0, -SUFFIX[encoding].length) : undefined;
    if (!encoding || !source || !options.sources.has(source)) {
      failures.push(`${rel}: neither a source nor a variant of one`);
      continue;
    }
    const [variant, original] = await Promise.all([readFile(join(dir, rel)), readFile(join(dir, source))]);
    let decoded: Buffer;
    try {
      decoded = await decode(encoding, variant);
    } catch (error) {
      failures.push(`${rel}: does not decode as ${encoding} (${(error as Error).message})`);
      continue;
    }
    if (!decoded.equals(original)) {
      failures.push(`${rel}: decodes to ${decoded.length} bytes that differ from its ${original.length}-byte source`);
      continue;
    }
    const tally = perEncoding[encoding];
    tally.files++;
    tally.bytes += variant.length;
    tally.sourceBytes += original.length;
    sizes.set(`${source}\0${encoding}`, variant.length);
  }
  for (const [file, e] of options.required ?? []) {
    if (!sizes.has(`${file}\0${e}`)) failures.push(`${file}${SUFFIX[e]}: missing`);
  }
  if (failures.length > 0) {
    const shown = failures.slice(0, 20).join("\n  ");
    throw new Error(`${tool}: output in ${dir} failed verification (${failures.length} problems):\n  ${shown}`);
  }
  return { perEncoding, sizes };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
export const megabytes = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
export const ratio = (a: number, b: number): string => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(3)}×` : "n/a");

/** A plain aligned table: first column left, the rest right. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(line(row));
}

export function heading(title: string): void {
  console.log(`\n## ${title}\n`);
}

export const OUR_BIN = join(ROOT, "bin", "precompressor.js");
let ourCli: { ok: true } | { ok: false; reason: string } | undefined;

/**
 * Build dist/ once per bench run (the bin is a shim over dist/cli/main.js, and a
 * stale dist would measure old code). Unavailable, with the reason, while the
 * CLI is missing or does not build: the other rows are still worth having.
 */
export function ourCliReady(): { ok: true } | { ok: false; reason: string } {
  if (ourCli) return ourCli;
  if (!existsSync(OUR_BIN)) {
    ourCli = { ok: false, reason: "bin/precompressor.js does not exist yet" };
    return ourCli;
  }
  try {
    execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    ourCli = { ok: true };
  } catch (error) {
    const out = (error as { stdout?: Buffer }).stdout?.toString() ?? String(error);
    ourCli = { ok: false, reason: `npm run build failed:\n${out.slice(0, 2000)}` };
  }
  return ourCli;
}

/** The arguments that run our CLI under the same Node as the bench (so the zstd backend matches the floor's). */
export function ourCommand(dir: string, flags: string[]): [string, string[]] {
  return [process.execPath, [OUR_BIN, dir, "--quiet", "--json", ...flags]];
}

/** The subset of our `--json` summary the bench reads. */
export interface OurSummary {
  files: number;
  states: Record<string, number>;
  skipped: Record<string, number>;
  durationMs: number;
}
