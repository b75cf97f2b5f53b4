// The config file: found (lilconfig), checked key by key, its paths made absolute. Flags and inline options merge elsewhere.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { defaultLoaders, type Loader, lilconfig } from "lilconfig";
import type { PrecompressOptions } from "../build/options.js";
import { resolveOptions } from "../build/options.js";
import { PrecompressorError } from "../errors.js";

/** What a config file may set: the library's options that are data, not callbacks, and not one job's `shard`. */
export type PrecompressorConfig = Omit<PrecompressOptions, "onProgress" | "signal" | "onWarning" | "shard">;

type Kind = "boolean" | "number" | "strings" | "path" | "paths";

// `satisfies` makes a new library option a compile error here until the file accepts it too.
const KINDS = {
  dir: "path",
  encodings: "strings",
  gzipLevel: "number",
  brotliLevel: "number",
  zstdLevel: "number",
  minSize: "number",
  minRatio: "number",
  include: "strings",
  exclude: "strings",
  followSymlinks: "boolean",
  concurrency: "number",
  manifest: "path",
  cache: "boolean",
  cacheDir: "path",
  cacheMaxSize: "number",
  check: "boolean",
  dryRun: "boolean",
  force: "boolean",
  dictionaryFrom: "paths",
} as const satisfies Record<keyof Required<PrecompressorConfig>, Kind>;

const SEARCH_PLACES = [
  "precompressor.config.js",
  "precompressor.config.mjs",
  "precompressor.config.cjs",
  "precompressor.config.json",
  "package.json",
];

export interface LoadedConfig {
  /** Absolute path of the file the options came from. */
  file: string;
  /** Checked options; relative paths in the file are resolved against the file's folder. */
  config: PrecompressorConfig;
}

/**
 * Types a config file: returns its argument unchanged.
 *
 * @example
 * // precompressor.config.js
 * import { defineConfig } from "precompressor";
 * export default defineConfig({ encodings: ["br", "gzip"], exclude: ["**\/*.map"] });
 */
export function defineConfig(config: PrecompressorConfig): PrecompressorConfig {
  return config;
}

/**
 * `file` if given (it must exist), else the first of `precompressor.config.{js,mjs,cjs,json}` or a
 * `"precompressor"` key in package.json, from `cwd` up to the nearest package.json; `undefined` if none.
 * A bad file, key or value throws `E_BAD_OPTION` naming the key and the file.
 */
export async function loadConfig(options: { cwd?: string; file?: string } = {}): Promise<LoadedConfig | undefined> {
  const cwd = resolve(options.cwd ?? ".");
  const explorer = lilconfig("precompressor", {
    searchPlaces: SEARCH_PLACES,
    stopDir: projectRoot(cwd),
    loaders: Object.fromEntries(Object.entries(defaultLoaders).map(([ext, load]) => [ext, naming(load)])),
  });
  const path = options.file === undefined ? undefined : resolve(cwd, options.file);
  if (path !== undefined && !existsSync(path)) throw bad(`--config ${path}: no such file`);
  const found = await (path === undefined ? explorer.search(cwd) : explorer.load(path)).catch((error: unknown) => {
    if (error instanceof PrecompressorError) throw error;
    // lilconfig's own refusals, e.g. `--config x.yaml` (no loader for .yaml).
    throw bad(`${path ?? cwd}: cannot load the config file: ${(error as Error).message}`, error);
  });
  if (!found || found.isEmpty) return undefined;
  return { file: found.filepath, config: check(found.config, found.filepath) };
}

/** A loader whose errors (bad JSON, a throwing module) name the file: lilconfig's do not. */
function naming(load: Loader): Loader {
  return async (file, content) => {
    try {
      return await load(file, content);
    } catch (cause) {
      throw bad(`${file}: cannot load the config file: ${(cause as Error).message}`, cause);
    }
  };
}

/** The folder of the nearest package.json above `dir` (the search stops there), or the filesystem root. */
function projectRoot(dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, "package.json")) || dirname(d) === d) return d;
  }
}

function check(config: unknown, file: string): PrecompressorConfig {
  if (typeof config !== "object" || config === null || Array.isArray(config))
    throw bad(`${file}: expected an object of options (a default export in JS), got ${describe(config)}`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    const kind = (KINDS as Record<string, Kind>)[key];
    if (!kind) throw bad(`${file}: unknown key "${key}" (known: ${Object.keys(KINDS).join(", ")})`);
    out[key] = checkValue(file, key, kind, value);
  }
  try {
    // The ranges (levels, ratios, encodings) are the library's: ask it, then name the key instead of the flag.
    resolveOptions({ ...out, force: true });
  } catch (error) {
    if (!(error instanceof PrecompressorError) || error.code !== "E_BAD_OPTION") throw error;
    throw bad(`${file}: ${error.message.replace(/^--([\w-]+)/, (_, flag: string) => camel(flag))}`, error);
  }
  return out as PrecompressorConfig;
}

function checkValue(file: string, key: string, kind: Kind, value: unknown): unknown {
  const dir = dirname(file);
  const isStrings = Array.isArray(value) && value.every((v) => typeof v === "string");
  const ok =
    kind === "strings" || kind === "paths"
      ? isStrings
      : kind === "path"
        ? typeof value === "string"
        : kind === "number"
          ? typeof value === "number" && Number.isFinite(value)
          : typeof value === kind;
  if (!ok) throw bad(`${file}: ${key}: expected ${EXPECTED[kind]}, got ${describe(value)}`);
  if (kind === "path") return resolve(dir, value as string);
  if (kind === "paths") return (value as string[]).map((p) => resolve(dir, p));
  return value;
}

const EXPECTED: Record<Kind, string> = {
  boolean: "true or false",
  number: "a number",
  strings: "an array of strings",
  path: "a path (relative to the config file)",
  paths: "an array of paths (relative to the config file)",
};

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  return Array.isArray(value) ? "an array" : `${typeof value} ${JSON.stringify(value)}`;
}

const camel = (flag: string) => flag.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

function bad(message: string, cause?: unknown): PrecompressorError {
  return new PrecompressorError("E_BAD_OPTION", message, { cause });
}
