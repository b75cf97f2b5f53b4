// The conformance suite: every rule of shared/HTTP.md as real requests against a real listening server,
// run by each adapter's test file (node, Express, fetch, lazy) and by the nginx/Caddy suites.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Answer, assertServes, decode, get, type Listening, makeSite, type Site } from "../support/http.js";

const HEADERS_THAT_DIFFER = new Set(["date", "connection", "keep-alive"]);
/** The ETag the resolver gives the bytes of `hash`, sent with Content-Encoding `encoding`. */
export const etagOf = (hash: string, encoding?: string) => `"${hash.slice(7, 34)}${encoding ? `-${encoding}` : ""}"`;
const SUFFIX: Record<string, string> = { gzip: ".gz", br: ".br", zstd: ".zst" };
const JS_KEY = "assets/app.3f9a1c2b.js";
const JS_PATH = `/${JS_KEY}`;

/**
 * Every rule of shared/HTTP.md as real requests against a real listening server built by `start`.
 * `badPath`: what a malformed path gets; 400 standalone, 404 where it falls through to `next()`.
 */
export function describeHttpRules(
  label: string,
  start: (site: Site) => Promise<Listening>,
  mode: { badPath: 400 | 404; normalizesUrl?: boolean; compressionInFront?: boolean },
): void {
  describe(`HTTP rules: ${label}`, () => {
    let site: Site;
    let server: Listening;
    const fetchRaw = (path: string, headers: Record<string, string | string[]> = {}, method = "GET") =>
      get(server.port, path, headers, method);
    const entry = (key: string) => {
      const found = site.manifest.files[key];
      assert.ok(found, `fixture lacks ${key}`);
      return found;
    };

    before(async () => {
      site = await makeSite();
      server = await start(site);
    });
    after(async () => {
      await server.close();
      await site.remove();
    });

    describe("negotiation", () => {
      test("every variant of every file decodes to the original, with its headers", async () => {
        for (const [key, e] of Object.entries(site.manifest.files)) {
          if (key.startsWith(".")) continue;
          for (const encoding of [undefined, ...Object.keys(e.variants)]) {
            const answer = await fetchRaw(`/${encodeURI(key)}`, { "accept-encoding": encoding ?? "identity" });
            await assertServes(site, answer, key, encoding);
            assert.equal(answer.headers["content-type"], e.type, key);
            const variant = encoding ? e.variants[encoding as "br"] : undefined;
            assert.equal(answer.headers.etag, etagOf(variant ? variant.hash : e.hash, encoding), `ETag of ${key}`);
            assert.equal(answer.headers["last-modified"], new Date(e.mtimeMs).toUTCString());
            const hasVariants = Object.keys(e.variants).length > 0;
            // `compression` adds its own Vary to any compressible type; ours is only where variants exist.
            const vary = /accept-encoding/i.test(String(answer.headers.vary ?? ""));
            if (hasVariants || !mode.compressionInFront) assert.equal(vary, hasVariants, `Vary of ${key}`);
          }
        }
      });

      const CASES: [string, Record<string, string | string[]>, string | undefined][] = [
        ["no Accept-Encoding: identity", {}, undefined],
        ["an empty one: identity", { "accept-encoding": "" }, undefined],
        ["x-gzip means gzip, answered as gzip", { "accept-encoding": "x-gzip" }, "gzip"],
        ["case-insensitive", { "accept-encoding": "GZip" }, "gzip"],
        ["highest q wins", { "accept-encoding": "br;q=0.5, gzip;q=0.8, zstd;q=0.1" }, "gzip"],
        ["ties break by server order br > zstd > gzip", { "accept-encoding": "gzip, zstd, br" }, "br"],
        ["* gives its q to codings not named", { "accept-encoding": "gzip;q=0.5, *" }, "br"],
        ["a malformed q ignores the member, never a 500", { "accept-encoding": "br;q=1.5, gzip;q=0.1" }, "gzip"],
        ["q with 4 decimals is malformed", { "accept-encoding": "br;q=0.1234, zstd;q=0.001" }, "zstd"],
        ["several lines are one list", { "accept-encoding": ["gzip;q=0.1", "zstd"] }, "zstd"],
        ["identity;q=0 with an acceptable variant", { "accept-encoding": "identity;q=0, gzip" }, "gzip"],
        ["q=0 refuses a coding", { "accept-encoding": "br;q=0, zstd;q=0, gzip;q=0" }, undefined],
        ["Content-Encoding is never identity", { "accept-encoding": "identity" }, undefined],
      ];
      for (const [name, headers, encoding] of CASES) {
        test(name, async () => {
          const answer = await fetchRaw(JS_PATH, headers);
          await assertServes(site, answer, JS_KEY, encoding);
          assert.match(String(answer.headers.vary), /Accept-Encoding/i);
        });
      }

      for (const field of ["identity;q=0", "*;q=0", "deflate, identity;q=0", "br;q=0, *;q=0"]) {
        test(`406 with Vary when nothing is acceptable: ${field}`, async () => {
          const answer = await fetchRaw(JS_PATH, { "accept-encoding": field });
          assert.equal(answer.status, 406);
          assert.match(String(answer.headers.vary), /Accept-Encoding/i);
          // `compression` may deflate our short text body, as the client allowed; we never send a variant.
          if (!mode.compressionInFront) assert.equal(answer.headers["content-encoding"], undefined);
        });
      }

      test("only variants that exist for that file: a png has none, so identity without Vary", async () => {
        const answer = await fetchRaw("/images/node-js.png", { "accept-encoding": "br, gzip, zstd" });
        await assertServes(site, answer, "images/node-js.png");
        assert.equal(answer.headers["content-type"], "image/png");
        assert.equal(answer.headers.vary, undefined);
      });
    });

    describe("response headers", () => {
      test("a real .gz file is served as itself: its own type, no Content-Encoding", async () => {
        const answer = await fetchRaw("/downloads/notes.tar.gz", { "accept-encoding": "gzip, br" });
        await assertServes(site, answer, "downloads/notes.tar.gz");
        assert.equal(answer.headers["content-type"], "application/gzip");
      });

      test("one strong ETag per variant", async () => {
        const tags = new Set<string>();
        for (const encoding of ["identity", "gzip", "br", "zstd"]) {
          const { headers } = await fetchRaw(JS_PATH, { "accept-encoding": encoding });
          assert.match(String(headers.etag), /^"[^"]+"$/, "strong");
          tags.add(String(headers.etag));
        }
        assert.equal(tags.size, 4);
      });

      test("Cache-Control: hashed names immutable, HTML no-cache, a dictionary lives a day", async () => {
        const cc = async (path: string) => (await fetchRaw(path, { "accept-encoding": "br" })).headers["cache-control"];
        assert.equal(await cc(JS_PATH), "public, max-age=31536000, immutable");
        assert.equal(await cc("/"), "no-cache");
        assert.equal(await cc("/docs/"), "no-cache");
        assert.equal(await cc("/assets/style.css"), "public, max-age=0, stale-while-revalidate=86400");
      });

      test("an empty file is a 200 with Content-Length 0", async () => {
        const answer = await fetchRaw("/empty.txt");
        assert.equal(answer.status, 200);
        assert.equal(answer.headers["content-length"], "0");
        assert.equal(answer.body.length, 0);
      });
    });

    describe("conditional requests", () => {
      const br = { "accept-encoding": "br" };
      const etag = () => etagOf(entry(JS_KEY).variants.br?.hash ?? "", "br");

      for (const [name, value] of [
        ["the ETag", () => etag()],
        ["a list holding it", () => `"nope", ${etag()} , "other"`],
        ["its weak form (weak comparison)", () => `W/${etag()}`],
        ["*", () => "*"],
      ] as const) {
        test(`If-None-Match with ${name}: 304 with ETag, Vary, Cache-Control and no body`, async () => {
          const answer = await fetchRaw(JS_PATH, { ...br, "if-none-match": value() });
          assert.equal(answer.status, 304);
          assert.equal(answer.headers.etag, etag());
          assert.match(String(answer.headers.vary), /Accept-Encoding/i);
          assert.equal(answer.headers["cache-control"], "public, max-age=31536000, immutable");
          assert.equal(answer.body.length, 0);
        });
      }

      test("If-None-Match of another variant's ETag: 200", async () => {
        const gzipTag = etagOf(entry(JS_KEY).variants.gzip?.hash ?? "", "gzip");
        await assertServes(site, await fetchRaw(JS_PATH, { ...br, "if-none-match": gzipTag }), JS_KEY, "br");
      });

      test("If-Modified-Since: 304 when not modified since, 200 when modified", async () => {
        const lastModified = new Date(entry(JS_KEY).mtimeMs).toUTCString();
        const answer = await fetchRaw(JS_PATH, { ...br, "if-modified-since": lastModified });
        assert.equal(answer.status, 304);
        assert.match(String(answer.headers.vary), /Accept-Encoding/i);
        const earlier = new Date(entry(JS_KEY).mtimeMs - 10_000).toUTCString();
        await assertServes(site, await fetchRaw(JS_PATH, { ...br, "if-modified-since": earlier }), JS_KEY, "br");
        await assertServes(site, await fetchRaw(JS_PATH, { ...br, "if-modified-since": "yesterday" }), JS_KEY, "br");
      });

      test("If-Modified-Since is ignored when If-None-Match is present", async () => {
        const lastModified = new Date(entry(JS_KEY).mtimeMs).toUTCString();
        const headers = { ...br, "if-none-match": '"other"', "if-modified-since": lastModified };
        await assertServes(site, await fetchRaw(JS_PATH, headers), JS_KEY, "br");
      });

      test("If-Match that fails: 412", async () => {
        assert.equal((await fetchRaw(JS_PATH, { ...br, "if-match": '"other"' })).status, 412);
        await assertServes(site, await fetchRaw(JS_PATH, { ...br, "if-match": etag() }), JS_KEY, "br");
      });

      test("HEAD returns exactly GET's headers and no body", async () => {
        for (const [path, encoding] of [
          [JS_PATH, "br"],
          [JS_PATH, "zstd"],
          [JS_PATH, "identity"],
          ["/", "gzip"],
          ["/images/node-js.png", "br"],
        ] as const) {
          const got = await fetchRaw(path, { "accept-encoding": encoding });
          const head = await fetchRaw(path, { "accept-encoding": encoding }, "HEAD");
          assert.equal(head.status, 200);
          assert.equal(head.body.length, 0);
          const strip = (h: Answer["headers"]) =>
            Object.fromEntries(Object.entries(h).filter(([k]) => !HEADERS_THAT_DIFFER.has(k)));
          assert.deepEqual(strip(head.headers), strip(got.headers), `${path} ${encoding}`);
        }
        const notModified = await fetchRaw(JS_PATH, { ...br, "if-none-match": etag() }, "HEAD");
        assert.equal(notModified.status, 304);
        assert.match(String(notModified.headers.vary), /Accept-Encoding/i);
      });
    });

    describe("ranges count bytes of the selected representation", () => {
      const variantBytes = (key: string, encoding: string) => readFile(join(site.dir, key + (SUFFIX[encoding] ?? "")));

      const RANGES: [string, (b: Buffer) => [number, number, Buffer]][] = [
        ["bytes=0-9", (b) => [0, 9, b.subarray(0, 10)]],
        ["bytes=-5", (b) => [b.length - 5, b.length - 1, b.subarray(-5)]],
        ["bytes=100-", (b) => [100, b.length - 1, b.subarray(100)]],
        ["bytes=10-99999999", (b) => [10, b.length - 1, b.subarray(10)]],
        ["BYTES=3-3", (b) => [3, 3, b.subarray(3, 4)]],
      ];
      for (const [range, slice] of RANGES) {
        for (const encoding of ["br", "gzip", "zstd", "identity"]) {
          test(`${range} of the ${encoding} variant: 206 with Content-Range over its own size`, async () => {
            const bytes = await variantBytes(JS_KEY, encoding);
            const [first, last, expected] = slice(bytes);
            const answer = await fetchRaw(JS_PATH, { "accept-encoding": encoding, range });
            assert.equal(answer.status, 206);
            assert.equal(answer.headers["content-range"], `bytes ${first}-${last}/${bytes.length}`);
            assert.equal(answer.headers["content-length"], String(expected.length));
            assert.equal(answer.headers["content-encoding"], encoding === "identity" ? undefined : encoding);
            assert.match(String(answer.headers.vary), /Accept-Encoding/i);
            assert.equal(
              answer.headers.etag,
              etagOf(
                entry(JS_KEY).variants[encoding as "br"]?.hash ?? entry(JS_KEY).hash,
                encoding === "identity" ? undefined : encoding,
              ),
            );
            assert.ok(answer.body.equals(expected));
          });
        }
      }

      test("an unsatisfiable range: 416 with Content-Range bytes */size and Vary", async () => {
        const size = entry(JS_KEY).variants.br?.size;
        for (const range of [`bytes=${size}-`, "bytes=99999999-", "bytes=-0"]) {
          const answer = await fetchRaw(JS_PATH, { "accept-encoding": "br", range });
          assert.equal(answer.status, 416, range);
          assert.equal(answer.headers["content-range"], `bytes */${size}`);
          assert.match(String(answer.headers.vary), /Accept-Encoding/i);
        }
      });

      test("an invalid or multiple range is ignored: the whole 200", async () => {
        for (const range of ["bytes=9-0", "items=0-9", "bytes=0-1,5-9", "bytes=abc", "bytes=-"]) {
          await assertServes(site, await fetchRaw(JS_PATH, { "accept-encoding": "br", range }), JS_KEY, "br");
        }
      });

      test("If-Range uses strong comparison: only the exact ETag keeps the range", async () => {
        const tag = etagOf(entry(JS_KEY).variants.br?.hash ?? "", "br");
        const ranged = (ifRange: string) =>
          fetchRaw(JS_PATH, { "accept-encoding": "br", range: "bytes=0-9", "if-range": ifRange });
        assert.equal((await ranged(tag)).status, 206);
        await assertServes(site, await ranged(`W/${tag}`), JS_KEY, "br");
        await assertServes(site, await ranged('"stale"'), JS_KEY, "br");
        await assertServes(site, await ranged(new Date(entry(JS_KEY).mtimeMs).toUTCString()), JS_KEY, "br");
      });

      test("HEAD ignores Range (defined for GET only)", async () => {
        const answer = await fetchRaw(JS_PATH, { "accept-encoding": "br", range: "bytes=0-9" }, "HEAD");
        assert.equal(answer.status, 200);
        assert.equal(answer.headers["content-length"], String(entry(JS_KEY).variants.br?.size));
      });

      test("a large file streamed from disk: full body and a middle range", async () => {
        const key = "big/large.txt";
        for (const encoding of ["identity", ...Object.keys(entry(key).variants)]) {
          await assertServes(
            site,
            await fetchRaw(`/${key}`, { "accept-encoding": encoding }),
            key,
            encoding === "identity" ? undefined : encoding,
          );
        }
        const bytes = await variantBytes(key, "identity");
        const answer = await fetchRaw(`/${key}`, { range: "bytes=100000-200000" });
        assert.equal(answer.status, 206);
        assert.ok(answer.body.equals(bytes.subarray(100_000, 200_001)));
      });
    });

    describe("paths", () => {
      test("/dir/ serves dir/index.html; / serves index.html", async () => {
        await assertServes(site, await fetchRaw("/docs/", { "accept-encoding": "br" }), "docs/index.html", "br");
        await assertServes(site, await fetchRaw("/", { "accept-encoding": "gzip" }), "index.html", "gzip");
      });

      test("/dir redirects to /dir/ with the query kept", async () => {
        const answer = await fetchRaw("/docs?lang=fr");
        assert.equal(answer.status, 301);
        assert.equal(answer.headers.location, "/docs/?lang=fr");
      });

      test("percent-encoded UTF-8 names", async () => {
        const answer = await fetchRaw("/docs/menu%20caf%C3%A9.txt", { "accept-encoding": "zstd" });
        await assertServes(site, answer, "docs/menu café.txt", "zstd");
      });

      test("the manifest, dotfiles and variant files are not served; .well-known is", async () => {
        for (const path of [
          "/.precompressor.json",
          "/.hidden.txt",
          "/assets/app.3f9a1c2b.js.br",
          "/index.html.gz",
          "/nope",
        ]) {
          assert.equal((await fetchRaw(path)).status, 404, path);
        }
        assert.equal((await fetchRaw("/.well-known/security.txt")).status, 200);
      });

      test("a file on disk but not in the manifest is not served", async () => {
        await writeFile(join(site.dir, "unlisted.txt"), "not in the manifest");
        assert.equal((await fetchRaw("/unlisted.txt")).status, 404);
      });

      for (const [probe, kind] of TRAVERSAL_PROBES) {
        test(`traversal probe ${JSON.stringify(probe.length > 50 ? `${probe.slice(0, 40)}…` : probe)}: ${kind}`, async () => {
          const answer = await fetchRaw(probe, { "accept-encoding": "gzip" });
          if (mode.normalizesUrl && answer.status === 200) {
            // `new Request()` resolves `..` and `\\` as a browser would: it may land on a file, always inside the root.
            const body = await decode(answer.body, answer.headers["content-encoding"]);
            const inside = await Promise.all(["index.html", "docs/index.html"].map(site.original));
            assert.ok(
              inside.some((file) => file.equals(body)),
              probe,
            );
            return;
          }
          assert.equal(answer.status, kind === "bad" ? mode.badPath : 404, probe);
        });
      }
    });
  });
}

