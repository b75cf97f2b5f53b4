// One HTTP decision for built and lazy files, over real HTTP on every adapter (issue #14 cases 1, 7,
// 8): valid headers for any file name, lazy 406/412/304/HEAD/Range, strict HTTP-dates; plus an
// exception inside a request, and what REDbot flags (Cache-Control on redirects, Keep-Alive).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { Agent } from "node:http";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { precompress } from "../../src/index.js";
import { startServer } from "../../src/serve/preview.js";
import { ADAPTERS } from "../serve/adapters.js";
import { tempDir } from "../support/helpers.js";
import { decode, get, MANIFEST, makeSite } from "../support/http.js";

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});
const temp = async (prefix: string) => {
  const dir = await tempDir(prefix);
  dirs.push(dir);
  return dir;
};

const SCRIPT = Array.from({ length: 80 }, (_, i) => `export const value${i} = "日本語 ${i}";\n`).join("");
const NAMES: [string, string][] = [
  ["日本語.js", 'match="%E6%97%A5%E6%9C%AC%E8%AA%9E.js"'],
  ["🎉 party.css", 'match="%F0%9F%8E%89%20party.css"'],
  ["assets/日本語-DiwrgTda.js", 'match="%E6%97%A5%E6%9C%AC%E8%AA%9E-*.js"'],
];

/** A real build of a site with Unicode names (each well over the 1 KB compression floor). */
async function unicodeSite(): Promise<string> {
  const dir = await temp("unicode-");
  await mkdir(join(dir, "assets"));
  for (const [name] of NAMES) await writeFile(join(dir, name), name.endsWith(".css") ? `/* ${SCRIPT} */` : SCRIPT);
  await writeFile(join(dir, "index.html"), `<!doctype html><title>日本語</title>${"<p>hello</p>".repeat(200)}`);
  await precompress({ dir, cache: false });
  return dir;
}

/** A lazy-mode site: a large unlisted JSON, so a compression takes longer than `maxWaitMs: 1`. */
async function lazySite() {
  const s = await makeSite();
  dirs.push(s.dir);
  const cacheDir = await temp("lazy-cache-");
  const rows = Array.from({ length: 60_000 }, (_, i) => `{"row":${i},"id":"${randomBytes(4).toString("hex")}"}`);
  const upload = Buffer.from(`[${rows.join(",\n")}]`);
  await mkdir(join(s.dir, "uploads"));
  await writeFile(join(s.dir, "uploads/big.json"), upload);
  return { dir: s.dir, cacheDir, upload };
}

const FUTURE = "Fri, 01 Jan 2100 00:00:00 GMT";
const PAST = "Sat, 01 Jan 2000 00:00:00 GMT";

