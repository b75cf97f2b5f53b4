// Issue 19's scale targets: synthetic trees of 100,000 and 1,000,000 small files, each measured in
// one run against a bare stats walk of the same tree: a cold run, an unchanged rerun, four shard
// runs and their merge, with the peak resident memory of each whole process tree. Opt-in
// (`npm run bench -- scale`): the 1M tree alone is about a gigabyte of small files.
import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  heading,
  type Measured,
  measure,
  median,
  megabytes,
  OUR_BIN,
  type OurSummary,
  ourCliReady,
  ourCommand,
  ratio,
  type SectionContext,
  seconds,
  verifyOutput,
} from "./bench-util.js";
import { ROOT } from "./corpus.js";

/** The bound for every run at 1M files, whole process tree. */
const RSS_LIMIT = 1e9;
const SHARDS = 4;
/** Files per leaf folder and leaf folders per parent: no folder holds more than 1,000 entries. */
const PER_FOLDER = 500;
const FOLDERS_PER_PARENT = 100;

/** A small fast PRNG (mulberry32): the same tree every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const WORDS = (
  "const let return function export import default async await value index length items " +
  "render props state module options config result error filter reduce push slice width height " +
  "color margin padding border display flex grid block none auto transform opacity path fill"
).split(" ");

/** Text that compresses like a real asset (about 3-5×), not like a repeated line: each file is its own. */
function textOf(ext: string, size: number, rand: () => number): string {
  const word = () => WORDS[Math.floor(rand() * WORDS.length)] as string;
  const ident = () => `${word()}${Math.floor(rand() * 1000).toString(36)}`;
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    let line: string;
    if (ext === "css")
      line = `.${ident()} .${ident()} { ${word()}: ${Math.floor(rand() * 400)}px; ${word()}: #${Math.floor(rand() * 0xffffff).toString(16)}; }\n`;
    else if (ext === "json")
      line = `  "${ident()}": { "${word()}": ${Math.floor(rand() * 1e6)}, "${word()}": "${ident()} ${ident()}" },\n`;
    else if (ext === "svg")
      line = `<path d="M${Math.floor(rand() * 500)} ${Math.floor(rand() * 500)}L${(rand() * 99).toFixed(2)} ${(rand() * 99).toFixed(2)}Z" fill="#${Math.floor(rand() * 0xfff).toString(16)}"/>\n`;
    else
      line = `export function ${ident()}(${ident()}, ${ident()}) { return ${ident()}.${word()}(${Math.floor(rand() * 1e4)}) || "${ident()}"; }\n`;
    parts.push(line);
    length += line.length;
  }
  return parts.join("").slice(0, size);
}

export interface Tree {
  files: number;
  /** Files of a compressible type and at least --min-size: the ones that get variants. */
  compressible: number;
  bytes: number;
  /** Every file's path relative to the root, to check the output against. */
  rels: Set<string>;
}

/**
 * Lay out `count` files under `dir`: 3% JS/CSS/JSON/SVG of 1-8 KB (encoded), 2% HTML/text under
 * 1 KB (listed, too small to encode), the rest images and fonts of 0-4 KB, mostly small (hashed
 * and listed only).
 */
export function makeTree(dir: string, count: number, seed = 19): Tree {
  const rand = prng(seed);
  // Incompressible bodies are slices of one random pool: hashing them costs the same as unique bytes.
  const pool = createHash("sha512");
  const noise = Buffer.alloc(1 << 20);
  for (let i = 0; i < noise.length; i += 64) pool.copy().update(String(i)).digest().copy(noise, i);
  const tree: Tree = { files: 0, compressible: 0, bytes: 0, rels: new Set() };
  let folder = "";
  let prefix = "";
  for (let i = 0; i < count; i++) {
    if (i % PER_FOLDER === 0) {
      const leaf = Math.floor(i / PER_FOLDER);
      prefix = `p${Math.floor(leaf / FOLDERS_PER_PARENT)}/q${leaf % FOLDERS_PER_PARENT}/`;
      folder = join(dir, prefix);
      mkdirSync(folder, { recursive: true });
    }
    const pick = rand();
    let name: string;
    let body: string | Buffer;
    if (pick < 0.03) {
      const ext = (["js", "css", "json", "svg"] as const)[Math.floor(rand() * 4)] as string;
      name = `f${i}.${ext}`;
      body = textOf(ext, 1024 + Math.floor(rand() * 7 * 1024), rand);
      tree.compressible++;
    } else if (pick < 0.05) {
      const ext = rand() < 0.5 ? "html" : "txt";
      name = `f${i}.${ext}`;
      body = textOf("js", Math.floor(rand() * 1000), rand);
    } else {
      const ext = (["png", "jpg", "webp", "woff2"] as const)[Math.floor(rand() * 4)] as string;
      const size = Math.floor(4096 * rand() ** 2);
      const at = Math.floor(rand() * (noise.length - size));
      name = `f${i}.${ext}`;
      body = noise.subarray(at, at + size);
    }
    writeFileSync(join(folder, name), body);
    tree.rels.add(prefix + name);
    tree.files++;
    tree.bytes += typeof body === "string" ? Buffer.byteLength(body) : body.length;
  }
  return tree;
}

