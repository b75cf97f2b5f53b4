// The fetch adapter, behind a real node:http server that turns requests into `Request`s the way
// Bun and Deno hand them to a fetch handler, plus direct calls where that is the real usage.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createFetchHandler, type FetchHandler } from "../../src/serve/fetch.js";
import { assertServes, decode, fetchBridge, get, listen, makeSite, type Site } from "../support/http.js";
import { describeHttpRules } from "./conformance.js";

const handlers: FetchHandler[] = [];
after(() => {
  for (const h of handlers) h.close();
});

function start(options: Parameters<typeof createFetchHandler>[1] = {}) {
  return (site: Site) => {
    const handler = createFetchHandler(site.dir, options);
    handlers.push(handler);
    return listen(fetchBridge(handler));
  };
}

describeHttpRules("fetch handler, hot variants cached", start(), { badPath: 404, normalizesUrl: true });
describeHttpRules("fetch handler, every body streamed from disk", start({ cacheBytes: 0 }), {
  badPath: 404,
  normalizesUrl: true,
});

describe("fetch handler, called directly", () => {
  let site: Site;
  let handler: FetchHandler;
  before(async () => {
    site = await makeSite();
    handler = createFetchHandler(site.dir);
    handlers.push(handler);
  });
  after(() => site.remove());

  const call = (path: string, init: RequestInit = {}) => handler(new Request(`http://localhost${path}`, init));

  test("a Response with the best variant, decoded to the original", async () => {
    const response = await call("/assets/style.css", { headers: { "accept-encoding": "gzip, br;q=0.9" } });
    assert.ok(response);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-encoding"), "gzip");
    assert.equal(response.headers.get("vary"), "Accept-Encoding");
    const body = Buffer.from(await response.arrayBuffer());
    assert.ok((await decode(body, "gzip")).equals(await site.original("assets/style.css")));
  });

  test("null for what is not ours: other methods, unlisted and malformed paths", async () => {
    assert.equal(await call("/index.html", { method: "POST" }), null);
    assert.equal(await call("/index.html", { method: "DELETE" }), null);
    assert.equal(await call("/nope.html"), null);
    for (const path of ["/docs%2findex.html", "/docs%5cindex.html", "/index.html%00", "/%zz", "/%c0%ae%c0%ae/"]) {
      assert.equal(await call(path), null, path);
    }
  });

  test("HEAD has the headers and no body", async () => {
    const response = await call("/", { method: "HEAD", headers: { "accept-encoding": "br" } });
    assert.ok(response);
    assert.equal(response.status, 200);
    assert.equal(response.body, null);
    assert.equal(response.headers.get("content-length"), String(site.manifest.files["index.html"]?.variants.br?.size));
  });

  test("a Hono-style middleware chain passes on what is not ours", async () => {
    const app = listen(
      fetchBridge(
        Object.assign(async (request: Request) => (await handler(request)) ?? new Response("api", { status: 201 }), {
          close() {},
          purge: async () => {},
        }),
      ),
    );
    const server = await app;
    assert.equal((await get(server.port, "/api/users")).status, 201);
    await assertServes(site, await get(server.port, "/robots.txt"), "robots.txt");
    await server.close();
  });
});
