// Issues 5 and 18: a cold build against the codec floor and against the peers, on two corpora,
// measured side by side in one run (the machine is noisy), every output decoded first.
import { rm, stat } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import fg from "fast-glob";
import { isCompressible } from "../src/formats.js";
import { zstdBackend } from "../src/zstd.js";
import {
  ENCODINGS,
  type Encoding,
  heading,
  type Measured,
  measure,
  median,
  megabytes,
  type OurSummary,
  ourCliReady,
  ourCommand,
  printTable,
  ratio,
  type SectionContext,
  seconds,
  type Verified,
  verifyOutput,
} from "./bench-util.js";
import { type Eligible, type Floor, LEVELS, measureCodecFloor, onPath } from "./codec-floor.js";
import { BENCH_DIR, type CorpusName, copyCorpus, corpusPackages, ensureCorpus, ROOT } from "./corpus.js";

const MIN_SIZE = 1024;
const MIN_RATIO = 0.95;

const PRECOMPRESS_BIN = join(ROOT, "node_modules/precompress/dist/precompress.js");
const GZIPPER_BIN = join(ROOT, "node_modules/gzipper/bin/index.js");

interface Tool {
  name: string;
  encodings: readonly Encoding[];
  /** Why this tool has no row, if it cannot run. */
  unavailable?: string;
  command(dir: string): [string, string[], { cwd?: string }];
  /** Variants this tool must have written for its output to count. */
  required: [string, Encoding][];
  bookkeeping?: (rel: string) => boolean;
}

interface Run extends Measured {
  verified: Verified;
  summary?: OurSummary;
}

/** The files every tool is given: a compressible type and at least --min-size bytes. */
export async function eligibleFiles(dir: string, all: readonly string[]): Promise<Eligible[]> {
  const eligible: Eligible[] = [];
  for (const rel of all) {
    if (!isCompressible(rel)) continue;
    const size = (await stat(join(dir, rel))).size;
    if (size >= MIN_SIZE) eligible.push({ rel, size });
  }
  return eligible;
}

function floorOf(floor: Floor, encodings: readonly Encoding[], cores: number): number {
  return encodings.reduce((sum, e) => sum + floor.ms[e], 0) / cores;
}

function floorCpu(floor: Floor, encodings: readonly Encoding[]): number {
  return encodings.reduce((sum, e) => sum + floor.cpuMs[e], 0);
}

const ourBookkeeping = (rel: string) => rel === ".precompressor.json" || rel === ".precompressor.lock";

function tools(eligible: readonly Eligible[], floor: Floor): Tool[] {
  const our = ourCliReady();
  const everything = (encodings: readonly Encoding[]) =>
    eligible.flatMap((f) => encodings.map((e): [string, Encoding] => [f.rel, e]));
  // We keep a variant only when it passes --min-ratio; the floor's sizes say which do.
  const sizeOf = new Map(eligible.map((f) => [f.rel, f.size]));
  const worthIt = (encodings: readonly Encoding[]) =>
    everything(encodings).filter(
      ([rel, e]) => (floor.sizes.get(`${rel}\0${e}`) ?? Number.POSITIVE_INFINITY) <= MIN_RATIO * (sizeOf.get(rel) ?? 0),
    );
  const extensions = [...new Set(eligible.map((f) => f.rel.slice(f.rel.lastIndexOf(".") + 1)))].sort();
  const ours = (encodings: readonly Encoding[]): Tool => ({
    name: encodings.length === 3 ? "precompressor" : `precompressor (${encodings.join(",")})`,
    encodings,
    unavailable: our.ok ? undefined : our.reason,
    command: (dir) => {
      const [cmd, args] = ourCommand(dir, ["--no-cache", "--encodings", encodings.join(",")]);
      return [cmd, args, {}];
    },
    required: worthIt(encodings),
    bookkeeping: ourBookkeeping,
  });
  return [
    ours(ENCODINGS),
    {
      name: "gzipper",
      encodings: ENCODINGS,
      // Its zstd (simple-zstd) spawns the zstd CLI for every file and refuses to load without it.
      unavailable: onPath("zstd") ? undefined : "needs the zstd CLI on PATH (apt-get install zstd)",
      // Same extensions and size threshold as our eligibility, so every tool does the same files.
      command: (dir) => [
        process.execPath,
        [
          GZIPPER_BIN,
          "compress",
          dir,
          "--gzip",
          "--brotli",
          "--zstd",
          "--gzip-level",
          String(LEVELS.gzip),
          "--brotli-quality",
          String(LEVELS.br),
          "--zstd-level",
          String(LEVELS.zstd),
          "--include",
          extensions.join(","),
          "--threshold",
          String(MIN_SIZE),
          "--no-color",
        ],
        {},
      ],
      required: everything(ENCODINGS),
    },
    ours(["gzip", "br"]),
    {
      name: "precompress",
      encodings: ["gzip", "br"],
      // precompress has no size threshold: it is given the eligible files by name (relative, so argv stays short).
      command: (dir) => [
        process.execPath,
        [PRECOMPRESS_BIN, "--types", "gz,br", "--silent", ...eligible.map((f) => f.rel)],
        { cwd: dir },
      ],
      required: everything(["gzip", "br"]),
    },
  ];
}

