// `npm run bench [-- section…] [-- --quick] [-- --rounds=N] [-- --no-peers]`: every section by default.
// Sections: build (issues 5, 18), costs (issue 18), incremental (issue 3), server (issue 4), lazy (issue 7), delta (issue 8);
// bigfile (peak memory with a 500 MB file added, ~10 min) and scale (100k and 1M small files, issue 19)
// run only when named.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { runBigFileBench } from "./bench-bigfile.js";
import { runBuildBench } from "./bench-build.js";
import { runCostsBench } from "./bench-costs.js";
import { runIncrementalBench } from "./bench-incremental.js";
import { runScaleBench } from "./bench-scale.js";
import type { SectionContext } from "./bench-util.js";
import { isQuick, ROOT } from "./corpus.js";

type Section = (ctx: SectionContext) => Promise<void>;

const SERVER_SCRIPT = join(ROOT, "scripts", "bench-server.ts");

/** Written by another hand; loaded only if it is there, so this file builds without it. */
async function runServerBench(ctx: SectionContext): Promise<void> {
  if (!existsSync(SERVER_SCRIPT)) {
    console.log("\n## Server\n\nscripts/bench-server.ts does not exist yet: nothing to run.");
    return;
  }
  // A variable specifier keeps tsc from requiring the file at type-check time.
  const path = "./bench-server.js";
  const mod = (await import(path)) as { runServerBench?: Section; default?: Section; main?: () => Promise<unknown> };
  const section = mod.runServerBench ?? mod.default;
  if (section) return section(ctx);
  // Its standalone entry point, which prints its own report.
  if (mod.main) {
    console.log("\n## Server (scripts/bench-server.ts)\n");
    await mod.main();
    return;
  }
  throw new Error("scripts/bench-server.ts exports none of runServerBench(ctx), a default function, main()");
}

/** A benchmark script of its own, run as a child so its servers and imports stay out of this process. */
function runScript(script: string, node: string[] = [process.execPath]): Section {
  return async () => {
    const [command = process.execPath, ...prefix] = node;
    execFileSync(command, [...prefix, "--import", "tsx", join(ROOT, "scripts", script)], {
      stdio: "inherit",
      cwd: ROOT,
    });
  };
}

/** RFC 9842 deltas need Node >= 24.15 for dcb: run under this Node when it can, else under Node 24 from npm. */
const runDeltaBench: Section = async (ctx) => {
  const { deltaSupport } = await import("../src/delta.js");
  const node = deltaSupport.dcz && deltaSupport.dcb ? [process.execPath] : ["npx", "-y", "node@24"];
  await runScript("bench-delta.ts", node)(ctx);
};

const SECTIONS: Record<string, Section> = {
  build: runBuildBench,
  costs: runCostsBench,
  incremental: runIncrementalBench,
  server: runServerBench,
  lazy: runScript("bench-lazy.ts"),
  delta: runDeltaBench,
  bigfile: runBigFileBench,
  scale: runScaleBench,
};
/** Too slow for every run: only when named. */
const OPT_IN = new Set(["bigfile", "scale"]);

function parseArgs(argv: string[]): { sections: string[]; ctx: SectionContext } {
  const quick = isQuick();
  const roundsFlag = argv.find((a) => a.startsWith("--rounds="))?.slice("--rounds=".length) ?? process.env.BENCH_ROUNDS;
  const rounds = roundsFlag ? Number(roundsFlag) : quick ? 1 : 3;
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds expects a whole number >= 1, got "${roundsFlag}"`);
  const known = (a: string) => a === "--quick" || a === "--no-peers" || a.startsWith("--rounds=");
  const unknown = argv.filter((a) => a.startsWith("-") && !known(a));
  if (unknown.length) throw new Error(`unknown flag ${unknown.join(" ")} (use --quick, --rounds=N, --no-peers)`);
  const named = argv.filter((a) => !a.startsWith("-"));
  for (const name of named) {
    if (!(name in SECTIONS)) throw new Error(`unknown section "${name}" (use ${Object.keys(SECTIONS).join(", ")})`);
  }
  const defaults = Object.keys(SECTIONS).filter((s) => !OPT_IN.has(s) && (s !== "server" || existsSync(SERVER_SCRIPT)));
  return { sections: named.length ? named : defaults, ctx: { quick, rounds } };
}

const { sections, ctx } = parseArgs(process.argv.slice(2));
const started = performance.now();
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
console.log(
  `# precompressor bench — ${new Date().toISOString()}, node ${process.version}, ${availableParallelism()} cores, load ${load()}`,
);
console.log(
  `sections: ${sections.join(", ")}; rounds: ${ctx.rounds}${ctx.quick ? "; QUICK corpus (not for figures)" : ""}`,
);
for (const name of sections) await (SECTIONS[name] as Section)(ctx);
console.log(`\nbench done in ${((performance.now() - started) / 1000).toFixed(0)} s; load ${load()}`);
