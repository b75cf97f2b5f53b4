// Express 5 with the `compression` middleware in front: every HTTP.md rule still holds, and our
// coded responses pass through untouched (no double compression), mounted or not.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import compression from "compression";
import express from "express";
import { type StaticHandler, serveStatic } from "../../src/serve/node.js";
import { assertServes, decode, get, type Listening, listen, makeSite, type Site } from "../support/http.js";
import { describeHttpRules } from "./conformance.js";

const handlers: StaticHandler[] = [];
after(() => {
  for (const h of handlers) h.close();
});

function appFor(site: Site) {
  const handler = serveStatic(site.dir);
  handlers.push(handler);
  const app = express();
  app.use(compression({ threshold: 0 }));
  app.use(handler);
  app.use("/static", handler);
  app.get("/api/hello", (_req, res) => {
    res.json({ hello: "world" });
  });
  app.post("/index.html", (_req, res) => {
    res.status(201).send("posted");
  });
  return app;
}

describeHttpRules("Express + compression", (site) => listen(appFor(site)), { badPath: 404, compressionInFront: true });

describe("Express + compression", () => {
  let site: Site;
  let server: Listening;
  before(async () => {
    site = await makeSite();
    server = await listen(appFor(site));
  });
  after(async () => {
    await server.close();
    await site.remove();
  });

  test("no double compression: each variant passes through with one Content-Encoding and its length", async () => {
    for (const encoding of ["gzip", "br", "zstd"]) {
      for (const key of ["index.html", "assets/app.3f9a1c2b.js", "data/products.json"]) {
        const answer = await get(server.port, `/${key}`, { "accept-encoding": encoding });
        assert.equal(answer.headers["content-encoding"], encoding);
        assert.equal(
          answer.headers["content-length"],
          String(site.manifest.files[key]?.variants[encoding as "br"]?.size),
        );
        assert.equal(answer.headers.vary, "Accept-Encoding");
        await assertServes(site, answer, key, encoding);
      }
    }
  });

  test("compression is really active: a text without variants gets compressed on the fly", async () => {
    const answer = await get(server.port, "/robots.txt", { "accept-encoding": "gzip" });
    assert.equal(answer.headers["content-encoding"], "gzip");
    assert.ok((await decode(answer.body, "gzip")).equals(await site.original("robots.txt")));
  });

  test("mounted under /static: served, and /dir redirects under the mount", async () => {
    await assertServes(
      site,
      await get(server.port, "/static/index.html", { "accept-encoding": "br" }),
      "index.html",
      "br",
    );
    const redirect = await get(server.port, "/static/docs?x=1");
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, "/static/docs/?x=1");
    assert.equal(redirect.headers["content-encoding"], undefined);
  });

  test("what is not ours falls through to later routes", async () => {
    const api = await get(server.port, "/api/hello");
    assert.equal(api.status, 200);
    assert.deepEqual(JSON.parse(api.body.toString()), { hello: "world" });
    assert.equal((await get(server.port, "/index.html", {}, "POST")).status, 201);
    assert.equal((await get(server.port, "/%2e%2e/index.html")).status, 404);
  });
});