function printInvocations(list: readonly Tool[]): void {
  for (const tool of list) {
    const [cmd, args, opts] = tool.command("<dir>");
    const shown = args.length > 24 ? [...args.slice(0, 5), `… ${args.length - 5} file names`] : args;
    const where = opts.cwd ? ` (cwd <dir>)` : "";
    console.log(
      `  ${tool.name}: ${cmd.endsWith("node") ? "node" : cmd} ${shown.map((a) => a.replace(ROOT, ".")).join(" ")}${where}`,
    );
  }
}

/** One corpus's result, for the closing table of both. */
interface CorpusResult {
  name: CorpusName;
  files: number;
  eligible: number;
  ratioWall: number;
  ratioCpu: number;
  sizeProblems: string[];
}

/** Issue 18's targets: node:zlib zstd (Node >= 22.15) sits at the floor; the bindings get more room. */
const TARGET = zstdBackend === "node:zlib" ? 1.1 : 1.25;

export async function runBuildBench(ctx: SectionContext): Promise<void> {
  const results: CorpusResult[] = [];
  for (const name of ["assets", "small"] as const) results.push(await benchCorpus(name, ctx));
  heading(`Cold build ÷ codec floor, both corpora (target ≤ ${TARGET.toFixed(2)} on ${process.version})`);
  printTable(
    ["corpus", "files", "eligible", "wall ÷ floor", "CPU ÷ floor CPU", "target", "output bytes ≤ reference"],
    results.map((r) => [
      r.name,
      String(r.files),
      String(r.eligible),
      r.ratioWall.toFixed(3),
      r.ratioCpu.toFixed(3),
      r.ratioWall <= TARGET ? `≤ ${TARGET.toFixed(2)} ✓` : `≤ ${TARGET.toFixed(2)} ✗`,
      r.sizeProblems.length ? `✗ ${r.sizeProblems.join("; ")}` : "✓",
    ]),
  );
  // A lower level must never buy the speed: a larger output fails the bench.
  if (results.some((r) => r.sizeProblems.length)) {
    console.log("\nFAIL: an encoding's output is larger than the reference levels' (gzip 9, brotli 11, zstd 19)");
    process.exitCode = 1;
  }
}

