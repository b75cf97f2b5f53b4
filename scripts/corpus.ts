// The benchmark corpus: built assets of pinned npm packages, laid out like a
// static site. Installed at bench time, not as devDependencies, so CI never
// downloads them; the install is kept in .bench/packages across runs.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cp, mkdir, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import fg from "fast-glob";

export const ROOT = resolve(import.meta.dirname, "..");
export const BENCH_DIR = join(ROOT, ".bench");
const PACKAGES_DIR = join(BENCH_DIR, "packages");

interface Source {
  name: string;
  version: string;
  /** What a site would serve from this package, relative to its folder. */
  globs: string[];
  ignore?: string[];
}

/** Pinned exactly: a new release must never change the figures silently. */
const ASSET_SOURCES: readonly Source[] = [
  {
    name: "three",
    version: "0.170.0",
    globs: ["build/three.module.min.js", "examples/jsm/**"],
    // The physics, CAD, animation and font engines alone would outweigh the rest of the site.
    ignore: [
      "examples/jsm/libs/{ammo*,lottie_canvas*,opentype*}",
      "examples/jsm/libs/rhino3dm/**",
      "examples/jsm/libs/draco/{gltf/**,draco_encoder.js,draco_decoder.js}",
    ],
  },
  { name: "@fortawesome/fontawesome-free", version: "6.7.2", globs: ["css/**", "js/all.min.js", "webfonts/**"] },
  { name: "bootstrap", version: "5.3.3", globs: ["dist/css/bootstrap.min.css*", "dist/js/bootstrap.bundle.min.js*"] },
  { name: "bootstrap-icons", version: "1.11.3", globs: ["icons/**", "font/**", "bootstrap-icons.svg"] },
  { name: "lodash-es", version: "4.17.21", globs: ["*.js"] },
  { name: "rxjs", version: "7.8.1", globs: ["dist/bundles/**", "dist/esm5/**"] },
  { name: "katex", version: "0.16.11", globs: ["dist/**"], ignore: ["dist/katex.{js,mjs}"] },
  {
    name: "reveal.js",
    version: "5.1.0",
    globs: ["dist/**", "plugin/**", "*.html"],
    ignore: ["**/*.esm.js*", "plugin/highlight/highlight.js"],
  },
  {
    name: "swagger-ui-dist",
    version: "5.17.14",
    globs: [
      "*.{html,png}",
      "index.*",
      "swagger-initializer.js",
      "swagger-ui-bundle.js",
      "swagger-ui-standalone-preset.*",
      "swagger-ui.css*",
    ],
  },
  { name: "leaflet", version: "1.9.4", globs: ["dist/**"], ignore: ["dist/*.esm.js*", "dist/leaflet-src.js.map"] },
  { name: "jquery", version: "3.7.1", globs: ["dist/**"] },
  {
    name: "jquery-ui",
    version: "1.14.1",
    globs: ["dist/*.js", "dist/themes/{base,smoothness,ui-lightness,ui-darkness}/**", "themes/**"],
  },
  { name: "echarts", version: "5.5.1", globs: ["dist/echarts.min.js", "dist/extension/**", "i18n/**"] },
  // 4.22.1 is the last open-source 4.x release: many small files, HTML samples, gif/png/jpg images.
  // English UI strings only, as a real site would ship.
  { name: "ckeditor4", version: "4.22.1", globs: ["**"], ignore: ["**/*.php", "**/lang/!(en*)"] },
  {
    name: "pdfjs-dist",
    version: "4.8.69",
    globs: ["build/pdf.min.mjs", "build/pdf.worker.min.mjs", "web/**", "cmaps/**", "standard_fonts/**"],
  },
];

/**
 * The small-file corpus (issue 18): per-file fixed costs dominate where most files are under 16 KB,
 * as in a documentation site or an icon set. The same pins as above, so one install serves both.
 */
const SMALL_SOURCES: readonly Source[] = [
  { name: "lodash-es", version: "4.17.21", globs: ["*.js"] },
  { name: "@fortawesome/fontawesome-free", version: "6.7.2", globs: ["svgs/**"] },
];

/** `assets`: the built assets of 16 packages (the default); `small`: mostly files under 16 KB. */
export type CorpusName = "assets" | "small";
const CORPORA: Readonly<Record<CorpusName, readonly Source[]>> = { assets: ASSET_SOURCES, small: SMALL_SOURCES };
const SOURCES = ASSET_SOURCES;

/** Served file types only: sources, typings, preprocessor inputs and docs are not part of a built site. */
const SERVED_EXTENSIONS = new Set(
  "js,mjs,cjs,css,map,json,html,htm,svg,xml,txt,wasm,ttf,otf,eot,woff,woff2,png,gif,jpg,jpeg,webp,ico,bcmap,pfb".split(
    ",",
  ),
);
const IGNORED = ["**/package.json", "**/*.d.ts", "**/*.d.mts", "**/node_modules/**"];

/** Every Nth file of the full selection, for a quick corpus while developing (BENCH_QUICK=1 or --quick). */
const QUICK_STRIDE = 8;

export interface Corpus {
  dir: string;
  files: number;
  bytes: number;
}

