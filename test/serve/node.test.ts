// The node:http adapter: every HTTP.md rule over real requests, plus what only it does (methods,
// next(), Vary merging, manifest reloads that are atomic, errors).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { brotliCompressSync, brotliDecompressSync } from "node:zlib";
import { precompress } from "../../src/build/precompress.js";
import { PrecompressorError } from "../../src/errors.js";
import type { Manifest } from "../../src/manifest-format.js";
import { serveStatic } from "../../src/serve/node.js";
import { startServer } from "../../src/serve/preview.js";
import {
  assertServes,
  eventually,
  get,
  type Listening,
  listen,
  MANIFEST,
  makeSite,
  type Site,
  sha256,
} from "../support/http.js";
import { describeHttpRules, etagOf } from "./conformance.js";

const handlers: { close(): void }[] = [];
after(() => {
  for (const h of handlers) h.close();
});

function standalone(options: Parameters<typeof serveStatic>[1] = {}) {
  return (site: Site) => {
    const handler = serveStatic(site.dir, options);
    handlers.push(handler);
    return listen((req, res) => handler(req, res));
  };
}

describeHttpRules("node:http, hot variants cached", standalone(), { badPath: 400 });
describeHttpRules("node:http, every body streamed from disk", standalone({ cacheBytes: 0 }), { badPath: 400 });
describeHttpRules(
  "startServer (precompressor serve)",
  async (site) => {
    const server = await startServer({ dir: site.dir, port: 0 });
    return {
      server: undefined as never,
      port: Number(new URL(server.url).port),
      origin: server.url,
      close: server.close,
    };
  },
  { badPath: 400 },
);

describe("startServer", () => {
  test("prints a URL, answers 405 with Allow, and closes", async () => {
    const site = await makeSite();
    const server = await startServer({ dir: site.dir, port: 0, host: "127.0.0.1" });
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const port = Number(new URL(server.url).port);
    const answer = await get(port, "/", {}, "POST");
    assert.equal(answer.status, 405);
    assert.equal(answer.headers.allow, "GET, HEAD");
    assert.equal((await get(port, "/nope")).status, 404);
    await server.close();
    await assert.rejects(get(port, "/"));
    await site.remove();
  });

  test("a taken port is E_BAD_OPTION; a folder without manifest is E_MANIFEST", async () => {
    const site = await makeSite();
    const first = await startServer({ dir: site.dir, port: 0 });
    const port = Number(new URL(first.url).port);
    await assert.rejects(
      startServer({ dir: site.dir, port }),
      (e) => e instanceof PrecompressorError && e.code === "E_BAD_OPTION",
    );
    await first.close();
    const empty = await mkdtemp(join(tmpdir(), "precompressor-empty-"));
    await assert.rejects(
      startServer({ dir: empty, port: 0 }),
      (e) => e instanceof PrecompressorError && e.code === "E_MANIFEST",
    );
    await rm(empty, { recursive: true });
    await site.remove();
  });
});

