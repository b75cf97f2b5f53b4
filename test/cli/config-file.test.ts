// The config file through the real CLI: where it is found, what it may say, and that flags win.
import assert from "node:assert/strict";
import { cp, mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { defineConfig } from "../../src/index.js";
import { copySite, loadManifest, removeDir, runCli, tempDir, verifyVariants } from "../support/helpers.js";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));

/** A project folder: package.json, a copy of the demo site's docs/ under site/, and the given files. */
async function project(files: Record<string, unknown>): Promise<string> {
  const dir = await tempDir("config-");
  dirs.push(dir);
  // The demo site's sources only: CI runs the README's command on fixtures/site before the tests.
  const site = await copySite();
  await cp(join(site, "docs"), join(dir, "site"), { recursive: true });
  await removeDir(site);
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "demo", private: true }));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), typeof content === "string" ? content : JSON.stringify(content));
  }
  return dir;
}

async function suffixes(dir: string): Promise<string[]> {
  const names = await readdir(dir, { recursive: true });
  return [...new Set(names.map((n) => /\.(gz|br|zst)$/.exec(n)?.[0]).filter(Boolean))].sort() as string[];
}

describe("config file", () => {
  it("precompressor.config.json in the working directory sets the options", async () => {
    const dir = await project({ "precompressor.config.json": { dir: "site", encodings: ["gzip"], cache: false } });
    const r = await runCli([], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await suffixes(join(dir, "site")), [".gz"]);
    assert.equal((await verifyVariants(join(dir, "site"))).gzip, 2);
  });

  it("is searched up to the nearest package.json, and its relative paths are relative to it", async () => {
    const dir = await project({ "precompressor.config.mjs": 'export default { dir: "site", encodings: ["br"] };' });
    await mkdir(join(dir, "deep", "er"), { recursive: true });
    const r = await runCli(["--no-cache"], { cwd: join(dir, "deep", "er") });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await suffixes(join(dir, "site")), [".br"]);
    // A package.json in between ends the search: the file above it is not this project's.
    await writeFile(join(dir, "deep", "package.json"), "{}");
    const below = await runCli(["--no-cache", "--json", join(dir, "site")], { cwd: join(dir, "deep", "er") });
    assert.equal(below.code, 0, below.stderr);
    assert.deepEqual(Object.keys(JSON.parse(below.stdout).encodings), ["gzip", "br", "zstd"]);
  });

  it('reads a "precompressor" key in package.json; --config names a file', async () => {
    const dir = await project({ "conf/other.cjs": 'module.exports = { encodings: ["zstd"], dir: "../site" };' });
    await writeFile(join(dir, "package.json"), JSON.stringify({ name: "demo", precompressor: { encodings: ["br"] } }));
    const fromPackage = await runCli(["site", "--no-cache", "--json"], { cwd: dir });
    assert.deepEqual(Object.keys(JSON.parse(fromPackage.stdout).encodings), ["br"], fromPackage.stderr);
    const named = await runCli(["--config", "conf/other.cjs", "--no-cache", "--json"], { cwd: dir });
    assert.equal(named.code, 0, named.stderr);
    assert.deepEqual(Object.keys(JSON.parse(named.stdout).encodings), ["zstd"]);
    const missing = await runCli(["site", "--config", "nope.json"], { cwd: dir });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--config .*nope\.json: no such file/);
    await writeFile(join(dir, "conf", "x.yaml"), "encodings: [br]");
    const yaml = await runCli(["site", "--config", "conf/x.yaml"], { cwd: dir });
    assert.equal(yaml.code, 2);
    assert.match(yaml.stderr, /x\.yaml: cannot load the config file: .*\.yaml/);
  });

  it("flags the user typed win over the file; flag defaults do not", async () => {
    const dir = await project({ "precompressor.config.json": { minSize: 100000, encodings: ["gzip"], cache: false } });
    const fileOnly = await runCli(["site", "--json"], { cwd: dir });
    // The file's minSize beats the flag's default (1024): nothing is big enough.
    assert.equal(JSON.parse(fileOnly.stdout).skipped.minSize, 2, fileOnly.stderr);
    const flags = await runCli(["site", "--json", "--min-size", "0", "--encodings", "br"], { cwd: dir });
    const summary = JSON.parse(flags.stdout);
    assert.equal(summary.skipped.minSize, 0);
    assert.deepEqual(Object.keys(summary.encodings), ["br"]);
    assert.deepEqual(await suffixes(join(dir, "site")), [".br"]);
    assert.ok(Object.keys((await loadManifest(join(dir, "site"))).files).length > 0);
  });

  for (const [what, content, message] of [
    ["an unknown key", { gzipLevl: 9 }, /precompressor\.config\.json: unknown key "gzipLevl"/],
    ["a level out of range", { gzipLevel: 42 }, /precompressor\.config\.json: gzipLevel: expected a whole number/],
    ["an unknown encoding", { encodings: ["lzma"] }, /precompressor\.config\.json: encodings: unknown encoding "lzma"/],
    ["a wrong type", { include: "*.js" }, /precompressor\.config\.json: include: expected an array of strings/],
    ["a ratio out of range", { minRatio: 2 }, /precompressor\.config\.json: minRatio: expected a number above 0/],
    ["invalid JSON", "{ nope", /precompressor\.config\.json: cannot load the config file/],
  ] as const) {
    it(`${what} is a usage error (exit 2) naming the key and the file, in one line`, async () => {
      const dir = await project({ "precompressor.config.json": content });
      const r = await runCli(["site"], { cwd: dir });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.ok(r.stderr.includes(join(dir, "precompressor.config.json")), r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.deepEqual(await suffixes(join(dir, "site")), []);
    });
  }

  it("defineConfig returns its argument (it exists for the types)", () => {
    const config = { encodings: ["br" as const], minSize: 512 };
    assert.equal(defineConfig(config), config);
  });
});
