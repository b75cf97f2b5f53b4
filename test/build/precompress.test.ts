import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type PrecompressOptions, precompress } from "../../src/index.js";
import { copySite, loadManifest, removeDir, tempDir, verifyVariants } from "../support/helpers.js";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));

async function site(): Promise<string> {
  const dir = await copySite();
  dirs.push(dir);
  return dir;
}

async function scratch(): Promise<string> {
  const dir = await tempDir();
  dirs.push(dir);
  return dir;
}

/** Every file under `dir`, relative, sorted. */
async function listing(dir: string): Promise<string[]> {
  return ((await readdir(dir, { recursive: true })) as string[]).sort();
}

const quiet = (dir: string, extra: PrecompressOptions = {}): PrecompressOptions => ({ dir, cache: false, ...extra });

/** Run `fn` with the pool host forced on ("1") or off ("0"). */
async function withPoolHost<T>(host: "0" | "1", fn: () => Promise<T>): Promise<T> {
  const before = process.env.PRECOMPRESSOR_POOL_HOST;
  process.env.PRECOMPRESSOR_POOL_HOST = host;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.PRECOMPRESSOR_POOL_HOST;
    else process.env.PRECOMPRESSOR_POOL_HOST = before;
  }
}

/** Each file's variants as the manifest records them. */
async function recordedVariants(dir: string) {
  return Object.fromEntries(Object.entries((await loadManifest(dir)).files).map(([k, v]) => [k, v.variants]));
}

describe("precompress: the demo site", () => {
  it("the pool host (a child process) and in-process threads write the same bytes", async () => {
    const manifests = [];
    for (const host of ["1", "0"] as const) {
      const dir = await site();
      const summary = await withPoolHost(host, () => precompress(quiet(dir)));
      assert.equal(summary.failures.length, 0);
      assert.equal(summary.states.compressed, 8);
      await verifyVariants(dir);
      manifests.push(await recordedVariants(dir));
    }
    assert.deepEqual(manifests[0], manifests[1]);
  });

  it("writes gzip, br and zstd variants that decode byte for byte to every source", async () => {
    const dir = await site();
    const summary = await precompress(quiet(dir));
    assert.equal(summary.failures.length, 0);
    const counts = await verifyVariants(dir);
    // Eight compressible files above 1 KiB in the demo site; robots.txt is below --min-size.
    for (const encoding of ["gzip", "br", "zstd"] as const) assert.equal(counts[encoding], 8, encoding);
    assert.equal(summary.states.compressed, 8);
    const manifest = await loadManifest(dir);
    assert.ok(manifest.files["images/node-js.png"], "images are listed, without variants");
    assert.deepEqual(manifest.files["images/node-js.png"]?.variants, {});
    assert.equal(manifest.files["downloads/notes.tar.gz"]?.type, "application/gzip");
    assert.equal(manifest.files["index.html"]?.type, "text/html; charset=utf-8");
  });

  it("never compresses a variant again on rerun (no .gz.br, ever)", async () => {
    const dir = await site();
    await precompress(quiet(dir));
    const first = await listing(dir);
    const second = await precompress(quiet(dir));
    assert.deepEqual(await listing(dir), first);
    assert.equal(second.states.compressed, 0);
    assert.ok(!first.some((f) => /\.(gz|br|zst)\.(gz|br|zst)$/.test(f)), first.join("\n"));
    assert.ok(!Object.keys((await loadManifest(dir)).files).some((k) => /\.js\.(gz|br|zst)$/.test(k)));
  });

  it("is deterministic: two runs on two copies write identical bytes", async () => {
    const a = await site();
    const b = await site();
    await precompress(quiet(a));
    await precompress(quiet(b, { concurrency: 1 }));
    for (const f of await listing(a)) {
      if (f.endsWith(".precompressor.json") || (await stat(join(a, f))).isDirectory()) continue;
      assert.deepEqual(await readFile(join(a, f)), await readFile(join(b, f)), f);
    }
  });

  it("gives each variant its source's mtime (nginx takes Last-Modified from the .gz)", async () => {
    const dir = await site();
    await precompress(quiet(dir));
    const source = await stat(join(dir, "index.html"));
    for (const suffix of [".gz", ".br", ".zst"]) {
      assert.ok(Math.abs((await stat(join(dir, `index.html${suffix}`))).mtimeMs - source.mtimeMs) < 0.01, suffix);
    }
  });
});

