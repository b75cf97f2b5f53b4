// Content-hashed names as real bundlers emit them (#14 case 9): a tiny app built by Vite, esbuild
// and webpack, twice (one module edited), then precompressed and served over real HTTP on every
// adapter. Every hashed asset is `immutable` with a `*` match; the build pairs a release's asset
// with the previous one's exactly when that match covers the new URL, which is when a browser asks.
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { after, describe, test } from "node:test";
import * as esbuild from "esbuild";
import { build as viteBuild } from "vite";
import webpack from "webpack";
import { deltaSupport, logicalName } from "../../src/delta.js";
import { type Manifest, precompress } from "../../src/index.js";
import { hashedName } from "../../src/serve/resolver.js";
import { ADAPTERS } from "../serve/adapters.js";
import { covers, matchOf } from "../serve/match.js";
import { tempDir } from "../support/helpers.js";
import { get } from "../support/http.js";

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** The app's sources; `release` changes one module, so its chunk gets a new hash. */
async function app(release: number): Promise<string> {
  const dir = await tempDir("app-");
  dirs.push(dir);
  const lines = (tag: string) =>
    Array.from({ length: 60 }, (_, i) => `export const ${tag}${i} = () => "${tag} line ${i}";`).join("\n");
  await writeFile(join(dir, "util.js"), `${lines("util")}\nexport const release = ${release};\n`);
  await writeFile(join(dir, "lazy.js"), `${lines("lazy")}\n`);
  await writeFile(
    join(dir, "style.css"),
    `${Array.from({ length: 60 }, (_, i) => `.c${i} { color: #${(i * 4099).toString(16).padStart(6, "0").slice(0, 6)}; }`).join("\n")}\n`,
  );
  await writeFile(
    join(dir, "main.js"),
    `import "./style.css";\nimport * as util from "./util.js";\nconsole.log(Object.values(util).map((f) => typeof f === "function" && f()));\nimport("./lazy.js").then((m) => console.log(Object.values(m).map((f) => f())));\n${lines("main").replace(/export /g, "")}\n`,
  );
  await writeFile(join(dir, "index.html"), `<!doctype html><script type="module" src="/main.js"></script>`);
  return dir;
}

type Build = (src: string, out: string) => Promise<void>;

const BUILDS: [string, Build][] = [
  [
    "vite",
    async (src, out) => {
      await viteBuild({
        root: src,
        configFile: false,
        logLevel: "silent",
        build: { outDir: out, emptyOutDir: true, minify: false },
      });
    },
  ],
  [
    "esbuild",
    async (src, out) => {
      // esbuild's defaults name chunks and assets `[name]-[hash]`; entries get the same here.
      await esbuild.build({
        entryPoints: [join(src, "main.js")],
        bundle: true,
        splitting: true,
        format: "esm",
        outdir: out,
        entryNames: "[name]-[hash]",
        logLevel: "silent",
      });
    },
  ],
  [
    "webpack",
    (src, out) =>
      new Promise((done, fail) => {
        webpack(
          {
            mode: "production",
            context: src,
            entry: "./main.js",
            // webpack's caching guide: `[contenthash]` (20 hex by default) in every name.
            output: { path: out, filename: "[name].[contenthash].js", chunkFilename: "[name].[contenthash].js" },
            module: { rules: [{ test: /\.css$/, type: "asset/resource" }] },
            optimization: { minimize: false },
          },
          (error, stats) =>
            error || stats?.hasErrors() ? fail(error ?? new Error(stats?.toString())) : done(undefined),
        );
      }),
  ],
];

async function emitted(dir: string): Promise<string[]> {
  const names = await readdir(dir, { recursive: true, withFileTypes: true });
  return names
    .filter((d) => d.isFile() && /\.(js|css)$/.test(d.name))
    .map((d) => relative(dir, join(d.parentPath, d.name)).split("\\").join("/"))
    .sort();
}

for (const [bundler, build] of BUILDS) {
  describe(`${bundler}: its default content-hashed names`, () => {
    let first: string;
    let second: string;
    test(`${bundler} builds two releases; every emitted JS and CSS name is content-hashed`, async () => {
      first = join(await tempDir(`${bundler}-1-`), "dist");
      second = join(await tempDir(`${bundler}-2-`), "dist");
      dirs.push(first, second);
      await mkdir(first, { recursive: true });
      await build(await app(1), first);
      await build(await app(2), second);
      const names = await emitted(first);
      assert.ok(names.length >= 3, `emitted ${names.join(", ")}`);
      for (const name of names) assert.ok(hashedName(name), `${bundler} emitted ${name}: not seen as hashed`);
      if (bundler === "webpack") for (const name of names) assert.match(name, /(?:^|\.)[\da-f]{20}\.(?:js|css)$/);
      await precompress({ dir: first, cache: false });
    });

    test(`${bundler}: a match covers the next release's asset exactly when the build pairs them`, async () => {
      const before = await emitted(first);
      const after = await emitted(second);
      const [name, start] = ADAPTERS[0] as (typeof ADAPTERS)[number];
      const server = await start(first);
      let changed = 0;
      for (const old of before) {
        const a = await get(server.port, `/${old}`, { "accept-encoding": "br" });
        // Under 1 KB (a runtime chunk) nothing is compressed, so nothing is offered as a dictionary.
        if (a.headers["use-as-dictionary"] === undefined) continue;
        const match = matchOf(a.headers["use-as-dictionary"]);
        for (const next of after) {
          const paired = logicalName(old) === logicalName(next);
          const asked = covers(match, `${server.origin}/${old}`, `${server.origin}/${next}`);
          assert.equal(asked, paired, `${name}: ${old} → ${next} (match="${match}")`);
          if (paired && old !== next) changed++;
        }
      }
      assert.ok(changed >= 1, "the edited module got a new hash");
    });

    test(`${bundler}: the next release gets a delta for each edited asset${deltaSupport.dcz ? "" : " (needs dcz: Node 24)"}`, async (t) => {
      if (!deltaSupport.dcz) return t.skip("no dcz on this Node");
      await precompress({ dir: second, cache: false, dictionaryFrom: [first] });
      const manifest = JSON.parse(await readFile(join(second, ".precompressor.json"), "utf8")) as Manifest;
      const before = new Set(await emitted(first));
      const renamed = Object.keys(manifest.files).filter((key) => /\.(js|css)$/.test(key) && !before.has(key));
      const withDelta = renamed.filter((key) => manifest.files[key]?.deltas?.length);
      assert.ok(withDelta.length >= 1, `deltas for ${renamed.join(", ")}`);
    });

    for (const [name, start] of ADAPTERS) {
      test(`${name}: every hashed asset of ${bundler} is immutable, with a \`*\` match`, async () => {
        const server = await start(first);
        let offered = 0;
        for (const asset of await emitted(first)) {
          const a = await get(server.port, `/${asset}`, { "accept-encoding": "br, gzip" });
          assert.equal(a.status, 200, asset);
          assert.equal(a.headers["cache-control"], "public, max-age=31536000, immutable", asset);
          if (a.headers["content-encoding"] === undefined) continue; // too small to compress
          assert.match(String(a.headers["use-as-dictionary"]), /^match=".*\*.*"$/, asset);
          offered++;
        }
        assert.ok(offered >= 2, "the main script and the lazy chunk are offered as dictionaries");
        const page = await readFile(join(first, "index.html")).catch(() => undefined);
        if (page) assert.equal((await get(server.port, "/")).headers["cache-control"], "no-cache");
      });
    }
  });
}
