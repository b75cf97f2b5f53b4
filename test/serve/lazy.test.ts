// Lazy mode through the adapters, over real HTTP: files added after the build are compressed once
// and served; probes outside the root, dotfiles and the manifest are 404.
import assert from "node:assert/strict";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { precompress } from "../../src/index.js";
import { markCacheDir } from "../../src/ownership.js";
import { createFetchHandler } from "../../src/serve/fetch.js";
import { serveStatic } from "../../src/serve/node.js";
import { startServer } from "../../src/serve/preview.js";
import { copySite, removeDir, runCli, tempDir } from "../support/helpers.js";
import { decode, get, listen } from "../support/http.js";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));

/** A built site, then a file added after the build (an upload). */
async function builtSiteWithUpload(): Promise<{ dir: string; cacheDir: string; upload: Buffer }> {
  const dir = await copySite();
  const cacheDir = await tempDir("lazy-cache-");
  dirs.push(dir, cacheDir);
  await precompress({ dir, cache: false, encodings: ["gzip"] });
  await mkdir(join(dir, "uploads"));
  const upload = Buffer.from(
    Array.from({ length: 2000 }, (_, i) => `{"row":${i},"label":"item ${i % 37}"}`).join(",\n"),
  );
  await writeFile(join(dir, "uploads", "report.json"), upload);
  return { dir, cacheDir, upload };
}

describe("lazy mode in the node adapter", () => {
  it("an unlisted file is compressed once for many concurrent requests, and every body decodes to it", async () => {
    const { dir, cacheDir, upload } = await builtSiteWithUpload();
    const handler = serveStatic(dir, { lazy: { cacheDir, maxWaitMs: 5000 } });
    const server = await listen((req, res) => handler(req, res));
    try {
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => get(server.port, "/uploads/report.json", { "accept-encoding": "br" })),
      );
      for (const a of answers) {
        assert.equal(a.status, 200);
        assert.equal(a.headers.vary, "Accept-Encoding");
        assert.equal(a.headers["content-type"], "application/json; charset=utf-8");
        assert.equal(Number(a.headers["content-length"]), a.body.length);
        assert.deepEqual(await decode(a.body, a.headers["content-encoding"]), upload);
      }
      assert.ok(
        answers.every((a) => a.headers["content-encoding"] === "br"),
        "waited for the one compression",
      );
      const again = await get(server.port, "/uploads/report.json", { "accept-encoding": "gzip;q=0.5, br" });
      assert.equal(again.headers["content-encoding"], "br");
      const etag = String(again.headers.etag);
      const notModified = await get(server.port, "/uploads/report.json", {
        "accept-encoding": "br",
        "if-none-match": etag,
      });
      assert.equal(notModified.status, 304);
      assert.equal(notModified.body.length, 0);
      const identity = await get(server.port, "/uploads/report.json", { "accept-encoding": "identity" });
      assert.equal(identity.headers["content-encoding"], undefined);
      assert.deepEqual(identity.body, upload);
      const refused = await get(server.port, "/uploads/report.json", {
        "accept-encoding": "identity;q=0, zstd;q=0, br;q=0, gzip;q=0",
      });
      assert.equal(refused.status, 406);
      // The manifest path is untouched: a listed file is still served from its build-time variant.
      const listed = await get(server.port, "/index.html", { "accept-encoding": "gzip" });
      assert.equal(listed.headers["content-encoding"], "gzip");
    } finally {
      await server.close();
      handler.close();
    }
  });

  it("purge drops the cached variant; the next request compresses again", async () => {
    const { dir, cacheDir, upload } = await builtSiteWithUpload();
    const handler = serveStatic(dir, { lazy: { cacheDir, maxWaitMs: 5000 } });
    const server = await listen((req, res) => handler(req, res));
    try {
      await get(server.port, "/uploads/report.json", { "accept-encoding": "gzip" });
      await handler.purge("/uploads/report.json");
      const after = await get(server.port, "/uploads/report.json", { "accept-encoding": "gzip" });
      assert.equal(after.headers["content-encoding"], "gzip");
      assert.deepEqual(await decode(after.body, "gzip"), upload);
    } finally {
      await server.close();
      handler.close();
    }
  });

  it("traversal, symlinks out of the root, dotfiles and the manifest are never served in lazy mode", async () => {
    const { dir, cacheDir } = await builtSiteWithUpload();
    const outside = await tempDir("outside-");
    dirs.push(outside);
    await writeFile(join(outside, "secret.js"), "export const secret = 'do not serve';\n".repeat(100));
    await symlink(join(outside, "secret.js"), join(dir, "uploads", "link.js"));
    await writeFile(join(dir, "uploads", ".hidden.js"), "export const hidden = 1;\n".repeat(100));
    const server = await startServer({ dir, port: 0, lazy: { cacheDir, maxWaitMs: 1000 } });
    const port = Number(new URL(server.url).port);
    try {
      for (const probe of [
        "/uploads/link.js",
        "/uploads/.hidden.js",
        "/.precompressor.json",
        "/uploads/%2e%2e/%2e%2e/etc/passwd",
        "/uploads/..%2f..%2fetc%2fpasswd",
        "/..%5c..%5cetc/passwd",
        `/${outside}/secret.js`,
        "/uploads//report.json",
        "/uploads/report.json%00.js",
      ]) {
        const r = await get(port, probe, { "accept-encoding": "br" });
        assert.ok(r.status === 404 || r.status === 400, `${probe}: ${r.status}`);
        assert.ok(!r.body.toString().includes("do not serve"), probe);
      }
    } finally {
      await server.close();
    }
  });

  it("maxWaitMs: a large new file is answered at once as identity while it compresses", async () => {
    const { dir, cacheDir } = await builtSiteWithUpload();
    const big = Buffer.from(
      Array.from({ length: 120_000 }, (_, i) => `export const v${i} = "${(i * 7919).toString(36)}";\n`).join(""),
    );
    await writeFile(join(dir, "uploads", "big.js"), big);
    const handler = serveStatic(dir, { lazy: { cacheDir, maxWaitMs: 50, levels: { br: 11 } } });
    const server = await listen((req, res) => handler(req, res));
    try {
      const started = performance.now();
      const first = await get(server.port, "/uploads/big.js", { "accept-encoding": "br" });
      const elapsed = performance.now() - started;
      assert.equal(first.headers["content-encoding"], undefined, "identity while br 11 runs");
      assert.deepEqual(first.body, big);
      assert.ok(elapsed < 1500, `answered in ${elapsed.toFixed(0)} ms`);
    } finally {
      await server.close();
      handler.close();
    }
  });
});