async function benchCorpus(corpusName: CorpusName, ctx: SectionContext): Promise<CorpusResult> {
  heading(`Cold build vs codec floor and peers, corpus "${corpusName}"${ctx.quick ? " — QUICK" : ""}`);
  const corpus = await ensureCorpus({ quick: ctx.quick, name: corpusName });
  console.log(`pins: ${corpusPackages(corpusName).join(" ")}`);
  const all = (await fg("**/*", { cwd: corpus.dir, onlyFiles: true, dot: true })).sort();
  const sources = new Set(all);
  const eligible = await eligibleFiles(corpus.dir, all);
  const eligibleBytes = eligible.reduce((s, f) => s + f.size, 0);
  const cores = availableParallelism();
  const small = eligible.filter((f) => f.size < 16 * 1024).length;
  console.log(
    `eligible (compressible type, >= ${MIN_SIZE} B): ${eligible.length} of ${all.length} files (${small} under 16 KB), ${megabytes(eligibleBytes)}; cores: ${cores}; node ${process.version}; zstd backend: ${zstdBackend}`,
  );

  console.log("\nfloor: each eligible file once per encoding, one at a time, by the codec itself …");
  const floor = await measureCodecFloor(corpus.dir, eligible);
  console.log(`zstd floor encoded by: ${floor.zstdBy}`);
  printTable(
    ["encoding", "level", "single-thread", "÷ cores", "CPU"],
    ENCODINGS.map((e) => [
      e,
      String(LEVELS[e]),
      seconds(floor.ms[e]),
      seconds(floor.ms[e] / cores),
      seconds(floor.cpuMs[e]),
    ]),
  );
  const total = ENCODINGS.reduce((s, e) => s + floor.ms[e], 0);
  console.log(`floor (all three): ${seconds(total)} single-thread ÷ ${cores} cores = ${seconds(total / cores)}`);

  // --no-peers: precompressor against the floor only (gzipper alone takes minutes a round).
  const list = tools(eligible, floor).filter((t) => !process.argv.includes("--no-peers") || t.name === "precompressor");
  console.log("\ninvocations:");
  printInvocations(list);
  for (const tool of list) if (tool.unavailable) console.log(`  ${tool.name}: NOT MEASURED — ${tool.unavailable}`);

  const runs = new Map<string, Run[]>(list.map((t) => [t.name, []]));
  for (let round = 1; round <= ctx.rounds; round++) {
    for (const tool of list) {
      if (tool.unavailable) continue;
      const dir = await copyCorpus(join(BENCH_DIR, "run", tool.name.replace(/[^a-z0-9]+/gi, "-")), corpus.dir);
      const [cmd, args, opts] = tool.command(dir);
      const measured = await measure(cmd, args, opts);
      const verified = await verifyOutput(tool.name, dir, {
        sources,
        pristine: corpus.dir,
        required: tool.required,
        bookkeeping: tool.bookkeeping,
      });
      const summary = tool.bookkeeping === ourBookkeeping ? (JSON.parse(measured.stdout) as OurSummary) : undefined;
      runs.get(tool.name)?.push({ ...measured, verified, summary });
      console.log(
        `round ${round}/${ctx.rounds} ${tool.name.padEnd(24)} ${seconds(measured.ms).padStart(9)} wall ${seconds(measured.cpuMs).padStart(9)} cpu  load ${loadavg()[0]?.toFixed(2)}  verified`,
      );
      await rm(dir, { recursive: true, force: true });
    }
  }

  const wall = (name: string) => median((runs.get(name) ?? []).map((r) => r.ms));
  heading("Wall time (median of alternating rounds; every output decoded and compared first)");
  printTable(
    [
      "tool",
      "encodings",
      "median",
      "min–max",
      "÷ floor",
      "in-process",
      "CPU ÷ floor CPU",
      "peak RSS tree",
      "largest proc",
    ],
    list.map((tool) => {
      const r = runs.get(tool.name) ?? [];
      if (r.length === 0) return [tool.name, tool.encodings.join(","), "not measured", "", "", "", "", "", ""];
      const times = r.map((x) => x.ms);
      const inProcess = r[0]?.summary ? seconds(median(r.map((x) => x.summary?.durationMs ?? 0))) : "";
      return [
        tool.name,
        tool.encodings.join(","),
        seconds(median(times)),
        `${(Math.min(...times) / 1000).toFixed(1)}–${(Math.max(...times) / 1000).toFixed(1)}`,
        ratio(median(times), floorOf(floor, tool.encodings, cores)),
        inProcess,
        ratio(median(r.map((x) => x.cpuMs)), floorCpu(floor, tool.encodings)),
        megabytes(Math.max(...r.map((x) => x.treePeakRss))),
        megabytes(Math.max(...r.map((x) => x.largestProcessRss))),
      ];
    }),
  );
  console.log("RSS: tree = sum over the process and its descendants, sampled every 20 ms (max over rounds);");
  console.log("     largest proc = kernel's exact peak of the largest single process (GNU time %M).");
  console.log(
    "CPU ÷ floor CPU: the tool's user+sys CPU over the CPU the floor's encodes took (1.0 = no work beyond the codecs).",
  );
  console.log("in-process: precompressor's own durationMs from --json; wall minus it is process start-up and exit.");
  const cpu = (name: string) => median((runs.get(name) ?? []).map((r) => r.cpuMs));
  const floorAll = floorOf(floor, ENCODINGS, cores);
  const floorGzBr = floorOf(floor, ["gzip", "br"], cores);
  // CPU ratios beside the wall ones: other load on a shared machine moves wall time far more than CPU time.
  printTable(
    ["ratio (medians)", "wall", "CPU", "target", "encodings compared"],
    [
      [
        "precompressor ÷ floor",
        ratio(wall("precompressor"), floorAll),
        ratio(cpu("precompressor"), floorCpu(floor, ENCODINGS)),
        "≤ 1.10",
        "gzip,br,zstd",
      ],
      [
        "precompressor ÷ gzipper",
        ratio(wall("precompressor"), wall("gzipper")),
        ratio(cpu("precompressor"), cpu("gzipper")),
        "≤ 0.95",
        "gzip,br,zstd",
      ],
      [
        "precompressor ÷ precompress",
        ratio(wall("precompressor (gzip,br)"), wall("precompress")),
        ratio(cpu("precompressor (gzip,br)"), cpu("precompress")),
        "≤ 0.95",
        "gzip,br (precompress has no zstd)",
      ],
      [
        "precompressor (gzip,br) ÷ its floor",
        ratio(wall("precompressor (gzip,br)"), floorGzBr),
        ratio(cpu("precompressor (gzip,br)"), floorCpu(floor, ["gzip", "br"])),
        "",
        "gzip,br",
      ],
    ],
  );

  heading("Output bytes per encoding (from the verified variants of round 1)");
  const rows: string[][] = [];
  for (const tool of list) {
    const v = runs.get(tool.name)?.[0]?.verified;
    if (!v) continue;
    for (const e of tool.encodings) {
      const t = v.perEncoding[e];
      rows.push([tool.name, e, String(t.files), megabytes(t.bytes), ratio(t.bytes, t.sourceBytes)]);
    }
  }
  printTable(["tool", "encoding", "variants", "bytes", "÷ source"], rows);
  // Ours drops variants that miss --min-ratio; the peers keep them, so compare on the files both wrote.
  const ourV = runs.get("precompressor")?.[0]?.verified;
  if (ourV) {
    console.log("\nprecompressor ÷ peer on the files both wrote (must be ≤ 1 at the same level):");
    for (const peer of ["gzipper", "precompress"]) {
      const peerV = runs.get(peer)?.[0]?.verified;
      if (!peerV) continue;
      const cells = ENCODINGS.flatMap((e) => {
        let ourBytes = 0;
        let peerBytes = 0;
        let larger = 0;
        for (const [key, size] of ourV.sizes) {
          const theirs = key.endsWith(`\0${e}`) ? peerV.sizes.get(key) : undefined;
          if (theirs === undefined) continue;
          ourBytes += size;
          peerBytes += theirs;
          if (size > theirs) larger++;
        }
        const delta = ourBytes - peerBytes;
        return peerBytes
          ? [`${e} ${ratio(ourBytes, peerBytes)} (${delta >= 0 ? "+" : ""}${delta} B; ${larger} files larger)`]
          : [];
      });
      console.log(`  vs ${peer.padEnd(12)} ${cells.join("   ")}`);
    }
  }
  console.log("\nprecompressor ÷ the reference levels' output of the same files (gzip 9, brotli 11, zstd 19):");
  const sizeProblems = ourV ? againstReference(ourV.sizes, floor.sizes) : ["precompressor did not run"];
  return {
    name: corpusName,
    files: all.length,
    eligible: eligible.length,
    ratioWall: wall("precompressor") / floorOf(floor, ENCODINGS, cores),
    ratioCpu: cpu("precompressor") / floorCpu(floor, ENCODINGS),
    sizeProblems,
  };
}

/** Each encoding's total over the variants we wrote, against the reference levels' output of the same files. */
function againstReference(ours: ReadonlyMap<string, number>, reference: ReadonlyMap<string, number>): string[] {
  const problems: string[] = [];
  for (const e of ENCODINGS) {
    let ourBytes = 0;
    let referenceBytes = 0;
    for (const [key, size] of ours) {
      const theirs = key.endsWith(`\0${e}`) ? reference.get(key) : undefined;
      if (theirs === undefined) continue;
      ourBytes += size;
      referenceBytes += theirs;
    }
    console.log(
      `  ${e}: ${ourBytes} B against the reference's ${referenceBytes} B (${ratio(ourBytes, referenceBytes)})`,
    );
    if (ourBytes > referenceBytes) problems.push(`${e} ${ratio(ourBytes, referenceBytes)}`);
  }
  return problems;
}