describe("node adapter", () => {
  let site: Site;
  before(async () => {
    site = await makeSite();
  });
  after(() => site.remove());

  async function serve(options: Parameters<typeof serveStatic>[1] = {}, wrap = false) {
    const handler = serveStatic(site.dir, options);
    handlers.push(handler);
    const calls: string[] = [];
    const server = await listen((req, res) => {
      if (!wrap) return handler(req, res);
      res.setHeader("Vary", "Origin");
      handler(req, res, (error) => {
        calls.push(error ? `error ${String(error)}` : `next ${req.method} ${req.url}`);
        res.writeHead(error ? 500 : 418).end("from next");
      });
    });
    return { handler, server, calls };
  }

  test("without next: 405 with Allow: GET, HEAD for other methods, 404 for what is not ours", async () => {
    const { server } = await serve();
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      const answer = await get(server.port, "/index.html", {}, method);
      assert.equal(answer.status, 405, method);
      assert.equal(answer.headers.allow, "GET, HEAD");
    }
    assert.equal((await get(server.port, "/missing.html")).status, 404);
    await server.close();
  });

  test("with next: other methods, unknown paths and malformed paths go to next()", async () => {
    const { server, calls } = await serve({}, true);
    assert.equal((await get(server.port, "/index.html", {}, "POST")).status, 418);
    assert.equal((await get(server.port, "/missing.html")).status, 418);
    assert.equal((await get(server.port, "/%2e%2e/index.html")).status, 418);
    assert.deepEqual(calls, ["next POST /index.html", "next GET /missing.html", "next GET /%2e%2e/index.html"]);
    await server.close();
  });

  test("Vary is merged with one set earlier, on every response of a path with variants", async () => {
    const { server } = await serve({}, true);
    const js = "/assets/app.3f9a1c2b.js";
    const etag = (await get(server.port, js, { "accept-encoding": "br" })).headers.etag as string;
    for (const headers of <Record<string, string>[]>[
      { "accept-encoding": "br" },
      {},
      { "accept-encoding": "identity;q=0" },
      { "accept-encoding": "br", "if-none-match": etag },
      { "accept-encoding": "br", range: "bytes=0-1" },
      { "accept-encoding": "br", range: "bytes=99999999-" },
    ]) {
      const answer = await get(server.port, js, headers);
      assert.equal(answer.headers.vary, "Origin, Accept-Encoding", JSON.stringify(headers));
    }
    assert.equal((await get(server.port, "/images/node-js.png")).headers.vary, "Origin");
    await server.close();
  });

  test("a symlink on disk that the manifest does not list is never followed", async () => {
    await symlink("/etc/passwd", join(site.dir, "passwd"));
    const { server } = await serve();
    assert.equal((await get(server.port, "/passwd")).status, 404);
    await server.close();
  });

  test("HEAD and 304 are answered from the manifest alone, without opening the file", async () => {
    const { server } = await serve();
    const file = join(site.dir, "robots.txt");
    const saved = await readFile(file);
    await rm(file);
    try {
      const head = await get(server.port, "/robots.txt", {}, "HEAD");
      assert.equal(head.status, 200);
      assert.equal(head.headers["content-length"], String(saved.length));
    } finally {
      await writeFile(file, saved);
    }
    await server.close();
  });

  test("an unreadable manifest is E_MANIFEST at startup", async () => {
    const empty = await mkdtemp(join(tmpdir(), "precompressor-empty-"));
    assert.throws(
      () => serveStatic(empty),
      (e) => e instanceof PrecompressorError && e.code === "E_MANIFEST",
    );
    await writeFile(join(empty, MANIFEST), "{ torn");
    assert.throws(
      () => serveStatic(empty),
      (e) => e instanceof PrecompressorError && e.code === "E_MANIFEST",
    );
    await writeFile(
      join(empty, MANIFEST),
      JSON.stringify({
        version: 1,
        generator: "x",
        settings: {},
        files: {
          "../etc/passwd": { hash: `sha256-${"A".repeat(43)}`, size: 1, mtimeMs: 0, type: "text/plain", variants: {} },
        },
      }),
    );
    // An entry that could leave the root is dropped with a warning; the rest of the site is served.
    const warned = new Promise<Error>((done) => process.once("warning", done));
    assert.doesNotThrow(() => serveStatic(empty));
    assert.match((await warned).message, /"\.\.\/etc\/passwd".*not a plain relative path/);
    await rm(empty, { recursive: true });
  });

  test("the manifest option points elsewhere", async () => {
    const elsewhere = join(await mkdtemp(join(tmpdir(), "precompressor-manifest-")), "site.json");
    await writeFile(elsewhere, await readFile(join(site.dir, MANIFEST)));
    const { server } = await serve({ manifest: elsewhere, watch: false });
    await assertServes(site, await get(server.port, "/index.html", { "accept-encoding": "br" }), "index.html", "br");
    await server.close();
  });

  test("Express-style absolute-form targets use their path", async () => {
    const { server } = await serve();
    const answer = await get(server.port, `http://127.0.0.1:${server.port}/index.html`, { "accept-encoding": "gzip" });
    await assertServes(site, answer, "index.html", "gzip");
    await server.close();
  });

  test("a client that goes away mid-stream does not hurt the server", async () => {
    const { server } = await serve({ cacheBytes: 0 });
    await new Promise<void>((done) => {
      const req = request({ host: "127.0.0.1", port: server.port, path: "/big/large.txt", agent: false }, (res) => {
        res.once("data", () => {
          req.destroy();
          done();
        });
      });
      req.end();
    });
    await assertServes(site, await get(server.port, "/big/large.txt"), "big/large.txt");
    await server.close();
  });

  test("many concurrent requests all get the right bytes", async () => {
    const { server } = await serve();
    const encodings = ["br", "gzip", "zstd", "identity"];
    await Promise.all(
      Array.from({ length: 80 }, async (_, i) => {
        const encoding = encodings[i % 4] ?? "br";
        const answer = await get(server.port, "/data/products.json", { "accept-encoding": encoding });
        await assertServes(site, answer, "data/products.json", encoding === "identity" ? undefined : encoding);
      }),
    );
    await server.close();
  });
});

