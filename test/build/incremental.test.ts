import assert from "node:assert/strict";
import { cp, readdir, readFile, rm, stat, truncate, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { clean, type PrecompressOptions, precompress } from "../../src/index.js";
import { copySite, loadManifest, removeDir, tempDir, verifyVariants } from "../support/helpers.js";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));
async function track(dir: Promise<string>): Promise<string> {
  const d = await dir;
  dirs.push(d);
  return d;
}

/** inode and mtime of every variant file, to prove a rerun rewrote nothing. */
async function variantIdentity(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of (await readdir(dir, { recursive: true })) as string[]) {
    if (!/\.(gz|br|zst)$/.test(f) || f.endsWith(".tar.gz")) continue;
    const s = await stat(join(dir, f));
    out.set(f, `${s.ino}:${s.mtimeMs}`);
  }
  return out;
}

const noCache = (dir: string, extra: PrecompressOptions = {}): PrecompressOptions => ({ dir, cache: false, ...extra });

describe("incremental reruns", () => {
  it("an unchanged rerun rewrites nothing: every variant keeps its inode and mtime", async () => {
    const dir = await track(copySite());
    await precompress(noCache(dir));
    const before = await variantIdentity(dir);
    const summary = await precompress(noCache(dir));
    assert.deepEqual(await variantIdentity(dir), before);
    assert.equal(summary.states.compressed, 0);
    assert.equal(summary.states.unchanged, summary.files);
    assert.deepEqual(summary.changes, []);
  });

  it("one edited, one added, one deleted file: exactly those change", async () => {
    const dir = await track(copySite());
    await precompress(noCache(dir));
    const before = await variantIdentity(dir);
    await writeFile(
      join(dir, "assets/style.css"),
      `${await readFile(join(dir, "assets/style.css"), "utf8")}\n.new { color: blue; }\n`,
    );
    await writeFile(join(dir, "added.html"), "<p>new page</p>\n".repeat(100));
    await rm(join(dir, "data/products.json"));
    const summary = await precompress(noCache(dir));
    assert.deepEqual(summary.changes, [
      { path: "added.html", state: "compressed" },
      { path: "assets/style.css", state: "compressed" },
      { path: "data/products.json", state: "removed" },
    ]);
    const after = await variantIdentity(dir);
    for (const [f, id] of before) {
      if (f.startsWith("assets/style.css") || f.startsWith("data/products.json")) continue;
      assert.equal(after.get(f), id, `${f} must not be rewritten`);
    }
    for (const s of [".gz", ".br", ".zst"])
      assert.ok(!after.has(`data/products.json${s}`), "orphan variants are deleted");
    assert.equal((await loadManifest(dir)).files["data/products.json"], undefined);
    await verifyVariants(dir);
  });

  it("touch without an edit re-hashes but does not recompress, and keeps variant mtimes in step", async () => {
    const dir = await track(copySite());
    await precompress(noCache(dir));
    const later = new Date(Date.now() + 60_000);
    await utimes(join(dir, "index.html"), later, later);
    const inode = (await stat(join(dir, "index.html.br"))).ino;
    const summary = await precompress(noCache(dir));
    assert.equal(summary.states.compressed, 0);
    assert.equal((await stat(join(dir, "index.html.br"))).ino, inode);
    // utimes takes float seconds: equal to well under a millisecond (HTTP dates have whole seconds).
    assert.ok(
      Math.abs((await stat(join(dir, "index.html.br"))).mtimeMs - (await stat(join(dir, "index.html"))).mtimeMs) < 0.01,
    );
    assert.equal((await loadManifest(dir)).files["index.html"]?.mtimeMs, (await stat(join(dir, "index.html"))).mtimeMs);
  });

  it("a copied directory stays incremental (paths are relative)", async () => {
    const dir = await track(copySite());
    await precompress(noCache(dir));
    const copy = await track(tempDir("copy-"));
    await cp(dir, copy, { recursive: true });
    const summary = await precompress(noCache(copy));
    assert.equal(summary.states.compressed, 0);
    assert.equal(summary.states.unchanged, summary.files);
    await verifyVariants(copy);
  });

  it("a settings change redoes only the encoding it affects", async () => {
    const dir = await track(copySite());
    await precompress(noCache(dir));
    const before = await variantIdentity(dir);
    await precompress(noCache(dir, { zstdLevel: 3 }));
    const after = await variantIdentity(dir);
    for (const [f, id] of before) {
      if (f.endsWith(".zst")) continue;
      assert.equal(after.get(f), id, `${f} must not be rewritten by a zstd level change`);
    }
    await verifyVariants(dir);
  });

  it("a variant the manifest does not know is rewritten, never trusted", async () => {
    const dir = await track(copySite());
    await precompress(noCache(dir));
    await writeFile(join(dir, "index.html.br"), "not brotli at all");
    // Same size as recorded would fool a size check: make the forged file exactly that size.
    const recorded = (await loadManifest(dir)).files["docs/index.html"]?.variants.gzip?.size ?? 0;
    await writeFile(join(dir, "docs/index.html.gz"), Buffer.alloc(recorded, 0x41));
    await rm(join(dir, ".precompressor.json"));
    const summary = await precompress(noCache(dir));
    assert.ok(summary.states.compressed >= 2);
    await verifyVariants(dir);
  });
});

