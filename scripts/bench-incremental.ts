// Issue 3: what reruns cost. Cold run, unchanged rerun, rerun after editing 1%
// of the files, and a fresh copy of the site with a warm persistent cache.
import { appendFile, cp, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import fg from "fast-glob";
import { isCompressible } from "../src/formats.js";
import { DEFAULT_MIN_SIZE } from "../src/limits.js";
import {
  heading,
  type Measured,
  measure,
  median,
  type OurSummary,
  ourCliReady,
  ourCommand,
  printTable,
  ratio,
  type SectionContext,
  seconds,
  verifyOutput,
} from "./bench-util.js";
import { BENCH_DIR, copyCorpus, ensureCorpus } from "./corpus.js";

/** Share of the corpus's files edited before the third run. */
const EDIT_SHARE = 0.01;
/** The unchanged rerun is short and noisy: take the median of a few. */
const UNCHANGED_REPEATS = 3;
/** The file count the absolute bound for an unchanged rerun is stated for. */
const SUBSET_FILES = 3000;

const bookkeeping = (rel: string) => rel === ".precompressor.json" || rel === ".precompressor.lock";

interface Step {
  name: string;
  ms: number;
  summary: OurSummary;
  target?: string;
}

async function run(dir: string, cacheDir: string): Promise<Measured & { summary: OurSummary }> {
  const [cmd, args] = ourCommand(dir, ["--cache-dir", cacheDir]);
  const measured = await measure(cmd, args);
  return { ...measured, summary: JSON.parse(measured.stdout) as OurSummary };
}

const states = (s: OurSummary) =>
  Object.entries(s.states)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${state} ${n}`)
    .join(", ");

export async function runIncrementalBench(ctx: SectionContext): Promise<void> {
  heading(`Incremental reruns and the persistent cache (issue 3)${ctx.quick ? " — QUICK corpus" : ""}`);
  const our = ourCliReady();
  if (!our.ok) {
    console.log(`precompressor: NOT MEASURED — ${our.reason}`);
    return;
  }
  const corpus = await ensureCorpus({ quick: ctx.quick });
  const all = (await fg("**/*", { cwd: corpus.dir, onlyFiles: true })).sort();
  const sources = new Set(all);
  const cacheDir = join(BENCH_DIR, "cache");
  await rm(cacheDir, { recursive: true, force: true });
  const dir = await copyCorpus(join(BENCH_DIR, "run", "incremental"), corpus.dir);
  const check = (what: string, at: string) => verifyOutput(`precompressor (${what})`, at, { sources, bookkeeping });
  const steps: Step[] = [];

  // Cold: an empty cache, which this run fills (as a first CI build would).
  const cold = await run(dir, cacheDir);
  await check("cold", dir);
  steps.push({ name: "cold run (empty cache)", ms: cold.ms, summary: cold.summary });

  const unchanged: (Measured & { summary: OurSummary })[] = [];
  for (let i = 0; i < UNCHANGED_REPEATS; i++) unchanged.push(await run(dir, cacheDir));
  const last = unchanged.at(-1) as Measured & { summary: OurSummary };
  steps.push({
    name: `unchanged rerun (median of ${UNCHANGED_REPEATS})`,
    ms: median(unchanged.map((r) => r.ms)),
    summary: last.summary,
    target: "< 5% of cold and < 0.5 s",
  });

  // Evenly spread over the files that get variants, so every edit costs real compression.
  const compressible: string[] = [];
  for (const rel of all) {
    if (isCompressible(rel) && (await stat(join(corpus.dir, rel))).size >= DEFAULT_MIN_SIZE) compressible.push(rel);
  }
  const count = Math.max(1, Math.round(all.length * EDIT_SHARE));
  const stride = compressible.length / count;
  const edited = Array.from({ length: count }, (_, i) => compressible[Math.floor(i * stride)] as string);
  for (const rel of edited) await appendFile(join(dir, rel), `\n/* bench edit ${rel} */\n`);
  const afterEdit = await run(dir, cacheDir);
  await check("after edit", dir);
  steps.push({ name: `rerun after editing ${count} files (1%)`, ms: afterEdit.ms, summary: afterEdit.summary });

  // A clean CI checkout: same content, new folder, new mtimes, only the cache carries over.
  const fresh = await copyCorpus(join(BENCH_DIR, "run", "incremental-fresh"), corpus.dir);
  const warm = await run(fresh, cacheDir);
  await check("fresh dir + warm cache", fresh);
  steps.push({ name: "fresh dir + warm cache", ms: warm.ms, summary: warm.summary, target: "< 10% of cold" });

  // The absolute bound is stated for 3,000 files: measure that size directly, not scaled.
  const subset = join(BENCH_DIR, "run", "incremental-3000");
  await rm(subset, { recursive: true, force: true });
  for (const rel of all.slice(0, SUBSET_FILES)) await cp(join(corpus.dir, rel), join(subset, rel));
  await run(subset, cacheDir);
  const subsetRuns: (Measured & { summary: OurSummary })[] = [];
  for (let i = 0; i < UNCHANGED_REPEATS; i++) subsetRuns.push(await run(subset, cacheDir));
  steps.push({
    name: `unchanged rerun, first ${SUBSET_FILES} files (median of ${UNCHANGED_REPEATS})`,
    ms: median(subsetRuns.map((r) => r.ms)),
    summary: (subsetRuns.at(-1) as Measured & { summary: OurSummary }).summary,
    target: "< 0.5 s",
  });

  printTable(
    ["scenario", "wall", "÷ cold", "in-process", "file states", "target"],
    steps.map((s) => [
      s.name,
      seconds(s.ms),
      ratio(s.ms, cold.ms),
      seconds(s.summary.durationMs),
      states(s.summary),
      s.target ?? "",
    ]),
  );
  console.log(
    `corpus: ${all.length} files; cache: ${cacheDir}; every run's output decoded and compared with its source.`,
  );
  await rm(dir, { recursive: true, force: true });
  await rm(fresh, { recursive: true, force: true });
  await rm(subset, { recursive: true, force: true });
}
