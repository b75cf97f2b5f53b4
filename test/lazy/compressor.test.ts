import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { settingsDigest } from "../../src/build/settings.js";
import { cacheEntryPath, decodeVariant, writeCache } from "../../src/cache.js";
import type { PrecompressorError } from "../../src/errors.js";
import { hashBytes } from "../../src/hash.js";
import { createLazyCompressor, LAZY_LEVELS, type LazyOptions, type LazyVariant } from "../../src/lazy/compressor.js";
import type { Encoding } from "../../src/manifest-format.js";
import { ROOT, removeDir, tempDir } from "../support/helpers.js";

/** Real code to compress: slices of TypeScript's own bundle, 9 MB of JavaScript. */
const CODE = readFileSync(join(ROOT, "node_modules", "typescript", "lib", "typescript.js"));
const code = (bytes: number, offset = 0): Buffer => CODE.subarray(offset, offset + bytes);

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map(removeDir));
});

/** A served root holding `files`, a cache folder beside it, and a compressor closed after the test. */
async function setup(files: Record<string, Buffer | string>, options: Partial<LazyOptions> = {}) {
  const base = await tempDir("lazy-");
  dirs.push(base);
  const root = join(base, "site");
  const cacheDir = join(base, "cache");
  for (const [rel, bytes] of Object.entries(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), bytes);
  }
  await mkdir(root, { recursive: true });
  const errors: PrecompressorError[] = [];
  const lazy = createLazyCompressor({ root, cacheDir, onError: (e) => errors.push(e), ...options });
  return { base, root, cacheDir, lazy, errors };
}

/** The variant's file decodes to exactly `source`, and its size and hash are what was returned. */
async function assertDecodes(v: LazyVariant | undefined, source: Buffer): Promise<void> {
  assert.ok(v, "expected a variant");
  const bytes = await readFile(v.path);
  assert.equal(bytes.length, v.size);
  assert.equal(hashBytes(bytes), v.hash);
  assert.equal(v.sourceHash, hashBytes(source));
  assert.ok((await decodeVariant(v.encoding, bytes)).equals(source), `${v.path} does not decode to the source`);
}

async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(5);
  }
}

async function cacheBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of (await readdir(dir, { recursive: true })) as string[]) {
    const s = await stat(join(dir, name));
    if (s.isFile()) total += s.size;
  }
  return total;
}

/** br 11 on 1 MB of code takes seconds: long enough to abort, edit or time out in the middle of it. */
const SLOW = { levels: { br: 11 }, maxWaitMs: 60_000 } satisfies Partial<LazyOptions>;