for (const [name, start] of ADAPTERS) {
  describe(`${name}: case 1, headers are valid for any file name`, () => {
    test("CJK and emoji names: every request 200, Use-As-Dictionary percent-encoded, the server goes on", async () => {
      const dir = await unicodeSite();
      const server = await start(dir);
      for (const [file, match] of NAMES) {
        const path = `/${file.split("/").map(encodeURIComponent).join("/")}`;
        for (let round = 0; round < 2; round++) {
          const a = await get(server.port, path, { "accept-encoding": "br" });
          assert.equal(a.status, 200, `${file} round ${round}`);
          assert.equal(a.headers["content-encoding"], "br");
          assert.equal(a.headers["use-as-dictionary"], match);
          assert.ok((await decode(a.body, "br")).equals(await readFile(join(dir, file))));
        }
      }
      assert.equal((await get(server.port, "/", { "accept-encoding": "gzip" })).status, 200);
    });

    test("a manifest type with CR/LF: one warning, the entry is not served, the rest is", async () => {
      const s = await makeSite();
      dirs.push(s.dir);
      const manifest = JSON.parse(await readFile(join(s.dir, MANIFEST), "utf8"));
      manifest.files["robots.txt"].type = "text/plain\r\nX-Injected: 1";
      await writeFile(join(s.dir, MANIFEST), JSON.stringify(manifest));
      const warnings: string[] = [];
      const server = await start(s.dir, { onWarning: (message) => warnings.push(message) });
      for (let round = 0; round < 2; round++) {
        const a = await get(server.port, "/robots.txt", { "accept-encoding": "br" });
        assert.equal(a.status, 404);
        assert.equal(a.headers["x-injected"], undefined);
      }
      assert.equal(warnings.length, 1);
      assert.equal((await get(server.port, "/index.html", { "accept-encoding": "br" })).status, 200);
    });
  });

  describe(`${name}: an exception inside a request`, () => {
    test("never stops the server and never sends a Content-Encoding the body lacks", async () => {
      const s = await makeSite();
      dirs.push(s.dir);
      const server = await start(s.dir, {
        cacheControl: (path) => {
          if (path === "robots.txt") throw new Error("injected");
          return "no-cache";
        },
      });
      const warned = new Promise((done) => process.once("warning", done));
      for (let round = 0; round < 3; round++) {
        const a = await get(server.port, "/robots.txt", { "accept-encoding": "br" });
        assert.equal(a.status, 500);
        assert.equal(a.headers["content-encoding"], undefined);
        assert.equal(a.headers.etag, undefined);
      }
      if (name !== "Express") await warned; // Express's own error handler reports it
      const page = await get(server.port, "/index.html", { "accept-encoding": "br" });
      assert.equal(page.status, 200);
      assert.ok((await decode(page.body, "br")).equals(await s.original("index.html")));
    });
  });

  describe(`${name}: case 7, lazy responses go through the same decision as built ones`, () => {
    test("406 while pending, then 412, 304, HEAD and Range on the lazily built variant", async () => {
      const { dir, cacheDir, upload } = await lazySite();
      // Pending: a compression takes far longer than 1 ms.
      const pending = await start(dir, { lazy: { cacheDir, maxWaitMs: 1 } });
      const path = "/uploads/big.json";
      for (const refuse of ["br, identity;q=0", "gzip, *;q=0"]) {
        const a = await get(pending.port, path, { "accept-encoding": refuse });
        assert.equal(a.status, 406, refuse);
        assert.equal(a.headers.vary, "Accept-Encoding");
      }
      await pending.close();
      // Built: another server on the same cache waits for the variant.
      const server = await start(dir, { lazy: { cacheDir, maxWaitMs: 20_000 } });
      const full = await get(server.port, path, { "accept-encoding": "br" });
      assert.equal(full.headers["content-encoding"], "br");
      assert.ok((await decode(full.body, "br")).equals(upload));
      const etag = String(full.headers.etag);
      const br = { "accept-encoding": "br" };
      assert.equal((await get(server.port, path, { ...br, "if-match": '"other"' })).status, 412);
      assert.equal((await get(server.port, path, { ...br, "if-match": etag })).status, 200);
      assert.equal((await get(server.port, path, { ...br, "if-unmodified-since": PAST })).status, 412);
      assert.equal((await get(server.port, path, { ...br, "if-modified-since": FUTURE })).status, 304);
      assert.equal((await get(server.port, path, { ...br, "if-none-match": etag })).status, 304);
      const head = await get(server.port, path, br, "HEAD");
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      for (const header of ["content-length", "content-encoding", "etag", "last-modified", "vary", "cache-control"])
        assert.equal(head.headers[header], full.headers[header], header);
      const range = await get(server.port, path, { ...br, range: "bytes=0-9" });
      assert.equal(range.status, 206);
      assert.equal(range.headers["content-range"], `bytes 0-9/${full.body.length}`);
      assert.ok(range.body.equals(full.body.subarray(0, 10)));
      const tail = await get(server.port, path, { ...br, range: `bytes=${full.body.length}-` });
      assert.equal(tail.status, 416);
    });
  });

  describe(`${name}: case 8, only valid HTTP-dates count`, () => {
    test("`1`, `2000`, `99999` are ignored; IMF-fixdate, RFC 850 and asctime are honoured", async () => {
      const s = await makeSite();
      dirs.push(s.dir);
      const { cacheDir } = await lazySite().then(async (l) => {
        await writeFile(join(s.dir, "upload.json"), `{"x":"${"y".repeat(4000)}"}`);
        return l;
      });
      const server = await start(s.dir, { lazy: { cacheDir, maxWaitMs: 1000 } });
      for (const path of ["/robots.txt", "/upload.json"]) {
        const ask = (headers: Record<string, string>) => get(server.port, path, headers).then((a) => a.status);
        assert.equal(await ask({ "if-unmodified-since": "1" }), 200, path);
        assert.equal(await ask({ "if-unmodified-since": "2000" }), 200, path);
        assert.equal(await ask({ "if-modified-since": "99999" }), 200, path);
        assert.equal(await ask({ "if-modified-since": "Tuesday" }), 200, path);
        assert.equal(await ask({ "if-modified-since": "Fri, 31 Feb 2100 00:00:00 GMT" }), 200, path);
        assert.equal(await ask({ "if-unmodified-since": "Sunday, 06-Nov-94 08:49:37 GMT" }), 412, path);
        assert.equal(await ask({ "if-unmodified-since": "Sun Nov  6 08:49:37 1994" }), 412, path);
        assert.equal(await ask({ "if-unmodified-since": "Sun, 06 Nov 1994 08:49:37 GMT" }), 412, path);
        assert.equal(await ask({ "if-modified-since": FUTURE }), 304, path);
        assert.equal(await ask({ "if-modified-since": "Thu Jan  1 00:00:00 2099" }), 304, path);
      }
    });
  });

  describe(`${name}: what REDbot flags`, () => {
    test("a redirect carries Cache-Control", async () => {
      const s = await makeSite();
      dirs.push(s.dir);
      const server = await start(s.dir);
      const a = await get(server.port, "/docs");
      assert.equal(a.status, 301);
      assert.equal(a.headers.location, "/docs/");
      assert.ok(a.headers["cache-control"]);
    });
  });
}

describe("precompressor serve: no Keep-Alive header, the connection still persists", () => {
  test("two requests on one keep-alive socket, neither answer with `Keep-Alive`", async () => {
    const s = await makeSite();
    dirs.push(s.dir);
    const server = await startServer({ dir: s.dir, port: 0 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const port = Number(new URL(server.url).port);
      const sockets = new Set<unknown>();
      agent.on("free", (socket) => sockets.add(socket));
      for (const path of ["/index.html", "/robots.txt", "/docs", "/missing"]) {
        const a = await get(port, path, {}, "GET", agent);
        assert.equal(a.headers["keep-alive"], undefined, path);
        assert.notEqual(a.headers.connection, "close", path);
      }
      assert.equal(sockets.size, 1, "one connection served every request");
    } finally {
      agent.destroy();
      await server.close();
    }
  });
});