function packageDir(name: string): string {
  return join(PACKAGES_DIR, "node_modules", name);
}

function installedVersion(name: string): string | undefined {
  const manifest = join(packageDir(name), "package.json");
  if (!existsSync(manifest)) return undefined;
  return (JSON.parse(readFileSync(manifest, "utf8")) as { version?: string }).version;
}

/** One npm install for all pins, skipped when every pin is already there at its version. */
function installPackages(): void {
  const missing = SOURCES.filter((s) => installedVersion(s.name) !== s.version);
  if (missing.length === 0) return;
  console.log(`corpus: installing ${SOURCES.length} pinned packages into ${PACKAGES_DIR}`);
  // Every pin in one call: npm prunes what a --no-save install does not name.
  const specs = SOURCES.map((s) => `${s.name}@${s.version}`);
  execFileSync(
    "npm",
    [
      "install",
      "--prefix",
      PACKAGES_DIR,
      "--no-save",
      "--ignore-scripts",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      ...specs,
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  const wrong = SOURCES.filter((s) => installedVersion(s.name) !== s.version);
  if (wrong.length > 0)
    throw new Error(`corpus: install did not yield ${wrong.map((s) => `${s.name}@${s.version}`).join(", ")}`);
}

/** Sorted source paths and their corpus paths (`<package>/<path>`): the same list on every machine. */
async function selectFiles(sources: readonly Source[], quick: boolean): Promise<{ from: string; to: string }[]> {
  const chosen: { from: string; to: string }[] = [];
  for (const source of sources) {
    const cwd = packageDir(source.name);
    const paths = await fg(source.globs, {
      cwd,
      onlyFiles: true,
      dot: false,
      followSymbolicLinks: false,
      ignore: [...IGNORED, ...(source.ignore ?? [])],
    });
    const served = paths.filter((p) => SERVED_EXTENSIONS.has(extname(p).slice(1).toLowerCase()));
    served.sort();
    for (const p of served) chosen.push({ from: join(cwd, p), to: `${source.name.replace("/", "__")}/${p}` });
  }
  return quick ? chosen.filter((_, i) => i % QUICK_STRIDE === 0) : chosen;
}

export function isQuick(): boolean {
  return process.env.BENCH_QUICK === "1" || process.argv.includes("--quick");
}

/**
 * Install the pinned packages if needed and lay out a pristine corpus in
 * `.bench/corpus` (or `.bench/corpus-quick`, `.bench/corpus-small`). Rebuilt once per process: a
 * copy is cheap, and a corpus some earlier run wrote variants into would lie.
 */
export function ensureCorpus(options: { quick?: boolean; name?: CorpusName } = {}): Promise<Corpus> {
  const quick = options.quick ?? isQuick();
  const name = options.name ?? "assets";
  // Once per process: every bench section shares one corpus.
  const key = `${name}:${quick}`;
  let pending = built.get(key);
  if (!pending) {
    pending = buildCorpus(name, quick);
    built.set(key, pending);
  }
  return pending;
}

const built = new Map<string, Promise<Corpus>>();

async function buildCorpus(name: CorpusName, quick: boolean): Promise<Corpus> {
  installPackages();
  const dir = corpusDir(quick, name);
  await rm(dir, { recursive: true, force: true });
  let bytes = 0;
  const perPackage = new Map<string, { files: number; bytes: number }>();
  const sources = CORPORA[name];
  const files = await selectFiles(sources, quick);
  for (const file of files) {
    const target = join(dir, file.to);
    await mkdir(dirname(target), { recursive: true });
    await cp(file.from, target);
    const size = (await stat(target)).size;
    bytes += size;
    const top = file.to.slice(0, file.to.indexOf("/"));
    const tally = perPackage.get(top) ?? { files: 0, bytes: 0 };
    tally.files++;
    tally.bytes += size;
    perPackage.set(top, tally);
  }
  for (const [pkg, tally] of perPackage) {
    console.log(
      `  ${pkg.padEnd(32)} ${String(tally.files).padStart(5)} files ${(tally.bytes / 1e6).toFixed(2).padStart(7)} MB`,
    );
  }
  await writeFile(join(BENCH_DIR, `${basename(dir)}.txt`), `${files.map((f) => f.to).join("\n")}\n`);
  console.log(
    `corpus ${name}: ${files.length} files, ${(bytes / 1e6).toFixed(1)} MB from ${sources.length} packages in ${dir}${quick ? " (quick)" : ""}`,
  );
  return { dir, files: files.length, bytes };
}

export function corpusDir(quick = isQuick(), name: CorpusName = "assets"): string {
  const base = name === "assets" ? "corpus" : `corpus-${name}`;
  return join(BENCH_DIR, quick ? `${base}-quick` : base);
}

/** A fresh copy of the corpus for one tool's run; whatever was at `to` is removed first. */
export async function copyCorpus(to: string, from = corpusDir()): Promise<string> {
  await rm(to, { recursive: true, force: true });
  await cp(from, to, { recursive: true });
  return to;
}

/** The pins, for the report. */
export function corpusPackages(name: CorpusName = "assets"): string[] {
  return CORPORA[name].map((s) => `${s.name}@${s.version}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await ensureCorpus();