/** fast-glob with `stats: true` over the tree, the patterns our walk uses: the floor of any rerun. */
const BARE_WALK = `
import fg from "fast-glob";
const entries = await fg("**/*", { cwd: process.argv[1], dot: false, onlyFiles: true, stats: true, ignore: ["**/node_modules/**"] });
let bytes = 0;
for (const e of entries) bytes += e.stats.size;
console.log(JSON.stringify({ files: entries.length, bytes }));
`;

function bareWalk(dir: string): Promise<Measured> {
  // cwd ROOT: the evaluated module resolves fast-glob from this repository's node_modules.
  return measure(process.execPath, ["--input-type=module", "-e", BARE_WALK, dir], { cwd: ROOT });
}

async function ourRun(
  dir: string,
  cacheDir: string,
  flags: string[] = [],
): Promise<Measured & { summary: OurSummary }> {
  const [cmd, args] = ourCommand(dir, ["--cache-dir", cacheDir, ...flags]);
  const m = await measure(cmd, args);
  return { ...m, summary: JSON.parse(m.stdout) as OurSummary };
}

async function digestOf(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

interface Step {
  name: string;
  ms: number;
  rss: number;
  largest: number;
}

interface SizeResult {
  files: number;
  steps: Map<string, Step>;
}

const step = (name: string, m: Measured): Step => ({
  name,
  ms: m.ms,
  rss: m.treePeakRss,
  largest: m.largestProcessRss,
});

/** The median wall time of `rounds` runs; memory is the highest seen, the bound being on every run. */
function combine(name: string, runs: Measured[]): Step {
  return {
    name,
    ms: median(runs.map((r) => r.ms)),
    rss: Math.max(...runs.map((r) => r.treePeakRss)),
    largest: Math.max(...runs.map((r) => r.largestProcessRss)),
  };
}

async function measureSize(count: number, ctx: SectionContext): Promise<SizeResult> {
  const base = await mkdtemp(join(tmpdir(), `precompressor-scale-${count}-`));
  try {
    const dir = join(base, "site");
    const cacheDir = join(base, "cache");
    const started = performance.now();
    const tree = makeTree(dir, count);
    console.log(
      `${count} files: tree of ${megabytes(tree.bytes)} (${tree.compressible} to encode) made in ${seconds(performance.now() - started)}`,
    );
    const steps = new Map<string, Step>();
    const cold = await ourRun(dir, cacheDir);
    if (cold.summary.files !== tree.files)
      throw new Error(`cold run listed ${cold.summary.files} files of ${tree.files}`);
    steps.set("cold", step("cold run", cold));
    // Walk and rerun alternate, so both see the same page cache and the same neighbours' load.
    const walks: Measured[] = [];
    const reruns: Measured[] = [];
    for (let round = 0; round < ctx.rounds; round++) {
      const walk = await bareWalk(dir);
      const walked = JSON.parse(walk.stdout) as { files: number };
      // The walk sees the variants and the manifest's dotfile is left out, as in our walk.
      if (walked.files < tree.files) throw new Error(`bare walk saw ${walked.files} files of ${tree.files}`);
      walks.push(walk);
      const rerun = await ourRun(dir, cacheDir);
      if (rerun.summary.states.unchanged !== tree.files)
        throw new Error(`unchanged rerun: ${JSON.stringify(rerun.summary.states)}`);
      reruns.push(rerun);
    }
    steps.set("walk", combine("bare walk (fast-glob, stats)", walks));
    steps.set("rerun", combine("unchanged rerun", reruns));
    const single = await digestOf(join(dir, ".precompressor.json"));
    // Each shard job reads the whole tree and starts from the single run's manifest, as a CI job
    // that restored it would; their partial manifests are then merged in place.
    const shardRuns: Measured[] = [];
    for (let k = 1; k <= SHARDS; k++) shardRuns.push(await ourRun(dir, cacheDir, ["--shard", `${k}/${SHARDS}`]));
    steps.set("shard", {
      ...combine(`one of ${SHARDS} shard runs`, shardRuns),
      ms: Math.max(...shardRuns.map((r) => r.ms)),
    });
    const merged = await measure(process.execPath, [OUR_BIN, "merge", dir]);
    steps.set("merge", step(`merge of ${SHARDS} partial manifests`, merged));
    if ((await digestOf(join(dir, ".precompressor.json"))) !== single)
      throw new Error(`${count} files: the merged manifest differs from the single run's`);
    await verifyOutput(`precompressor (${count} files)`, dir, {
      sources: tree.rels,
      bookkeeping: (rel) => rel === ".precompressor.json" || rel === ".precompressor.lock",
    });
    return { files: tree.files, steps };
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/** The sizes measured: BENCH_SCALE_SIZES (comma-separated), else the issue's, a tenth of them with --quick. */
function sizes(ctx: SectionContext): number[] {
  const given = process.env.BENCH_SCALE_SIZES;
  if (given) {
    const list = given.split(",").map(Number);
    if (list.some((n) => !Number.isSafeInteger(n) || n < 1))
      throw new Error(`BENCH_SCALE_SIZES expects whole numbers, got "${given}"`);
    return list;
  }
  return ctx.quick ? [10_000, 100_000] : [100_000, 1_000_000];
}

function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  console.log(`| ${header.join(" | ")} |`);
  console.log(`|${header.map((_, i) => (i < 2 ? " --- " : " ---: ")).join("|")}|`);
  for (const row of rows) console.log(`| ${row.join(" | ")} |`);
}

const ORDER = ["walk", "cold", "rerun", "shard", "merge"] as const;

export async function runScaleBench(ctx: SectionContext): Promise<void> {
  heading("A million files in bounded memory (issue 19)");
  const our = ourCliReady();
  if (!our.ok) {
    console.log(`precompressor: NOT MEASURED — ${our.reason}`);
    return;
  }
  const results: SizeResult[] = [];
  for (const count of sizes(ctx)) results.push(await measureSize(count, ctx));
  const smallest = results[0] as SizeResult;
  const perFile = (r: SizeResult, key: string) => (r.steps.get(key) as Step).ms / r.files;
  const rows = results.flatMap((r) =>
    ORDER.map((key) => {
      const s = r.steps.get(key) as Step;
      return [
        r.files.toLocaleString("en-US"),
        s.name,
        seconds(s.ms),
        megabytes(s.rss),
        megabytes(s.largest),
        ratio(s.ms, (r.steps.get("walk") as Step).ms),
        `${((s.ms / r.files) * 1000).toFixed(1)} µs`,
        ratio(perFile(r, key), perFile(smallest, key)),
      ];
    }),
  );
  markdownTable(
    [
      "files",
      "run",
      "wall",
      "peak RSS (tree)",
      "largest process",
      "÷ bare walk",
      "per file",
      `per file ÷ ${smallest.files.toLocaleString("en-US")}`,
    ],
    rows,
  );
  const largest = results.at(-1) as SizeResult;
  const at = (key: string) => largest.steps.get(key) as Step;
  const verdict = (ok: boolean) => (ok ? "met" : "NOT MET");
  const rssOk = ["cold", "rerun", "shard", "merge"].every((k) => at(k).rss <= RSS_LIMIT);
  console.log(
    `\ntargets at ${largest.files.toLocaleString("en-US")} files: peak RSS of the tree ≤ 1 GB for every run: ${verdict(rssOk)}; ` +
      `unchanged rerun ≤ 3× the bare walk: ${verdict(at("rerun").ms <= 3 * at("walk").ms)}; ` +
      `per-file cold and rerun time ≤ 1.2× that at ${smallest.files.toLocaleString("en-US")}: ${verdict(
        perFile(largest, "cold") <= 1.2 * perFile(smallest, "cold") &&
          perFile(largest, "rerun") <= 1.2 * perFile(smallest, "rerun"),
      )}.`,
  );
  console.log(
    "Shard row: the slowest of the four jobs' walls and the highest of their memory; the merged manifest is checked byte for byte against the single run's.",
  );
}