describe("precompress: eligibility", () => {
  it("applies --min-size and --min-ratio, and an incompressible .js gets no variants", async () => {
    const dir = await scratch();
    await writeFile(join(dir, "small.js"), "let a = 1;\n".repeat(50)); // 550 B
    await writeFile(join(dir, "random.js"), randomBytes(20_000));
    await writeFile(
      join(dir, "text.js"),
      Array.from({ length: 400 }, (_, i) => `export const value${i} = ${i * 7919};\n`).join(""),
    );
    const summary = await precompress(quiet(dir));
    const files = await listing(dir);
    assert.ok(!files.some((f) => f.startsWith("small.js.")), "below min-size");
    assert.ok(!files.some((f) => f.startsWith("random.js.")), "incompressible");
    assert.ok(files.includes("text.js.br"));
    assert.equal(summary.skipped.minSize, 1);
    assert.equal(summary.encodings.br?.notWorthIt, 1);

    // With --min-size 0 the small file is compressed; --min-ratio 0.01 keeps nothing at all.
    await precompress(quiet(dir, { minSize: 0 }));
    assert.ok((await listing(dir)).includes("small.js.gz"));
    await precompress(quiet(dir, { minSize: 0, minRatio: 0.01 }));
    assert.ok(
      !(await listing(dir)).some((f) => /\.(gz|br|zst)$/.test(f)),
      "no variant passes a 1% ratio; old ones removed",
    );
    assert.deepEqual(await verifyVariants(dir), { gzip: 0, br: 0, zstd: 0 });
  });

  it("never compresses already-compressed types, and lists them", async () => {
    const dir = await scratch();
    for (const name of ["a.png", "b.woff2", "c.zip", "d.mp4", "e.gz"])
      await writeFile(join(dir, name), Buffer.alloc(5000, 1));
    const summary = await precompress(quiet(dir));
    assert.equal(summary.skipped.type, 5);
    assert.deepEqual(
      (await listing(dir)).filter((f) => !f.startsWith(".")),
      ["a.png", "b.woff2", "c.zip", "d.mp4", "e.gz"],
    );
    assert.equal(Object.keys((await loadManifest(dir)).files).length, 5);
  });

  it("handles names with spaces and non-ASCII letters, and a 0-byte file", async () => {
    const dir = await scratch();
    await writeFile(join(dir, "menu café été.html"), "<p>crème brûlée</p>\n".repeat(200));
    await writeFile(join(dir, "empty.js"), "");
    await precompress(quiet(dir, { minSize: 0 }));
    const manifest = await loadManifest(dir);
    assert.ok(manifest.files["menu café été.html"]?.variants.br);
    assert.equal(manifest.files["empty.js"]?.size, 0);
    const counts = await verifyVariants(dir);
    assert.ok(counts.br >= 1);
  });

  it("skips dotfiles and node_modules by default; --include/--exclude filter", async () => {
    const dir = await scratch();
    const text = "body { color: red; }\n".repeat(100);
    for (const f of [".env.js", "node_modules/x/a.js", "keep/a.css", "drop/b.css"]) {
      await mkdir(join(dir, f, ".."), { recursive: true });
      await writeFile(join(dir, f), text);
    }
    await precompress(quiet(dir, { exclude: ["drop/**"] }));
    const keys = Object.keys((await loadManifest(dir)).files);
    assert.deepEqual(keys, ["keep/a.css"]);
    await precompress(quiet(dir, { include: ["drop/**"] }));
    assert.deepEqual(Object.keys((await loadManifest(dir)).files), ["drop/b.css"]);
    assert.ok(!(await listing(dir)).includes("keep/a.css.br"), "variants of files no longer included are removed");
  });

  it("streams a file above 16 MB and its variants decode to it, in-process and in the pool host", async () => {
    const line = (i: number) => `export const item${i} = { id: ${i}, name: "item ${i % 977}", tags: ["a", "b"] };\n`;
    const chunks: string[] = [];
    let size = 0;
    for (let i = 0; size < 17 * 1024 * 1024; i++) {
      const l = line(i);
      chunks.push(l);
      size += l.length;
    }
    const big = chunks.join("");
    const manifests = [];
    // The host runs streaming runs with a bounded heap (other malloc settings): same bytes.
    for (const host of ["0", "1"] as const) {
      const dir = await scratch();
      await writeFile(join(dir, "big.js"), big);
      // Fast levels: this checks the streaming path, not compression ratio.
      const options = quiet(dir, { gzipLevel: 1, brotliLevel: 1, zstdLevel: 1 });
      const summary = await withPoolHost(host, () => precompress(options));
      assert.equal(summary.failures.length, 0);
      assert.deepEqual(await verifyVariants(dir), { gzip: 1, br: 1, zstd: 1 });
      manifests.push(await recordedVariants(dir));
    }
    assert.deepEqual(manifests[0], manifests[1]);
  });
});

describe("precompress: errors", () => {
  it("names a missing directory with E_INPUT_NOT_FOUND", async () => {
    await assert.rejects(precompress({ dir: "/nonexistent/precompressor" }), (e: Error & { code?: string }) => {
      assert.equal(e.code, "E_INPUT_NOT_FOUND");
      assert.match(e.message, /\/nonexistent\/precompressor/);
      return true;
    });
  });

  it("refuses / and the home folder unless forced", async () => {
    await assert.rejects(precompress({ dir: "/", dryRun: true }), { code: "E_INPUT_REFUSED" });
    await assert.rejects(precompress({ dir: (await import("node:os")).homedir(), dryRun: true }), {
      code: "E_INPUT_REFUSED",
    });
  });

  it("rejects bad options naming the flag", async () => {
    const dir = await scratch();
    await assert.rejects(precompress({ dir, zstdLevel: 40 }), /--zstd-level/);
    await assert.rejects(precompress({ dir, minRatio: 2 }), /--min-ratio/);
    await assert.rejects(precompress({ dir, encodings: ["lzma" as "gzip"] }), /--encodings/);
  });

  it("leaves no temp file behind, and sweeps those a killed run left", async () => {
    const dir = await site();
    await writeFile(join(dir, ".pc-0123456789abcdef0123.tmp"), "torn");
    await precompress(quiet(dir));
    assert.ok(!(await listing(dir)).some((f) => /\.pc-[0-9a-f]{20}\.tmp$/.test(f)));
    await rm(join(dir, ".precompressor.json"));
    await utimes(join(dir, "index.html"), new Date(), new Date());
  });
});
