// Shared by the tests: temp copies of the demo site, the real CLI as a child process,
// and a check that every variant the manifest lists decodes to its source.
import { spawn, spawnSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { decodeVariant } from "../../src/cache.js";
import { hashBytes } from "../../src/hash.js";
import { parseManifest } from "../../src/manifest.js";
import type { Encoding, Manifest } from "../../src/manifest-format.js";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const FIXTURE_SITE = join(ROOT, "fixtures", "site");
const SUFFIX: Record<Encoding, string> = { gzip: ".gz", br: ".br", zstd: ".zst" };

/** A fresh temp folder, removed by the returned cleanup. */
export async function tempDir(prefix = "precompressor-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A copy of the demo site's sources only (no variants or manifest from a README run). */
export async function copySite(): Promise<string> {
  const dir = await tempDir("site-");
  await cp(FIXTURE_SITE, dir, {
    recursive: true,
    // The README command writes variants into fixtures/site; only the user's own archive is a source.
    filter: (src) => !/\.(br|zst)$|\.precompressor\.\w+$/.test(src) && !(/\.gz$/.test(src) && !src.endsWith(".tar.gz")),
  });
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function loadManifest(dir: string, path = join(dir, ".precompressor.json")): Promise<Manifest> {
  return parseManifest(await readFile(path, "utf8"));
}

/** Largest zstd window (bytes) the first frame of `bytes` asks a decoder for (RFC 8878 §3.1.1.1). */
export function zstdWindowSize(bytes: Buffer): number {
  if (bytes.readUInt32LE(0) !== 0xfd2fb528) throw new Error("not a zstd frame");
  const fhd = bytes[4] as number;
  const singleSegment = (fhd & 0x20) !== 0;
  const dictIdBytes = [0, 1, 2, 4][fhd & 3] as number;
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fhd >> 6] as number;
  if (!singleSegment) {
    const wd = bytes[5] as number;
    const windowLog = 10 + (wd >> 3);
    return 2 ** windowLog + (2 ** windowLog / 8) * (wd & 7);
  }
  // A single-segment frame's window is its content size.
  const at = 5 + dictIdBytes;
  const fcs =
    fcsBytes === 1
      ? bytes[at]
      : fcsBytes === 2
        ? bytes.readUInt16LE(at) + 256
        : fcsBytes === 4
          ? bytes.readUInt32LE(at)
          : Number(bytes.readBigUInt64LE(at));
  return fcs as number;
}

export const ZSTD_BROWSER_WINDOW = 8 * 1024 * 1024;

/**
 * Decode every variant the manifest lists and compare it byte for byte with its source;
 * also checks the recorded hashes and sizes, and zstd's window. Returns variants checked per encoding.
 */
export async function verifyVariants(dir: string, manifest?: Manifest): Promise<Record<Encoding, number>> {
  const m = manifest ?? (await loadManifest(dir));
  const counts: Record<Encoding, number> = { gzip: 0, br: 0, zstd: 0 };
  for (const [rel, entry] of Object.entries(m.files)) {
    const source = await readFile(join(dir, rel));
    if (hashBytes(source) !== entry.hash || source.length !== entry.size)
      throw new Error(`${rel}: source does not match its manifest entry`);
    for (const [encoding, variant] of Object.entries(entry.variants) as [Encoding, { size: number; hash: string }][]) {
      const bytes = await readFile(join(dir, rel + SUFFIX[encoding]));
      if (bytes.length !== variant.size || hashBytes(bytes) !== variant.hash)
        throw new Error(`${rel}${SUFFIX[encoding]}: bytes do not match the manifest`);
      const decoded = await decodeVariant(encoding, bytes);
      if (!decoded.equals(source)) throw new Error(`${rel}${SUFFIX[encoding]}: does not decode to its source`);
      if (encoding === "zstd" && zstdWindowSize(bytes) > ZSTD_BROWSER_WINDOW)
        throw new Error(`${rel}.zst: window above 8 MB`);
      counts[encoding] += 1;
    }
  }
  return counts;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the real bin (built dist/) as a child process. */
export function runCli(
  args: string[],
  options: { cwd?: string; uid?: number; gid?: number; env?: Record<string, string> } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "bin", "precompressor.js"), ...args], {
      cwd: options.cwd ?? ROOT,
      uid: options.uid,
      gid: options.gid,
      env: { ...process.env, CI: "true", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The unprivileged user the permission tests run the CLI as. */
export const NOBODY = 65534;

/**
 * Why the CLI cannot run as an unprivileged user here, or `undefined` if it can: root reads
 * anything, so permission tests drop to `nobody`, who must be able to run this Node and read the
 * checkout (not so for a Node installed under /root, as `npx node@24` is).
 */
export function cannotRunAsNobody(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root to run the CLI as another user";
  const probe = spawnSync(process.execPath, [join(ROOT, "bin", "precompressor.js"), "--help"], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: "/tmp",
  });
  if (probe.error) return `user nobody cannot run ${process.execPath} (${(probe.error as NodeJS.ErrnoException).code})`;
  if (probe.status !== 0) return `user nobody cannot run the CLI from ${ROOT}`;
  return undefined;
}