/** Paths a static server must refuse: "bad" ones are 400 (404 where they fall through), "missing" ones 404. */
export const TRAVERSAL_PROBES: [string, "bad" | "missing"][] = [
  ["/../index.html", "bad"],
  ["/docs/../index.html", "bad"],
  ["/docs/..", "bad"],
  ["/./index.html", "bad"],
  ["/%2e%2e/index.html", "bad"],
  ["/%2E%2e/index.html", "bad"],
  ["/%2E%2e/", "bad"],
  ["/docs/%2e%2e/index.html", "bad"],
  ["/docs/..%2findex.html", "bad"],
  ["/docs%2findex.html", "bad"],
  ["/docs%5cindex.html", "bad"],
  ["/docs\\index.html", "bad"],
  ["/..\\..\\etc\\passwd", "bad"],
  ["/index.html%00", "bad"],
  ["/index.html%00.png", "bad"],
  ["/%zz", "bad"],
  ["/%", "bad"],
  ["/%c0%ae%c0%ae/index.html", "bad"],
  ["/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "bad"],
  [`/${"%2e%2e/".repeat(500)}etc/passwd`, "bad"],
  ["/%252e%252e/index.html", "missing"],
  ["/..;/index.html", "missing"],
  ["//etc/passwd", "missing"],
  ["/etc/passwd", "missing"],
  [`/a/${"x".repeat(8000)}`, "missing"],
];
