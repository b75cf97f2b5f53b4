// The zstd part of the codec floor, measured in a process of its own so that it can be started
// with the allocator setting the pool host uses (src/host-pool.ts): on Node < 22.15 that setting
// makes @mongodb-js/zstd itself ~2x cheaper, so an honest floor must be measured both ways.
// Same files and same loop as the bench's own floor; prints {"ms": …, "cpuMs": …} for <dir>.
import fg from "fast-glob";
import { eligibleFiles, measureFloor } from "./bench-build.js";

const [dir] = process.argv.slice(2);
if (!dir) throw new Error("usage: bench-floor-zstd.ts <dir>");
const all = (await fg("**/*", { cwd: dir, onlyFiles: true, dot: true })).sort();
const floor = await measureFloor(dir, await eligibleFiles(dir, all), ["zstd"]);
console.log(JSON.stringify({ ms: floor.ms.zstd, cpuMs: floor.cpuMs.zstd }));
