// Read, validate and write (atomically) the content-hash manifest.

import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "./atomic.js";
import { deltaFileName } from "./delta.js";
import { PrecompressorError } from "./errors.js";
import { digestBytes } from "./hash.js";
import type { DeltaEntry, Manifest, ManifestEntry } from "./manifest-format.js";
import { isHeaderSafe, isSafeRelativePath } from "./paths.js";

export type { DeltaEntry, Encoding, Manifest, ManifestEntry, VariantEntry } from "./manifest-format.js";

export const MANIFEST_NAME = ".precompressor.json";

/** A manifest as read, with what was wrong with it: each warning names the manifest file. */
export type ManifestRead = { manifest: Manifest | undefined; warnings: string[] };

/**
 * Read a manifest. A missing file is a first run; a corrupt, truncated or
 * future-version file is reported as a warning and treated as absent, so the
 * caller rebuilds everything rather than trusting it.
 */
export async function readManifest(path: string): Promise<ManifestRead> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { manifest: undefined, warnings: [] };
    return {
      manifest: undefined,
      warnings: [`${path}: unreadable (${(error as Error).message}); rebuilding everything`],
    };
  }
  try {
    const warnings: string[] = [];
    const manifest = parseManifest(text, (message) => warnings.push(`${path}: ${message}`));
    return { manifest, warnings };
  } catch (error) {
    return { manifest: undefined, warnings: [`${path}: ${(error as Error).message}; rebuilding everything`] };
  }
}

/**
 * Parse and validate manifest JSON. A file that is not a version-1 manifest throws `E_MANIFEST`
 * with a one-line reason. An entry that precompressor must not act on (a key or delta file that
 * could leave the root, a value that cannot go into a header, a malformed field) is dropped, with
 * one `onWarning` call naming it: nothing downstream ever sees it.
 *
 * @example
 * const manifest = parseManifest(text, (message) => console.warn(message));
 */
export function parseManifest(text: string, onWarning?: (message: string) => void): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new PrecompressorError("E_MANIFEST", "not valid JSON (corrupt or truncated manifest)", { cause });
  }
  if (!isObject(data)) throw new PrecompressorError("E_MANIFEST", "not a manifest object");
  if (data.version !== 1)
    throw new PrecompressorError("E_MANIFEST", `unsupported manifest version ${JSON.stringify(data.version)}`);
  if (!isObject(data.files) || !isObject(data.settings))
    throw new PrecompressorError("E_MANIFEST", "manifest lacks files or settings");
  if (data.shard !== undefined && !isShard(data.shard))
    throw new PrecompressorError("E_MANIFEST", `malformed shard ${JSON.stringify(data.shard)}`);
  const files: Record<string, ManifestEntry> = {};
  for (const [key, entry] of Object.entries(data.files)) {
    const problem = entryProblem(key, entry);
    if (problem) onWarning?.(`ignoring manifest entry ${JSON.stringify(key)}: ${problem}`);
    else files[key] = entry as ManifestEntry;
  }
  return { ...(data as unknown as Manifest), files };
}

function isShard(v: unknown): boolean {
  return (
    isObject(v) &&
    Number.isSafeInteger(v.index) &&
    Number.isSafeInteger(v.count) &&
    (v.index as number) >= 1 &&
    (v.index as number) <= (v.count as number)
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const DIGEST = /^sha256-[A-Za-z0-9_-]{43}$/;
const ENCODINGS = new Set(["gzip", "br", "zstd"]);
const isSize = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Why an entry may not be used, or undefined when it may. */
function entryProblem(key: string, v: unknown): string | undefined {
  if (!isSafeRelativePath(key)) return "its path is not a plain relative path inside the root";
  if (!isObject(v) || typeof v.hash !== "string" || !DIGEST.test(v.hash)) return "malformed hash";
  if (!isSize(v.size) || typeof v.mtimeMs !== "number" || !Number.isFinite(v.mtimeMs)) return "malformed size or mtime";
  if (typeof v.type !== "string" || !isHeaderSafe(v.type)) return "its type cannot go into a header";
  if (!isObject(v.variants)) return "malformed variants";
  for (const [encoding, variant] of Object.entries(v.variants)) {
    if (!ENCODINGS.has(encoding)) return `unknown encoding ${JSON.stringify(encoding)}`;
    if (!isObject(variant) || !isSize(variant.size) || typeof variant.hash !== "string" || !DIGEST.test(variant.hash))
      return `malformed ${encoding} variant`;
  }
  if (v.deltas === undefined) return undefined;
  if (!Array.isArray(v.deltas)) return "malformed deltas";
  for (const delta of v.deltas) if (!isDelta(key, delta)) return "a delta that is malformed or not beside its file";
  return undefined;
}

/** A delta's file is derived from its source and dictionary; any other name is refused. */
function isDelta(key: string, d: unknown): d is DeltaEntry {
  if (!isObject(d) || (d.encoding !== "dcz" && d.encoding !== "dcb") || !isSize(d.size)) return false;
  if (typeof d.dict !== "string" || !DIGEST.test(d.dict) || typeof d.hash !== "string" || !DIGEST.test(d.hash))
    return false;
  return d.file === deltaFileName(key, digestBytes(d.dict), d.encoding);
}

/** Write the manifest atomically: readers see the old one or the new one, never a mix. */
export async function writeManifest(path: string, manifest: Manifest): Promise<void> {
  // One entry a line: compact enough for tens of thousands of files, and diffable.
  const lines = Object.entries(manifest.files).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  const shard = manifest.shard ? `"shard":${JSON.stringify(manifest.shard)},` : "";
  const head = `{"version":${manifest.version},"generator":${JSON.stringify(manifest.generator)},"settings":${JSON.stringify(manifest.settings)},${shard}"files":{`;
  try {
    await writeFileAtomic(path, `${head}\n${lines.join(",\n")}\n}}\n`);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? "";
    throw new PrecompressorError(
      "E_WRITE",
      `${path}: cannot write the manifest (${code || (cause as Error).message})`,
      { path, cause },
    );
  }
}