describe("lazy compressor", () => {
  it("starts exactly one compression per key for 100 concurrent requests, and every result decodes", async () => {
    const source = code(300_000);
    const { lazy, root, cacheDir } = await setup({ "app.js": source }, { maxWaitMs: 60_000 });
    const encodings: Encoding[] = ["gzip", "br", "zstd"];
    const results = await Promise.all(
      encodings.flatMap((encoding) => Array.from({ length: 100 }, () => lazy.variant("app.js", encoding))),
    );
    assert.equal(lazy.metrics.compressions, 3);
    assert.equal(lazy.metrics.hits, 300);
    for (const v of results) await assertDecodes(v, source);
    assert.equal(new Set(results.map((v) => v?.path)).size, 3);

    // Later requests reuse the file on disk.
    await assertDecodes(await lazy.variant("app.js", "br"), source);
    assert.equal(lazy.metrics.compressions, 3);

    // Another process sharing the folder verifies and adopts the entries instead of compressing.
    const other = createLazyCompressor({ root, cacheDir, maxWaitMs: 60_000 });
    await assertDecodes(await other.variant("app.js", "zstd"), source);
    assert.equal(other.metrics.compressions, 0);
    assert.equal(other.metrics.adopted, 1);
    await Promise.all([lazy.close(), other.close()]);
  });

  it("keeps compressing when the first requester aborts, and that requester stops waiting at once", async () => {
    const source = code(1_000_000);
    const { lazy } = await setup({ "big.js": source }, SLOW);
    const controller = new AbortController();
    const first = lazy.variant("big.js", "br", controller.signal);
    await until(() => lazy.metrics.inFlight === 1);
    controller.abort();
    const abortedAt = performance.now();
    assert.equal(await first, undefined);
    const waited = performance.now() - abortedAt;
    assert.ok(waited < 250, `the aborted request waited ${waited} ms`);
    assert.equal(lazy.metrics.aborted, 1);
    assert.equal(lazy.metrics.compressions, 0, "the compression should still be running");

    await lazy.idle();
    assert.equal(lazy.metrics.compressions, 1);
    await assertDecodes(await lazy.variant("big.js", "br"), source);
    assert.equal(lazy.metrics.compressions, 1);
    await lazy.close();
  });

  it("never serves the old content's variant once the source is edited during compression", async () => {
    const before = code(1_000_000);
    const edited = code(1_000_000, 4_000_000);
    const { lazy, root } = await setup({ "page.js": before }, SLOW);
    const during = lazy.variant("page.js", "br");
    await until(() => lazy.metrics.inFlight === 1);
    await sleep(300);
    // Same size: only the content identity (ctime, hash) tells the two apart.
    await writeFile(join(root, "page.js"), edited);
    const answer = await during;
    if (answer) await assertDecodes(answer, edited);
    await assertDecodes(await lazy.variant("page.js", "br"), edited);

    // A changed source gets a new key at once, even within one mtime tick.
    const third = Buffer.from(edited);
    third.write("/* third */", 0);
    await writeFile(join(root, "page.js"), third);
    await assertDecodes(await lazy.variant("page.js", "br"), third);
    await lazy.close();
  });

  it("answers identity within maxWaitMs while a slow compression finishes in the background", async () => {
    const source = code(1_000_000);
    const { lazy } = await setup({ "slow.js": source }, { ...SLOW, maxWaitMs: 50 });
    const startedAt = performance.now();
    assert.equal(await lazy.variant("slow.js", "br"), undefined);
    const waited = performance.now() - startedAt;
    assert.ok(waited >= 45 && waited < 1000, `waited ${waited} ms`);
    assert.equal(lazy.metrics.timeouts, 1);
    assert.equal(lazy.metrics.compressions, 0, "answered before the compression finished");
    assert.equal(lazy.metrics.inFlight, 1);

    await lazy.idle();
    await assertDecodes(await lazy.variant("slow.js", "br"), source);
    assert.equal(lazy.metrics.compressions, 1);
    await lazy.close();
  });

  it("keeps the cache under maxSize by evicting the least recently used entries, and stays correct", async () => {
    const files = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`f${i}.js`, code(100_000, i * 500_000)]));
    const maxSize = 60_000;
    const { lazy, cacheDir } = await setup(files, { maxSize, maxWaitMs: 60_000 });
    for (const [rel, source] of Object.entries(files)) {
      await assertDecodes(await lazy.variant(rel, "br"), source);
      await lazy.idle();
      // Each br variant is ~20 KB: two or three fit.
      assert.ok((await cacheBytes(cacheDir)) <= maxSize);
    }
    assert.ok(lazy.metrics.evictedBytes > 0);

    // The newest entry survived; the oldest was evicted and is rebuilt, correctly, on demand.
    const compressions = lazy.metrics.compressions;
    await assertDecodes(await lazy.variant("f5.js", "br"), files["f5.js"] as Buffer);
    assert.equal(lazy.metrics.compressions, compressions);
    await assertDecodes(await lazy.variant("f0.js", "br"), files["f0.js"] as Buffer);
    assert.equal(lazy.metrics.compressions, compressions + 1);
    await lazy.idle();
    assert.ok((await cacheBytes(cacheDir)) <= maxSize);
    await lazy.close();
  });

  it("refuses traversal, absolute paths, links out of the root, dotfiles and the manifest", async () => {
    const source = code(50_000);
    const { lazy, base, root } = await setup(
      {
        "ok.js": source,
        ".secret.js": source,
        ".precompressor.json": JSON.stringify({ pad: "x".repeat(5000) }),
        ".hidden/app.js": source,
        "dir.js/index.js": source,
        "photo.png": randomBytes(5000),
      },
      { maxWaitMs: 60_000 },
    );
    await writeFile(join(base, "outside.js"), source);
    await symlink(join(base, "outside.js"), join(root, "escape.js"));
    await symlink(join(root, ".secret.js"), join(root, "alias.js"));
    await symlink(join(root, "ok.js"), join(root, "inside-link.js"));
    const probes = [
      "../outside.js",
      "dir.js/../../outside.js",
      "./ok.js",
      "dir.js//index.js",
      join(base, "outside.js"),
      join(root, "ok.js"),
      "/ok.js",
      "ok.js\0.png",
      "..\\outside.js",
      "escape.js",
      "alias.js",
      ".secret.js",
      ".hidden/app.js",
      ".precompressor.json",
      "dir.js",
      "photo.png",
      "missing.js",
    ];
    for (const probe of probes) {
      assert.equal(await lazy.variant(probe, "br"), undefined, probe);
    }
    assert.equal(lazy.metrics.refused, probes.length);
    assert.equal(lazy.metrics.compressions, 0);

    // Links that stay inside the root are fine.
    await assertDecodes(await lazy.variant("inside-link.js", "br"), source);
    await lazy.close();
  });

  it("remembers negative results: incompressible files are tried once, small files never", async () => {
    const { lazy, root, cacheDir } = await setup(
      { "noise.txt": randomBytes(64_000), "tiny.js": "let a = 1;" },
      { maxWaitMs: 60_000 },
    );
    for (let i = 0; i < 3; i++) {
      assert.equal(await lazy.variant("noise.txt", "br"), undefined);
      assert.equal(await lazy.variant("tiny.js", "br"), undefined);
    }
    assert.equal(lazy.metrics.compressions, 1);
    assert.equal(lazy.metrics.notWorthIt, 1);

    // The verdict is on disk too: another process does not retry it.
    const other = createLazyCompressor({ root, cacheDir, maxWaitMs: 60_000 });
    assert.equal(await other.variant("noise.txt", "br"), undefined);
    assert.equal(other.metrics.compressions, 0);
    assert.equal(other.metrics.notWorthIt, 1);
    await Promise.all([lazy.close(), other.close()]);
  });

  it("serves identity on a failed compression and reports it once, not per request", async () => {
    const source = code(50_000);
    const { lazy, cacheDir, errors } = await setup({ "a.js": source }, { maxWaitMs: 60_000 });
    await lazy.idle();
    // A file where the entry's folder must go: every write fails.
    const digest = settingsDigest({ encoding: "br", level: LAZY_LEVELS.br, minSize: 1024, minRatio: 0.95 });
    await writeFile(join(cacheDir, digest.slice(7, 23)), "in the way");
    const answers = await Promise.all(Array.from({ length: 10 }, () => lazy.variant("a.js", "br")));
    for (let i = 0; i < 10; i++) answers.push(await lazy.variant("a.js", "br"));
    assert.deepEqual(answers, Array(20).fill(undefined));
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.code, "E_WRITE");
    assert.equal(lazy.metrics.errors, 1);
    await lazy.close();
  });

  it("stops a compression at its own time limit and reports it once", async () => {
    const { lazy, errors } = await setup({ "big.js": code(1_000_000) }, { ...SLOW, timeoutMs: 100 });
    assert.equal(await lazy.variant("big.js", "br"), undefined);
    assert.equal(await lazy.variant("big.js", "br"), undefined);
    assert.equal(errors.length, 1);
    assert.match(errors[0]?.message ?? "", /longer than 100 ms/);
    assert.equal(lazy.metrics.compressions, 0);
    await lazy.close();
  });

  it("adopts only verified entries: a corrupt cache file is replaced, not served", async () => {
    const source = code(50_000);
    const { lazy, root, cacheDir } = await setup({ "a.js": source }, { maxWaitMs: 60_000 });
    const digest = settingsDigest({ encoding: "gzip", level: LAZY_LEVELS.gzip, minSize: 1024, minRatio: 0.95 });
    await writeCache(cacheDir, digest, hashBytes(source), Buffer.from("not gzip at all"));
    await assertDecodes(await lazy.variant("a.js", "gzip"), source);
    assert.equal(lazy.metrics.compressions, 1);

    // An entry another process wrote through the shared layout is adopted as is.
    const other = createLazyCompressor({ root, cacheDir, maxWaitMs: 60_000 });
    await assertDecodes(await other.variant("a.js", "gzip"), source);
    assert.equal(other.metrics.adopted, 1);
    await Promise.all([lazy.close(), other.close()]);
  });

  it("purges one file's variants or all of them", async () => {
    const a = code(50_000);
    const b = code(50_000, 100_000);
    const { lazy, cacheDir } = await setup({ "a.js": a, "b.js": b }, { maxWaitMs: 60_000 });
    const va = await lazy.variant("a.js", "br");
    const vb = await lazy.variant("b.js", "gzip");
    await assertDecodes(va, a);
    await lazy.purge("a.js");
    await assert.rejects(stat(va?.path ?? ""), { code: "ENOENT" });
    await assertDecodes(await lazy.variant("b.js", "gzip"), b);
    assert.equal(lazy.metrics.compressions, 2);
    await assertDecodes(await lazy.variant("a.js", "br"), a);
    assert.equal(lazy.metrics.compressions, 3);

    await lazy.purge();
    // Emptied of entries; the folder keeps its CACHEDIR.TAG, so it stays ours.
    assert.deepEqual(await readdir(cacheDir), ["CACHEDIR.TAG"]);
    await assert.rejects(stat(vb?.path ?? ""), { code: "ENOENT" });
    await assertDecodes(await lazy.variant("b.js", "gzip"), b);
    assert.equal(lazy.metrics.compressions, 4);
    await lazy.close();
  });

  it("reaps in-memory state of keys not requested lately, and close() stops everything", async () => {
    const source = code(50_000);
    const { lazy } = await setup({ "a.js": source }, { maxWaitMs: 60_000, reapIntervalMs: 200 });
    const first = await lazy.variant("a.js", "br");
    // Counted at once: the reaper forgets keys idle for one interval, and decoding on a loaded
    // machine once took longer than the 40 ms interval this test used to run with.
    assert.equal(lazy.metrics.tracked, 1);
    await assertDecodes(first, source);
    await until(() => lazy.metrics.tracked === 0, 5000);
    // Forgotten in memory, still on disk: verified and reused, not recompressed.
    await assertDecodes(await lazy.variant("a.js", "br"), source);
    assert.equal(lazy.metrics.compressions, 1);
    assert.equal(lazy.metrics.adopted, 1);

    await lazy.close();
    assert.equal(await lazy.variant("a.js", "br"), undefined);
  });

  it("refuses a source swapped for a symlink out of the root after its variant was made", async () => {
    const source = code(50_000);
    const { lazy, base, root } = await setup({ "a.js": source }, { maxWaitMs: 60_000 });
    await assertDecodes(await lazy.variant("a.js", "br"), source);
    await writeFile(join(base, "outside.js"), source);
    await rename(join(root, "a.js"), join(root, "moved.js"));
    await symlink(join(base, "outside.js"), join(root, "a.js"));
    // Same content, so the same key: only the containment check can refuse it.
    assert.equal(await lazy.variant("a.js", "br"), undefined);
    assert.equal(lazy.metrics.refused, 1);
    await lazy.close();
  });

  it("a purge during a compression wins: its result is deleted, and the next request compresses again", async () => {
    const source = code(300_000);
    const { lazy, cacheDir } = await setup({ "a.js": source }, SLOW);
    const during = lazy.variant("a.js", "br");
    await until(() => lazy.metrics.inFlight === 1);
    await lazy.purge("a.js");
    assert.equal(await during, undefined);
    await lazy.idle();
    const digest = settingsDigest({ encoding: "br", level: 11, minSize: 1024, minRatio: 0.95 });
    await assert.rejects(stat(cacheEntryPath(cacheDir, digest, hashBytes(source))), { code: "ENOENT" });
    assert.equal(lazy.metrics.tracked, 0);
    await assertDecodes(await lazy.variant("a.js", "br"), source);
    assert.equal(lazy.metrics.compressions, 2);
    await lazy.close();
  });
});