describe("manifest reloads (a redeploy)", () => {
  let site: Site;
  let server: Listening;
  let handler: ReturnType<typeof serveStatic>;
  before(async () => {
    site = await makeSite();
    handler = serveStatic(site.dir);
    handlers.push(handler);
    server = await listen((req, res) => handler(req, res));
  });
  after(async () => {
    await server.close();
    await site.remove();
  });

  const manifestPath = () => join(site.dir, MANIFEST);
  const readManifest = async () => JSON.parse(await readFile(manifestPath(), "utf8")) as Manifest;
  async function writeManifestAtomically(manifest: Manifest) {
    await writeFile(`${manifestPath()}.tmp`, JSON.stringify(manifest));
    await rename(`${manifestPath()}.tmp`, manifestPath());
  }

  test("a rebuilt site is picked up: new bytes, new ETag", async () => {
    const before = await get(server.port, "/index.html", { "accept-encoding": "br" });
    await assertServes(site, before, "index.html", "br");
    await writeFile(join(site.dir, "index.html"), "<!doctype html><title>v2</title><p>redeployed</p>".repeat(40));
    await precompress({ dir: site.dir, cache: false });
    await eventually(async () => {
      const answer = await get(server.port, "/index.html", { "accept-encoding": "br" });
      return answer.headers.etag !== before.headers.etag;
    });
    await assertServes(site, await get(server.port, "/index.html", { "accept-encoding": "br" }), "index.html", "br");
  });

  test("new files before the new manifest: the new bytes under their own headers, never old ones", async () => {
    const key = "data/products.json";
    const v2 = Buffer.from(JSON.stringify({ v: 2, items: Array.from({ length: 500 }, (_, i) => ({ i })) }));
    const v2br = brotliCompressSync(v2);
    // Never requested yet, so not in memory: the adapter must read and verify it.
    await writeFile(join(site.dir, `${key}.br`), v2br);
    const midDeploy = await get(server.port, `/${key}`, { "accept-encoding": "br" });
    assert.equal(midDeploy.status, 200);
    assert.equal(midDeploy.headers.etag, etagOf(sha256(v2br), "br"));
    assert.equal(midDeploy.headers["content-length"], String(v2br.length));
    assert.equal(midDeploy.headers["cache-control"], "no-cache");
    assert.ok(brotliDecompressSync(midDeploy.body).equals(v2));
    // The manifest lands: now the new bytes are served, under the new ETag.
    const manifest = await readManifest();
    const entry = manifest.files[key];
    assert.ok(entry);
    await writeFile(join(site.dir, key), v2);
    entry.hash = sha256(v2);
    entry.size = v2.length;
    entry.variants = { br: { size: v2br.length, hash: sha256(v2br) } };
    await writeManifestAtomically(manifest);
    await eventually(async () => (await get(server.port, `/${key}`, { "accept-encoding": "br" })).status === 200);
    const answer = await get(server.port, `/${key}`, { "accept-encoding": "br" });
    assert.ok(brotliDecompressSync(answer.body).equals(v2));
    assert.equal(answer.headers["content-length"], String(v2br.length));
    assert.equal(answer.headers.etag, etagOf(sha256(v2br), "br"));
  });

  test("a new manifest before its files: the old bytes under their own headers until they arrive", async () => {
    const key = "images/diagram.svg";
    const v1 = await readFile(join(site.dir, key));
    const manifest = await readManifest();
    const entry = manifest.files[key];
    assert.ok(entry);
    const v2 = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg">${"<g/>".repeat(300)}</svg>`);
    entry.hash = sha256(v2);
    entry.size = v2.length;
    entry.variants = {};
    await writeManifestAtomically(manifest);
    await eventually(
      async () => (await get(server.port, `/${key}`, {}, "HEAD")).headers["content-length"] === String(v2.length),
    );
    const midDeploy = await get(server.port, `/${key}`);
    assert.equal(midDeploy.status, 200);
    assert.ok(midDeploy.body.equals(v1));
    assert.equal(midDeploy.headers.etag, etagOf(sha256(v1)));
    assert.equal(midDeploy.headers["content-length"], String(v1.length));
    await writeFile(join(site.dir, key), v2);
    const answer = await get(server.port, `/${key}`);
    assert.equal(answer.status, 200);
    assert.ok(answer.body.equals(v2));
    assert.equal(answer.headers.etag, etagOf(sha256(v2)));
  });

  test("a torn manifest is ignored: the old one keeps serving", async () => {
    const good = await readFile(manifestPath());
    await writeFile(manifestPath(), '{"version":1,"files":{"ind');
    await new Promise((done) => setTimeout(done, 200));
    assert.equal((await get(server.port, "/robots.txt")).status, 200);
    await writeManifestAtomically(JSON.parse(good.toString()) as Manifest);
  });

  test("close() stops watching", async () => {
    const own = serveStatic(site.dir);
    const ownServer = await listen((req, res) => own(req, res));
    const etag = (await get(ownServer.port, "/robots.txt", {}, "HEAD")).headers.etag;
    own.close();
    await writeFile(join(site.dir, "robots.txt"), "User-agent: *\nDisallow: /private\n");
    await precompress({ dir: site.dir, cache: false });
    await new Promise((done) => setTimeout(done, 300));
    assert.equal((await get(ownServer.port, "/robots.txt", {}, "HEAD")).headers.etag, etag);
    await ownServer.close();
  });
});
