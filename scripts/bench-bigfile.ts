// Issue 5's memory target: peak RSS on the corpus, and again with one huge file
// added, which must stream (flat memory). Opt-in (`npm run bench -- bigfile`):
// brotli 11 on 500 MB alone takes about twenty minutes on this machine.
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import fg from "fast-glob";
import {
  heading,
  type Measured,
  measure,
  megabytes,
  ourCliReady,
  ourCommand,
  printTable,
  ratio,
  type SectionContext,
  seconds,
  verifyOutput,
} from "./bench-util.js";
import { BENCH_DIR, copyCorpus, ensureCorpus } from "./corpus.js";

const BIG_NAME = "huge/bundle.js";

/** Size of the added file: BENCH_BIG_MB, default 500 (the figure). */
function bigBytes(): number {
  const mb = Number(process.env.BENCH_BIG_MB ?? 500);
  if (!(mb > 0)) throw new Error(`BENCH_BIG_MB expects a positive number, got "${process.env.BENCH_BIG_MB}"`);
  return Math.round(mb * 1e6);
}

/**
 * Real JavaScript: the corpus's own .js files, in sorted order, repeated until
 * the size is reached. One pass is far longer than any codec window (16 MB at
 * most), so the repetition buys the encoders nothing.
 */
async function writeBigFile(corpusDir: string, path: string, size: number): Promise<void> {
  const parts = (await fg("**/*.js", { cwd: corpusDir })).sort();
  const out = createWriteStream(path);
  let written = 0;
  while (written < size) {
    for (const rel of parts) {
      if (written >= size) break;
      const bytes = await readFile(join(corpusDir, rel));
      const chunk = bytes.subarray(0, Math.min(bytes.length, size - written));
      written += chunk.length;
      if (!out.write(chunk)) await once(out, "drain");
    }
  }
  out.end();
  await finished(out);
}

export async function runBigFileBench(ctx: SectionContext): Promise<void> {
  const size = bigBytes();
  heading(`Peak memory with one ${megabytes(size)} file added (issue 5: streaming)`);
  const our = ourCliReady();
  if (!our.ok) {
    console.log(`precompressor: NOT MEASURED — ${our.reason}`);
    return;
  }
  const corpus = await ensureCorpus({ quick: ctx.quick });
  const sources = new Set(await fg("**/*", { cwd: corpus.dir, onlyFiles: true }));
  const bookkeeping = (rel: string) => rel === ".precompressor.json" || rel === ".precompressor.lock";
  const rows: [string, Measured][] = [];

  const plain = await copyCorpus(join(BENCH_DIR, "run", "bigfile-without"), corpus.dir);
  const [cmd, args] = ourCommand(plain, ["--no-cache"]);
  rows.push(["corpus", await measure(cmd, args)]);
  await verifyOutput("precompressor (corpus)", plain, { sources, bookkeeping });
  await rm(plain, { recursive: true, force: true });

  const withBig = await copyCorpus(join(BENCH_DIR, "run", "bigfile-with"), corpus.dir);
  await mkdir(join(withBig, "huge"));
  await writeBigFile(corpus.dir, join(withBig, BIG_NAME), size);
  const [cmdBig, argsBig] = ourCommand(withBig, ["--no-cache"]);
  rows.push([`corpus + ${megabytes(size)} ${BIG_NAME}`, await measure(cmdBig, argsBig)]);
  await verifyOutput("precompressor (corpus + huge file)", withBig, {
    sources: new Set([...sources, BIG_NAME]),
    bookkeeping,
    required: [
      [BIG_NAME, "gzip"],
      [BIG_NAME, "br"],
      [BIG_NAME, "zstd"],
    ],
  });
  await rm(withBig, { recursive: true, force: true });

  const base = rows[0]?.[1].treePeakRss ?? 0;
  printTable(
    ["run", "wall", "peak RSS tree", "largest proc", "÷ corpus"],
    rows.map(([name, m]) => [
      name,
      seconds(m.ms),
      megabytes(m.treePeakRss),
      megabytes(m.largestProcessRss),
      ratio(m.treePeakRss, base),
    ]),
  );
  console.log("targets: peak RSS ≤ 400 MB on the corpus, and flat (≈ 1×) with the huge file added.");
}
