// A real `vite build` (the CLI, as a child process) of fixtures/app with the README's plugin snippet.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Plugin as RollupPlugin } from "rollup";
import type { PluginOption } from "vite";
import precompressor from "../../src/bundler/vite.js";
import { loadManifest, verifyVariants } from "../support/helpers.js";
import { appCopies, FIXTURE_APP, readmeSnippet, runNode, startNode, VITE } from "./helpers.js";

// Type-level: what users put in `plugins` compiles in Vite and in Rollup (tsc --noEmit checks these lines).
const asVite: PluginOption = precompressor();
const asRollup: RollupPlugin = precompressor();

const app = appCopies();

const LINE = /\[precompressor\] (\d+) files?: (\d+) compressed, (\d+) restored, (\d+) unchanged, (\d+) removed/;

describe("vite plugin", () => {
  it("declares a post, build-only plugin", () => {
    const p = precompressor();
    assert.deepEqual([p.name, p.apply, p.enforce], ["precompressor", "build", "post"]);
    assert.ok(asVite && asRollup);
  });

  it("the README's Vite and config-file snippets are the fixture app's files", async () => {
    for (const file of ["vite.config.js", "precompressor.config.js"]) {
      assert.equal(
        await readmeSnippet(`fixtures/app/${file}`),
        await readFile(join(FIXTURE_APP, file), "utf8"),
        `README snippet of ${file} drifted from fixtures/app/${file}`,
      );
    }
  });

  it("vite build: compresses the final output, public/ included; inline options win over the config file", async () => {
    const dir = await app();
    const r = await runNode(VITE, ["build"], dir);
    assert.equal(r.code, 0, r.stderr);
    const line = LINE.exec(r.stdout);
    assert.ok(line, r.stdout);
    assert.deepEqual(line.slice(1, 3), ["4", "4"]);
    const out = join(dir, "dist");
    const manifest = await loadManifest(out);
    const files = Object.keys(manifest.files);
    assert.ok(files.includes("about.txt"), "the public/ file is in the manifest");
    assert.ok(files.includes("index.html"));
    assert.ok(files.some((f) => /^assets\/index-[\w-]+\.js$/.test(f)));
    // The CSS is under the library's 1024-byte default: the config file's minSize 512 applied.
    const css = files.find((f) => f.endsWith(".css")) as string;
    assert.ok(manifest.files[css]?.size && manifest.files[css].size < 1024, css);
    // br and gzip from the inline options, not the file's zstd; every variant decodes to its source.
    assert.deepEqual(await verifyVariants(out), { gzip: 4, br: 4, zstd: 0 });
  });

  it("vite build --outDir: the custom folder, resolved against root; --debug precompressor logs the --json summary", async () => {
    const dir = await app();
    const r = await runNode(VITE, ["build", "--outDir", "out/site", "--debug", "precompressor"], dir);
    assert.equal(r.code, 0, r.stderr);
    const out = join(dir, "out", "site");
    const json = (r.stdout + r.stderr).split("\n").find((l) => l.startsWith('{"dir":'));
    assert.ok(json, r.stdout);
    const summary = JSON.parse(json);
    assert.equal(summary.dir, out);
    assert.equal(summary.states.compressed, 4);
    assert.deepEqual(
      summary.changes.map((c: { path: string }) => c.path),
      Object.keys((await loadManifest(out)).files),
    );
    assert.equal(existsSync(join(dir, "dist")), false);
    assert.deepEqual(await verifyVariants(out), { gzip: 4, br: 4, zstd: 0 });
  });

  it("fails the build when a file failed, unless failOnError: false", async () => {
    const dir = await app();
    // A folder where about.txt's brotli variant must go: writing it fails, the rest is done.
    await mkdir(join(dir, "public", "about.txt.br"));
    await writeFile(join(dir, "public", "about.txt.br", "keep"), "x");
    const r = await runNode(VITE, ["build"], dir);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /1 files failed \(failOnError: false to go on\): .*about\.txt/);
    const config = (await readFile(join(dir, "vite.config.js"), "utf8")).replace(
      '"gzip"] }',
      '"gzip"], failOnError: false }',
    );
    await writeFile(join(dir, "vite.lenient.config.js"), config);
    const lenient = await runNode(VITE, ["build", "--config", "vite.lenient.config.js"], dir);
    assert.equal(lenient.code, 0, lenient.stderr);
    assert.match(lenient.stdout, /\[precompressor\] .*1 failed/);
  });

  it("vite build --watch: each rebuild re-runs; an edited index.html is the only file compressed again", async () => {
    const dir = await app();
    const out = join(dir, "dist");
    const vite = startNode(VITE, ["build", "--watch"], dir);
    try {
      const first = await vite.waitFor(LINE);
      assert.equal(first[2], "4");
      const before = await loadManifest(out);
      const html = join(dir, "index.html");
      await writeFile(html, (await readFile(html, "utf8")).replace("<h1>Greetings", "<h1>Warm greetings"));
      const second = await vite.waitFor(LINE, 2);
      // Vite empties outDir before each rebuild; the unchanged files come back from the cache, not a compressor.
      assert.deepEqual(second.slice(1, 4), ["4", "1", "3"]);
      const now = await loadManifest(out);
      for (const [rel, entry] of Object.entries(now.files)) {
        const same = before.files[rel]?.hash === entry.hash;
        assert.equal(same, rel !== "index.html", rel);
        if (same) assert.deepEqual(entry.variants, before.files[rel]?.variants, rel);
      }
      assert.deepEqual(await verifyVariants(out), { gzip: 4, br: 4, zstd: 0 });
    } finally {
      vite.process.kill("SIGINT");
      await vite.exited;
    }
  });
});
