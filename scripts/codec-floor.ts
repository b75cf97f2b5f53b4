// The codec floor of issue 18: every eligible file encoded once per encoding, one at a time, by the
// codec itself at the reference levels, the times summed. precompressor's own calls are not used,
// so the floor cannot inherit a cost of ours. zstd runs as the zstd CLI (`zstd -19`, which sizes its
// tables to each input) when it is installed, else node:zlib with pledgedSrcSize, else the bindings.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import * as zlib from "node:zlib";
import { compress as bindingsZstd } from "@mongodb-js/zstd";
import { brotliKindOf } from "../src/formats.js";
import { type Encoding, measure } from "./bench-util.js";

/** The reference levels every tool is given and the floor is measured at. */
export const LEVELS: Readonly<Record<Encoding, number>> = { gzip: 9, br: 11, zstd: 19 };

export interface Eligible {
  rel: string;
  size: number;
}

export interface Floor {
  /** Summed single-thread encode time per encoding. */
  ms: Record<Encoding, number>;
  /** CPU the same encodes took: unlike wall time, other load on the machine barely moves it. */
  cpuMs: Record<Encoding, number>;
  /** Encoded size per `<rel>\0<encoding>`, to know which variants pass --min-ratio. */
  sizes: Map<string, number>;
  /** What encoded zstd: "zstd CLI 1.5.4", "node:zlib", or the bindings. */
  zstdBy: string;
}

/** Whether `command` is an executable on PATH. */
export function onPath(command: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => dir && existsSync(join(dir, command)));
}

const BROTLI_MODE = {
  text: zlib.constants.BROTLI_MODE_TEXT,
  font: zlib.constants.BROTLI_MODE_FONT,
  binary: zlib.constants.BROTLI_MODE_GENERIC,
} as const;

/**
 * One in-process encode with the codec's own API. brotli gets the mode by file type, as ours does: a
 * parameter of the codec, not a cost of ours, and the one the output-size check must match.
 */
function encodeInProcess(encoding: Encoding, bytes: Buffer, rel: string): Buffer {
  if (encoding === "gzip") return zlib.gzipSync(bytes, { level: LEVELS.gzip });
  if (encoding === "br")
    return zlib.brotliCompressSync(bytes, {
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: LEVELS.br,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
        [zlib.constants.BROTLI_PARAM_MODE]: BROTLI_MODE[brotliKindOf(rel)],
      },
    });
  const z = zlib as unknown as {
    zstdCompressSync: (b: Buffer, o: object) => Buffer;
    constants: Record<string, number>;
  };
  return z.zstdCompressSync(bytes, {
    params: { [z.constants.ZSTD_c_compressionLevel as number]: LEVELS.zstd },
    pledgedSrcSize: bytes.length,
  });
}

/** `zstd -19 -T1` over every file in one process: per-file cost is the codec's, not a spawn's. */
async function zstdCli(dir: string, eligible: readonly Eligible[], floor: Floor): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), "floor-zstd-"));
  const list = join(out, "files.txt");
  await writeFile(list, `${eligible.map((f) => f.rel).join("\n")}\n`);
  try {
    const args = ["-19", "-T1", "-q", "-f", "-k", `--filelist=${list}`, "--output-dir-mirror", join(out, "z")];
    const measured = await measure("zstd", args, { cwd: dir });
    floor.ms.zstd = measured.ms;
    floor.cpuMs.zstd = measured.cpuMs || measured.ms;
    for (const f of eligible) floor.sizes.set(`${f.rel}\0zstd`, (await stat(join(out, "z", `${f.rel}.zst`))).size);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/**
 * Measure the codec floor of `eligible` (paths relative to `dir`).
 *
 * @example
 * const floor = await measureCodecFloor("corpus", eligible);
 */
export async function measureCodecFloor(
  dir: string,
  eligible: readonly Eligible[],
  encodings: readonly Encoding[] = ["gzip", "br", "zstd"],
): Promise<Floor> {
  const inputs = await Promise.all(eligible.map(async (f) => ({ ...f, bytes: await readFile(join(dir, f.rel)) })));
  const hasNodeZstd = typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync === "function";
  const cli = onPath("zstd");
  const floor: Floor = {
    ms: { gzip: 0, br: 0, zstd: 0 },
    cpuMs: { gzip: 0, br: 0, zstd: 0 },
    sizes: new Map(),
    zstdBy: cli
      ? `zstd CLI (${execFileSync("zstd", ["-V"], { encoding: "utf8" }).match(/v[\d.]+/)?.[0]})`
      : hasNodeZstd
        ? "node:zlib zstdCompressSync with pledgedSrcSize"
        : "@mongodb-js/zstd bindings (no zstd CLI, no node:zlib zstd: install zstd for the real floor)",
  };
  for (const encoding of encodings) {
    if (encoding === "zstd" && cli) {
      await zstdCli(dir, eligible, floor);
      continue;
    }
    const cpuBefore = process.cpuUsage();
    for (const file of inputs) {
      const started = performance.now();
      const out =
        encoding === "zstd" && !hasNodeZstd
          ? await bindingsZstd(file.bytes, LEVELS.zstd)
          : encodeInProcess(encoding, file.bytes, file.rel);
      floor.ms[encoding] += performance.now() - started;
      floor.sizes.set(`${file.rel}\0${encoding}`, out.length);
    }
    const cpu = process.cpuUsage(cpuBefore);
    floor.cpuMs[encoding] = (cpu.user + cpu.system) / 1000;
  }
  return floor;
}
