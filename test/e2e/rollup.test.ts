// A real `rollup -c` (the CLI, as a child process) of fixtures/app with the README's Rollup snippet.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadManifest, verifyVariants } from "../support/helpers.js";
import { appCopies, FIXTURE_APP, ROLLUP, readmeSnippet, runNode, startNode } from "./helpers.js";

const app = appCopies();

const LINE = /\[plugin precompressor\] (\d+) files?: (\d+) compressed, (\d+) restored, (\d+) unchanged/;

describe("rollup plugin", () => {
  it("the README's Rollup snippet is the fixture app's rollup.config.js", async () => {
    assert.equal(
      await readmeSnippet("fixtures/app/rollup.config.js"),
      await readFile(join(FIXTURE_APP, "rollup.config.js"), "utf8"),
      "README snippet drifted from fixtures/app/rollup.config.js",
    );
  });

  it("rollup -c: compresses output.dir with the config file's options; a rerun is incremental", async () => {
    const dir = await app();
    const r = await runNode(ROLLUP, ["-c"], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(LINE.exec(r.stderr)?.slice(1, 3), ["1", "1"], r.stderr);
    const out = join(dir, "build");
    // No inline options: all three encodings, from precompressor.config.js.
    assert.deepEqual(await verifyVariants(out), { gzip: 1, br: 1, zstd: 1 });
    const again = await runNode(ROLLUP, ["-c"], dir);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(LINE.exec(again.stderr)?.slice(1, 5), ["1", "0", "0", "1"], again.stderr);
  });

  it("rollup -c -d <dir>: the output folder given on the command line; --logLevel debug logs the --json summary", async () => {
    const dir = await app();
    const r = await runNode(ROLLUP, ["-c", "-d", "out/js", "--logLevel", "debug"], dir);
    assert.equal(r.code, 0, r.stderr);
    const out = join(dir, "out", "js");
    const json = /\[plugin precompressor\] (\{"dir":.*)/.exec(r.stderr)?.[1];
    assert.ok(json, r.stderr);
    assert.equal(JSON.parse(json).dir, out);
    assert.deepEqual(Object.keys((await loadManifest(out)).files), ["main.js"]);
    assert.deepEqual(await verifyVariants(out), { gzip: 1, br: 1, zstd: 1 });
  });

  it("rollup -c --watch: a rebuild recompresses the changed bundle", async () => {
    const dir = await app();
    const rollup = startNode(ROLLUP, ["-c", "--watch", "--no-watch.clearScreen"], dir);
    try {
      await rollup.waitFor(LINE);
      const before = (await loadManifest(join(dir, "build"))).files["main.js"]?.hash;
      const source = join(dir, "src", "greetings.js");
      await writeFile(source, (await readFile(source, "utf8")).replace('"Hello"', '"Hello there"'));
      const second = await rollup.waitFor(LINE, 2);
      assert.deepEqual(second.slice(1, 3), ["1", "1"]);
      assert.notEqual((await loadManifest(join(dir, "build"))).files["main.js"]?.hash, before);
      assert.deepEqual(await verifyVariants(join(dir, "build")), { gzip: 1, br: 1, zstd: 1 });
    } finally {
      rollup.process.kill("SIGINT");
      await rollup.exited;
    }
  });
});
