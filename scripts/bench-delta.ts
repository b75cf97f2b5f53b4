// Issue 8's benchmark: what a returning visitor downloads for three.js 0.170.0's
// build/three.module.js as br, dcb and dcz against 0.169.0, and the build time deltas add.
// Deltas need Node >= 22.19 (dcz) and >= 24.15 (dcb): `npx -y node@24 --import tsx scripts/bench-delta.ts`.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { deltaSupport } from "../src/delta.js";
import { precompress } from "../src/index.js";

const ROOT = resolve(import.meta.dirname, "..");
const PACKAGES = join(ROOT, ".bench", "delta");
const FROM = "0.169.0";
const TO = "0.170.0";
const ASSET = "build/three.module.js";

/** Each release installed once into .bench/delta/<version> (npm registry only, no scripts). */
function install(version: string): string {
  const prefix = join(PACKAGES, version);
  const dir = join(prefix, "node_modules", "three");
  if (!existsSync(join(dir, ASSET))) {
    execFileSync(
      "npm",
      ["install", "--prefix", prefix, "--no-save", "--ignore-scripts", "--no-audit", "--no-fund", `three@${version}`],
      { stdio: "ignore" },
    );
  }
  return dir;
}

/** A one-asset "site" laid out like the release. */
async function site(packageDir: string, into: string): Promise<string> {
  await mkdir(join(into, "build"), { recursive: true });
  await cp(join(packageDir, ASSET), join(into, ASSET));
  return into;
}

async function main(): Promise<void> {
  console.log(`# RFC 9842 deltas: three ${FROM} -> ${TO}, ${ASSET} (Node ${process.version})`);
  if (!deltaSupport.dcz && !deltaSupport.dcb) {
    console.log("This Node writes no deltas; run: npx -y node@24 --import tsx scripts/bench-delta.ts");
    return;
  }
  const previous = await site(install(FROM), await mkdtemp(join(tmpdir(), "delta-prev-")));
  const work = await mkdtemp(join(tmpdir(), "delta-"));
  try {
    const rows: string[][] = [];
    const times: Record<string, number[]> = { plain: [], deltas: [] };
    // Alternate plain and delta builds on fresh copies: the difference is the time deltas add.
    for (let round = 0; round < 3; round++) {
      for (const mode of ["plain", "deltas"] as const) {
        const dir = await site(install(TO), join(work, `${mode}-${round}`));
        const summary = await precompress({
          dir,
          cache: false,
          ...(mode === "deltas" ? { dictionaryFrom: [previous] } : {}),
        });
        times[mode]?.push(summary.durationMs);
        if (mode === "deltas" && round === 0) {
          const { readManifest } = await import("../src/manifest.js");
          const { manifest } = await readManifest(join(dir, ".precompressor.json"));
          const entry = manifest?.files[ASSET];
          if (!entry) throw new Error("no manifest entry for the asset");
          const br = entry.variants.br?.size ?? entry.size;
          rows.push(["identity", String(entry.size), (entry.size / br).toFixed(1)]);
          for (const [name, size] of [
            ["gzip", entry.variants.gzip?.size],
            ["zstd", entry.variants.zstd?.size],
            ["br", br],
            ...(entry.deltas ?? []).map((d) => [d.encoding, d.size] as const),
          ] as const) {
            if (size !== undefined) rows.push([name, String(size), (size / br).toFixed(4)]);
          }
        }
      }
    }
    console.log("\n| encoding | bytes a returning visitor downloads | ÷ br |\n| --- | --- | --- |");
    for (const r of rows) console.log(`| ${r.join(" | ")} |`);
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? 0;
    const plain = median(times.plain ?? []);
    const withDeltas = median(times.deltas ?? []);
    const dcz = rows.find((r) => r[0] === "dcz");
    const brRow = rows.find((r) => r[0] === "br");
    if (dcz && brRow)
      console.log(`\nbr ÷ dcz = ${(Number(brRow[1]) / Number(dcz[1])).toFixed(1)}× smaller (target: >= 20×)`);
    console.log(
      `build time (median of 3): ${plain} ms without deltas, ${withDeltas} ms with: +${withDeltas - plain} ms (${(withDeltas / plain).toFixed(2)}×)`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(previous, { recursive: true, force: true });
  }
}

await main();