describe("persistent cache", () => {
  it("a fresh dir with a warm cache compresses nothing and writes identical bytes", async () => {
    const cacheDir = await track(tempDir("cache-"));
    const first = await track(copySite());
    await precompress({ dir: first, cacheDir });
    const fresh = await track(copySite());
    const summary = await precompress({ dir: fresh, cacheDir });
    assert.equal(summary.states.compressed, 0);
    assert.equal(summary.states.restored, 8);
    for (const f of (await variantIdentity(first)).keys()) {
      assert.deepEqual(await readFile(join(fresh, f)), await readFile(join(first, f)), f);
    }
    await verifyVariants(fresh);
  });

  it("a corrupt or truncated cache entry is detected and recompressed, never served", async () => {
    const cacheDir = await track(tempDir("cache-"));
    await precompress({ dir: await track(copySite()), cacheDir });
    const entries = ((await readdir(cacheDir, { recursive: true })) as string[]).filter(
      // The folder's CACHEDIR.TAG is not an entry.
      (f) => !f.endsWith(".none") && f !== "CACHEDIR.TAG",
    );
    let damaged = 0;
    for (const f of entries) {
      const path = join(cacheDir, f);
      if (!(await stat(path)).isFile()) continue;
      // Half the entries truncated, half overwritten with garbage of the same size.
      if (damaged % 2) await truncate(path, 10);
      else await writeFile(path, Buffer.alloc((await stat(path)).size, 0x5a));
      damaged += 1;
    }
    assert.ok(damaged >= 24);
    const fresh = await track(copySite());
    const summary = await precompress({ dir: fresh, cacheDir });
    assert.equal(summary.states.compressed, 8);
    await verifyVariants(fresh);
  });

  it("stays under --cache-max-size by evicting least recently used entries", async () => {
    const cacheDir = await track(tempDir("cache-"));
    await precompress({ dir: await track(copySite()), cacheDir, cacheMaxSize: 20_000 });
    let total = 0;
    for (const f of (await readdir(cacheDir, { recursive: true })) as string[]) {
      const s = await stat(join(cacheDir, f));
      if (s.isFile() && f !== "CACHEDIR.TAG") total += s.size;
    }
    assert.ok(total <= 20_000, `cache holds ${total} bytes`);
  });
});

describe("manifest robustness", () => {
  for (const [name, text] of [
    ["corrupt", "{ this is not json"],
    [
      "truncated",
      '{"version":1,"generator":"precompressor@0.1.0","settings":{},"files":{"index.html":{"hash":"sha256-',
    ],
    ["future version", '{"version":2,"files":{}}'],
  ] as const) {
    it(`a ${name} manifest gives one warning and a full, correct rebuild`, async () => {
      const dir = await track(copySite());
      await precompress(noCache(dir));
      await writeFile(join(dir, ".precompressor.json"), text);
      const warnings: string[] = [];
      const summary = await precompress(noCache(dir, { onWarning: (w) => warnings.push(w) }));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? "", /\.precompressor\.json: .*rebuilding everything/);
      assert.equal(summary.failures.length, 0);
      assert.deepEqual(await verifyVariants(dir), { gzip: 8, br: 8, zstd: 8 });
    });
  }

  it("is written with relative POSIX keys and the documented shape", async () => {
    const dir = await track(copySite());
    await precompress(noCache(dir));
    const m = await loadManifest(dir);
    assert.equal(m.version, 1);
    assert.match(m.generator, /^precompressor@\d+\.\d+\.\d+/);
    assert.deepEqual(Object.keys(m.settings).sort(), ["br", "gzip", "zstd"]);
    for (const key of Object.keys(m.files)) assert.ok(!key.startsWith("/") && !key.includes("\\"), key);
    const entry = m.files["assets/app.3f9a1c2b.js"];
    assert.match(entry?.hash ?? "", /^sha256-[A-Za-z0-9_-]{43}$/);
    assert.equal(entry?.size, (await stat(join(dir, "assets/app.3f9a1c2b.js"))).size);
  });
});

describe("--check and clean", () => {
  it("check exits clean when up to date and lists stale, missing and orphaned paths otherwise, writing nothing", async () => {
    const dir = await track(copySite());
    const missing = await precompress(noCache(dir, { check: true }));
    assert.ok(missing.changes.every((c) => c.state === "missing"));
    await assert.rejects(stat(join(dir, ".precompressor.json")), "check writes no manifest");
    await precompress(noCache(dir));
    assert.deepEqual((await precompress(noCache(dir, { check: true }))).changes, []);
    await writeFile(join(dir, "index.html"), "<p>changed</p>\n".repeat(200));
    await rm(join(dir, "data/products.json"));
    await writeFile(join(dir, "new.css"), "a { color: red }\n".repeat(100));
    const before = await variantIdentity(dir);
    const stale = await precompress(noCache(dir, { check: true }));
    assert.deepEqual(stale.changes, [
      { path: "data/products.json", state: "orphaned" },
      { path: "index.html", state: "stale" },
      { path: "new.css", state: "missing" },
    ]);
    assert.deepEqual(await variantIdentity(dir), before, "check writes nothing");
  });

  it("clean removes every listed variant and the manifest, and keeps the user's own .gz", async () => {
    const dir = await track(copySite());
    await writeFile(join(dir, "mine.txt.gz"), "the user's own file, not ours");
    await precompress(noCache(dir));
    const result = await clean({ dir });
    assert.equal(result.removed, 24);
    const left = ((await readdir(dir, { recursive: true })) as string[]).filter((f) => /\.(gz|br|zst)$/.test(f)).sort();
    assert.deepEqual(left, ["downloads/notes.tar.gz", "mine.txt.gz"]);
    await assert.rejects(stat(join(dir, ".precompressor.json")));
  });
});
