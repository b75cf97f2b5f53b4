// What each zstd level costs per call on the @mongodb-js/zstd@1.2.2 bindings (no size hint),
// for files of several sizes: why whole files on Node < 22.15 go to zstd in WebAssembly (src/zstd.ts).
// Run: node scripts/zstd-levels.cjs
const { readFileSync } = require("node:fs");
const bindings = require("@mongodb-js/zstd/bindings.js");

const source = readFileSync(require.resolve("commander/lib/command.js"));

async function main() {
  for (const size of [1024, 8192, 65536, source.length]) {
    const input = source.subarray(0, size);
    const row = [];
    for (const level of [3, 9, 12, 16, 19]) {
      await bindings.compress(input, level);
      const runs = 10;
      const start = process.hrtime.bigint();
      let out;
      for (let i = 0; i < runs; i++) out = await bindings.compress(input, level);
      const ms = Number(process.hrtime.bigint() - start) / 1e6 / runs;
      row.push(`L${level} ${ms.toFixed(2)} ms/${out.length} B`);
    }
    console.log(`${String(size).padStart(6)} B: ${row.join("  ")}`);
  }
}
main();