describe("lazy mode for a stale manifest entry", () => {
  it("a listed file whose size/mtime no longer match its entry is compressed on demand from its new content", async () => {
    const { dir, cacheDir } = await builtSiteWithUpload();
    const edited = Buffer.from(
      `${await readFile(join(dir, "assets/app.3f9a1c2b.js"), "utf8")}\n// edited after the build\n`,
    );
    await writeFile(join(dir, "assets/app.3f9a1c2b.js"), edited);
    // Older than the settle time, so no deploy seems to be in flight.
    await new Promise((done) => setTimeout(done, 300));
    const node = serveStatic(dir, { lazy: { cacheDir, maxWaitMs: 5000 } });
    const fetchHandler = createFetchHandler(dir, { lazy: { cacheDir, maxWaitMs: 5000 } });
    const server = await listen((req, res) => node(req, res));
    try {
      const r = await get(server.port, "/assets/app.3f9a1c2b.js", { "accept-encoding": "br" });
      assert.equal(r.status, 200);
      assert.equal(r.headers["content-encoding"], "br");
      assert.deepEqual(await decode(r.body, "br"), edited);
      const viaFetch = await fetchHandler(
        new Request("http://x/assets/app.3f9a1c2b.js", { headers: { "accept-encoding": "br" } }),
      );
      assert.equal(viaFetch?.headers.get("content-encoding"), "br");
      assert.deepEqual(await decode(Buffer.from(await (viaFetch as Response).arrayBuffer()), "br"), edited);
      // A listed file that still matches is served from its build-time variant, as always.
      const untouched = await get(server.port, "/index.html", { "accept-encoding": "gzip" });
      assert.deepEqual(await decode(untouched.body, "gzip"), await readFile(join(dir, "index.html")));
    } finally {
      await server.close();
      node.close();
      fetchHandler.close();
    }
  });
});

describe("lazy mode in the fetch handler and the CLI", () => {
  it("the fetch handler serves an unlisted file compressed", async () => {
    const { dir, cacheDir, upload } = await builtSiteWithUpload();
    const handler = createFetchHandler(dir, { lazy: { cacheDir, maxWaitMs: 5000 } });
    try {
      const response = await handler(
        new Request("http://x/uploads/report.json", { headers: { "accept-encoding": "zstd" } }),
      );
      assert.ok(response);
      assert.equal(response.headers.get("content-encoding"), "zstd");
      assert.deepEqual(await decode(Buffer.from(await response.arrayBuffer()), "zstd"), upload);
      assert.equal(await handler(new Request("http://x/uploads/missing.json")), null);
    } finally {
      handler.close();
    }
  });

  it("precompressor clean empties the lazy cache too (its entries; a foreign file stays)", async () => {
    const { dir, cacheDir } = await builtSiteWithUpload();
    await markCacheDir(cacheDir, "test");
    const entry = join(cacheDir, "AAAAAAAAAAAAAAAA", "bb", "b".repeat(43));
    await mkdir(join(entry, ".."), { recursive: true });
    await writeFile(entry, "cached");
    await writeFile(join(cacheDir, "entry"), "not ours");
    const r = await runCli(["clean", dir, "--lazy-cache-dir", cacheDir]);
    assert.equal(r.code, 0, r.stderr);
    await assert.rejects(readFile(entry));
    assert.equal(await readFile(join(cacheDir, "entry"), "utf8"), "not ours");
  });
});
