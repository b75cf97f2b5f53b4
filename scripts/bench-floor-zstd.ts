// The zstd part of the codec floor, measured in a process of its own so that it can be started
// with the allocator setting the pool host uses (src/host-pool.ts): on Node < 22.15 that setting
// makes @mongodb-js/zstd itself ~2x cheaper, so an honest floor must be measured both ways.
// Prints {"ms": …, "cpuMs": …} for the eligible files of <dir>, one at a time, at level <level>.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import fg from "fast-glob";
import { encodeBuffer, encodeBufferSync } from "../src/codecs.js";
import { brotliKindOf, isCompressible } from "../src/formats.js";

const [dir, level, minSize] = process.argv.slice(2);
if (!dir || !level || !minSize) throw new Error("usage: bench-floor-zstd.ts <dir> <level> <min-size>");
const files = [];
for (const rel of (await fg("**/*", { cwd: dir, onlyFiles: true, dot: true })).sort()) {
  if (!isCompressible(rel)) continue;
  const bytes = await readFile(join(dir, rel));
  if (bytes.length >= Number(minSize)) files.push({ rel, bytes });
}
let ms = 0;
const cpuBefore = process.cpuUsage();
for (const { rel, bytes } of files) {
  const started = performance.now();
  const options = { level: Number(level), size: bytes.length, kind: brotliKindOf(rel) };
  encodeBufferSync("zstd", bytes, options) ?? (await encodeBuffer("zstd", bytes, options));
  ms += performance.now() - started;
}
const cpu = process.cpuUsage(cpuBefore);
console.log(JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, files: files.length }));
