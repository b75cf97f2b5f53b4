// Read, validate and write (atomically) the content-hash manifest.
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "./atomic.js";
import { PrecompressorError } from "./errors.js";
import type { Manifest, ManifestEntry } from "./manifest-format.js";

export type { DeltaEntry, Encoding, Manifest, ManifestEntry, VariantEntry } from "./manifest-format.js";

export const MANIFEST_NAME = ".precompressor.json";

export type ManifestRead = { manifest: Manifest | undefined; warning?: string };

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
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { manifest: undefined };
    return { manifest: undefined, warning: `${path}: unreadable (${(error as Error).message}); rebuilding everything` };
  }
  try {
    return { manifest: parseManifest(text) };
  } catch (error) {
    return { manifest: undefined, warning: `${path}: ${(error as Error).message}; rebuilding everything` };
  }
}

/** Parse and validate manifest JSON; throws a one-line reason when it is not a version-1 manifest. */
export function parseManifest(text: string): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error("not valid JSON (corrupt or truncated manifest)");
  }
  if (!isObject(data)) throw new Error("not a manifest object");
  if (data.version !== 1) throw new Error(`unsupported manifest version ${JSON.stringify(data.version)}`);
  if (!isObject(data.files) || !isObject(data.settings)) throw new Error("manifest lacks files or settings");
  for (const [key, entry] of Object.entries(data.files)) {
    if (!isEntry(entry)) throw new Error(`malformed manifest entry for ${JSON.stringify(key)}`);
  }
  return data as unknown as Manifest;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isEntry(v: unknown): v is ManifestEntry {
  if (!isObject(v) || typeof v.hash !== "string" || typeof v.size !== "number" || typeof v.mtimeMs !== "number")
    return false;
  if (typeof v.type !== "string" || !isObject(v.variants)) return false;
  return Object.values(v.variants).every(
    (x) => isObject(x) && typeof x.size === "number" && typeof x.hash === "string",
  );
}

/** Write the manifest atomically: readers see the old one or the new one, never a mix. */
export async function writeManifest(path: string, manifest: Manifest): Promise<void> {
  // One entry a line: compact enough for tens of thousands of files, and diffable.
  const lines = Object.entries(manifest.files).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  const head = `{"version":${manifest.version},"generator":${JSON.stringify(manifest.generator)},"settings":${JSON.stringify(manifest.settings)},"files":{`;
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
