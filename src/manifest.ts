// Read, validate and write (atomically) the content-hash manifest.

import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "./atomic.js";
import { deltaFileName } from "./delta.js";
import { PrecompressorError } from "./errors.js";
import { digestBytes } from "./hash.js";
import type { DeltaEntry, Manifest, ManifestEntry } from "./manifest-format.js";
import { CanonicalReader, manifestChunks, pushFile, pushText } from "./manifest-text.js";
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
  const warnings: string[] = [];
  try {
    return { manifest: await loadManifest(path, (message) => warnings.push(`${path}: ${message}`)), warnings };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { manifest: undefined, warnings: [] };
    const reason = error instanceof PrecompressorError ? error.message : `unreadable (${(error as Error).message})`;
    return { manifest: undefined, warnings: [`${path}: ${reason}; rebuilding everything`] };
  }
}

/**
 * Read and validate the manifest at `path` as `parseManifest` does; a file that cannot be read
 * throws its file-system error. Our own layout is read a line at a time, any other whole.
 *
 * @example
 * const manifest = await loadManifest("dist/.precompressor.json", console.warn);
 */
export async function loadManifest(path: string, onWarning?: (message: string) => void): Promise<Manifest> {
  const lines = new Validator();
  await pushFile(lines.reader, path);
  const manifest = lines.result();
  if (!manifest) return parseWhole(await readFile(path, "utf8"), onWarning);
  for (const message of lines.warnings) onWarning?.(message);
  return manifest;
}

/**
 * Parse and validate manifest JSON. A file that is not a version-1 manifest throws `E_MANIFEST`
 * with a one-line reason. An entry that precompressor must not act on (a key or delta file that
 * could leave the root, a value that cannot go into a header, a malformed field) is dropped, with
 * one `onWarning` call naming it: nothing downstream ever sees it. Any JSON layout is read; the
 * one precompressor writes is read a line at a time, without a second copy of every entry.
 *
 * @example
 * const manifest = parseManifest(text, (message) => console.warn(message));
 */
export function parseManifest(text: string, onWarning?: (message: string) => void): Manifest {
  const lines = new Validator();
  pushText(lines.reader, text);
  const manifest = lines.result();
  if (!manifest) return parseWhole(text, onWarning);
  for (const message of lines.warnings) onWarning?.(message);
  return manifest;
}

function parseWhole(text: string, onWarning?: (message: string) => void): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new PrecompressorError("E_MANIFEST", "not valid JSON (corrupt or truncated manifest)", { cause });
  }
  if (!isObject(data)) throw new PrecompressorError("E_MANIFEST", "not a manifest object");
  const problem = headProblem(data);
  if (problem) throw new PrecompressorError("E_MANIFEST", problem);
  const files: Record<string, ManifestEntry> = {};
  for (const [key, entry] of Object.entries(data.files as Record<string, unknown>))
    addEntry(files, key, entry, onWarning);
  return { ...(data as unknown as Manifest), files };
}

/** Why a document is not a version-1 manifest at all, or undefined when it is one. */
function headProblem(data: Record<string, unknown>): string | undefined {
  if (data.version !== 1) return `unsupported manifest version ${JSON.stringify(data.version)}`;
  if (!isObject(data.files) || !isObject(data.settings)) return "manifest lacks files or settings";
  if (data.shard !== undefined && !isShard(data.shard)) return `malformed shard ${JSON.stringify(data.shard)}`;
  return undefined;
}

/** The one gate every entry read passes, whatever the layout. */
function addEntry(
  files: Record<string, ManifestEntry>,
  key: string,
  entry: unknown,
  onWarning?: (message: string) => void,
): void {
  const problem = entryProblem(key, entry);
  if (problem) onWarning?.(`ignoring manifest entry ${JSON.stringify(key)}: ${problem}`);
  else files[key] = withSharedEmpty(entry as ManifestEntry);
}

/**
 * No variants, the case of most files (images, fonts, small files), as one frozen object: a million
 * empty objects would be tens of megabytes. Frozen, so a caller that writes to one fails loudly instead of into all.
 */
export const NO_VARIANTS: ManifestEntry["variants"] = Object.freeze({});

/** `entry`, its empty `variants` replaced by `NO_VARIANTS`. */
export function withSharedEmpty<T extends ManifestEntry>(entry: T): T {
  for (const _ in entry.variants) return entry;
  entry.variants = NO_VARIANTS;
  return entry;
}

/** The checks of `parseWhole`, applied to the canonical text as each line comes. */
class Validator {
  readonly warnings: string[] = [];
  private data: Record<string, unknown> | undefined;
  private readonly files: Record<string, ManifestEntry> = {};
  /** Keys seen but dropped: a duplicate of one is left to the whole-text parse, which keeps only the last. */
  private readonly dropped = new Set<string>();
  readonly reader = new CanonicalReader({
    // A head with a problem is left to the whole-text parse, which throws its reason.
    head: (data) => {
      this.data = data;
      return headProblem(data) === undefined;
    },
    entry: (key, value) => {
      if (Object.hasOwn(this.files, key) || this.dropped.has(key)) return false;
      const before = this.warnings.length;
      addEntry(this.files, key, value, (message) => this.warnings.push(message));
      if (this.warnings.length > before) this.dropped.add(key);
      return true;
    },
  });

  /** The manifest, if the text was canonical. */
  result(): Manifest | undefined {
    if (!this.reader.end() || !this.data) return undefined;
    return { ...(this.data as unknown as Manifest), files: this.files };
  }
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
  try {
    // One entry a line: compact, diffable, and read back a line at a time.
    await writeFileAtomic(path, manifestChunks(manifest));
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? "";
    throw new PrecompressorError(
      "E_WRITE",
      `${path}: cannot write the manifest (${code || (cause as Error).message})`,
      { path, cause },
    );
  }
}

/**
 * Whether `JSON.stringify(a) === JSON.stringify(b)`, found an entry at a time: a million-file
 * manifest is never one string.
 */
export function sameManifest(a: Manifest, b: Manifest | undefined): boolean {
  if (!b || JSON.stringify({ ...a, files: {} }) !== JSON.stringify({ ...b, files: {} })) return false;
  const keys = Object.keys(a.files);
  const other = Object.keys(b.files);
  if (keys.length !== other.length) return false;
  // An unchanged rerun keeps the last run's entry objects themselves: those need no stringify.
  return keys.every((key, i) => {
    const [x, y] = [a.files[key], b.files[key]];
    return key === other[i] && (x === y || JSON.stringify(x) === JSON.stringify(y));
  });
}
