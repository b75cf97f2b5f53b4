// The resolver alone: negotiation table (RFC 9110 §12.5.3), path lookup, traversal probes, headers.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { Encoding, Manifest, ManifestEntry } from "../../src/manifest-format.js";
import {
  createResolver,
  defaultCacheControl,
  type Resolution,
  type ResolverOptions,
  VARIANT_SUFFIX,
} from "../../src/serve/resolver.js";

const MTIME = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const hashOf = (seed: string) => `sha256-${Buffer.from(seed.padEnd(32, "#")).toString("base64url")}`;

function entry(type: string, encodings: Encoding[]): ManifestEntry {
  const variants: ManifestEntry["variants"] = {};
  for (const e of encodings) variants[e] = { size: 10 + e.length, hash: hashOf(`${type}-${e}`) };
  return { hash: hashOf(type), size: 100, mtimeMs: MTIME, type, variants };
}

const JS = "text/javascript; charset=utf-8";
const HTML = "text/html; charset=utf-8";
const manifest: Manifest = {
  version: 1,
  generator: "precompressor@test",
  settings: { gzip: "x", br: "y", zstd: "z" },
  files: {
    "all.js": entry(JS, ["gzip", "br", "zstd"]),
    "gz.js": entry(JS, ["gzip"]),
    "img.png": entry("image/png", []),
    "index.html": entry(HTML, ["gzip", "br", "zstd"]),
    "docs/index.html": entry(HTML, ["gzip", "br"]),
    "assets/app.3f9a1c2b.js": entry(JS, ["br"]),
    "assets/chunk-DfG8a2_x.js": entry(JS, ["br"]),
    "names/with space é.txt": entry("text/plain; charset=utf-8", ["gzip"]),
    "archive.tar.gz": entry("application/gzip", []),
    ".hidden": entry("text/plain; charset=utf-8", []),
    ".well-known/security.txt": entry("text/plain; charset=utf-8", []),
    ".precompressor.json": entry("application/json", []),
  },
};

const resolver = createResolver(manifest);
const encodingOf = (r: Resolution | null) =>
  r === null ? "null" : r.status === 200 ? (r.encoding ?? "identity") : String(r.status);

// [Accept-Encoding, expected for all.js (br, zstd, gzip available)]
const NEGOTIATION: [string | string[] | undefined, string][] = [
  [undefined, "identity"],
  ["", "identity"],
  ["   ", "identity"],
  ["gzip", "gzip"],
  ["br", "br"],
  ["zstd", "zstd"],
  ["gzip, deflate, br", "br"],
  ["gzip, deflate, br, zstd", "br"],
  ["br;q=0.5, gzip", "gzip"],
  ["GZIP", "gzip"],
  ["Br", "br"],
  ["ZStd", "zstd"],
  ["x-gzip", "gzip"],
  ["X-GZIP;q=1", "gzip"],
  ["*", "br"],
  ["*;q=0", "406"],
  ["identity;q=0", "406"],
  ["identity;q=0, gzip", "gzip"],
  ["*;q=0, identity", "identity"],
  ["*;q=0, gzip;q=0.1", "gzip"],
  ["br;q=0", "identity"],
  ["br;q=0, *", "zstd"],
  ["br;q=0, *;q=0.5, gzip;q=0.4", "zstd"],
  ["gzip;q=1.5", "identity"],
  ["gzip;q=abc", "identity"],
  ["gzip;q=0.1234", "identity"],
  ["gzip;q=0.123", "gzip"],
  ["gzip;q=1.000", "gzip"],
  ["gzip;q=1.0001", "identity"],
  ["gzip;q=-1", "identity"],
  ["gzip;q=.5", "identity"],
  ["gzip;q=1.5, br;q=0.1", "br"],
  ["gzip;q=0.5, br;q=0.500", "br"],
  ["gzip;Q=0.8, br;q=0.7", "gzip"],
  ["gzip ; q=0.8 , br ; q=0.7", "gzip"],
  ["gzip;q= 0.5, br;q=0.1", "br"],
  ["gzip;foo=bar, br;q=0.1", "br"],
  ["gzip;q=0.5;q=0.9, br;q=0.1", "br"],
  ["zstd;q=0.9, br;q=0.8, gzip;q=1", "gzip"],
  ["identity", "identity"],
  ["identity, gzip;q=0.5", "identity"],
  ["identity;q=0.5, gzip;q=0.5", "gzip"],
  ["deflate", "identity"],
  ["deflate, identity;q=0", "406"],
  ["compress, *;q=0", "406"],
  ["dcb, dcz", "identity"],
  ["*, dcz", "br"],
  ["dcz, dcb, *;q=0", "406"],
  [["gzip", "br"], "br"],
  [["identity;q=0", "gzip;q=0"], "406"],
  ["gzip, gzip;q=0", "identity"],
  [",,gzip,,", "gzip"],
  ["br;q=0.001", "br"],
  ["br;q=0, zstd;q=0, gzip;q=0", "identity"],
  ["br;q=0, zstd;q=0, gzip;q=0, identity;q=0", "406"],
  ["gzip, *;q=0.9", "gzip"],
  ["*;q=0.5, br", "br"],
  ["*;q=0.5", "br"],
  ["gzip deflate", "identity"],
  ["gzip;q=0,br;q=0.2,zstd;q=0.1", "br"],
  ["zstd, gzip", "zstd"],
  ["\tgzip\t;\tq=0.3\t, zstd;q=0.2", "gzip"],
];

describe("negotiation", () => {
  test(`has at least 40 Accept-Encoding cases (${NEGOTIATION.length})`, () => {
    assert.ok(NEGOTIATION.length >= 40);
  });
  for (const [field, expected] of NEGOTIATION) {
    test(`${JSON.stringify(field)} -> ${expected}`, () => {
      assert.equal(encodingOf(resolver.resolve("/all.js", field)), expected);
    });
  }

  // Only variants existing for that file are candidates.
  const PER_FILE: [string, string, string][] = [
    ["/gz.js", "br, zstd", "identity"],
    ["/gz.js", "br, zstd, gzip;q=0.1", "gzip"],
    ["/gz.js", "gzip;q=0", "identity"],
    ["/gz.js", "identity;q=0, br", "406"],
    ["/gz.js", "*", "gzip"],
    // A file without variants is not negotiated: identity, no Vary, never 406.
    ["/img.png", "*;q=0", "identity"],
    ["/img.png", "gzip, br", "identity"],
    ["/archive.tar.gz", "gzip", "identity"],
  ];
  for (const [path, field, expected] of PER_FILE) {
    test(`${path} with ${JSON.stringify(field)} -> ${expected}`, () => {
      assert.equal(encodingOf(resolver.resolve(path, field)), expected);
    });
  }

  test("strict: false falls back to identity instead of 406", () => {
    const lenient = createResolver(manifest, { strict: false });
    assert.equal(encodingOf(lenient.resolve("/all.js", "identity;q=0")), "identity");
    assert.equal(encodingOf(lenient.resolve("/all.js", "*;q=0, gzip")), "gzip");
  });

  test("the server's order breaks ties and is configurable", () => {
    const gzipFirst = createResolver(manifest, { encodings: ["gzip", "zstd", "br"] });
    assert.equal(encodingOf(gzipFirst.resolve("/all.js", "br, gzip, zstd")), "gzip");
    assert.equal(encodingOf(gzipFirst.resolve("/all.js", "br, zstd")), "zstd");
    const brOnly = createResolver(manifest, { encodings: ["br"] });
    assert.equal(encodingOf(brOnly.resolve("/all.js", "gzip")), "identity");
    assert.equal(encodingOf(brOnly.resolve("/gz.js", "*;q=0")), "identity", "no enabled variant: not negotiated");
  });

  test("406 carries Vary", () => {
    assert.deepEqual(resolver.resolve("/all.js", "identity;q=0"), { status: 406, vary: "Accept-Encoding" });
  });

  test("any Accept-Encoding string is answered, never thrown on", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 80 }), (field) => {
        const r = resolver.resolve("/all.js", field);
        assert.ok(r !== null && (r.status === 200 || r.status === 406));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("answer fields", () => {
  test("br variant: path, size, type of the original, distinct strong ETag, Vary, dates", () => {
    const r = resolver.resolve("/all.js", "br");
    assert.ok(r?.status === 200);
    const { variants, hash } = manifest.files["all.js"] as ManifestEntry;
    assert.equal(r.path, "all.js.br");
    assert.equal(r.encoding, "br");
    assert.equal(r.size, variants.br?.size);
    assert.equal(r.hash, variants.br?.hash);
    assert.equal(r.contentType, JS);
    assert.equal(r.vary, "Accept-Encoding");
    assert.equal(r.lastModified, "Tue, 02 Jan 2024 03:04:05 GMT");
    assert.equal(r.mtime, Date.UTC(2024, 0, 2, 3, 4, 5));
    assert.match(r.etag, /^"[\w-]{27}-br"$/);
    const identity = resolver.resolve("/all.js", "");
    assert.ok(identity?.status === 200);
    assert.equal(identity.etag, `"${hash.slice(7, 34)}"`);
    assert.equal(identity.path, "all.js");
    const etags = ["", "gzip", "br", "zstd"].map((f) => (resolver.resolve("/all.js", f) as { etag: string }).etag);
    assert.equal(new Set(etags).size, 4, "one ETag per variant");
  });

  test("answers are computed once and reused", () => {
    assert.equal(resolver.resolve("/all.js", "gzip"), resolver.resolve("/all.js?x", "GZIP"));
  });

  test("a file without variants has no Vary", () => {
    const r = resolver.resolve("/img.png", "gzip");
    assert.ok(r?.status === 200);
    assert.equal(r.vary, undefined);
    assert.equal(r.contentType, "image/png");
  });

  test("a real .gz file is served as itself: its own type, no encoding", () => {
    const r = resolver.resolve("/archive.tar.gz", "gzip");
    assert.ok(r?.status === 200);
    assert.equal(r.encoding, null);
    assert.equal(r.path, "archive.tar.gz");
    assert.equal(r.contentType, "application/gzip");
  });

  test("Cache-Control: hashed names immutable, HTML no-cache, a dictionary lives a day, the rest revalidates; configurable", () => {
    const cc = (path: string, r = resolver) => (r.resolve(path, "br") as { cacheControl?: string }).cacheControl;
    assert.equal(cc("/assets/app.3f9a1c2b.js"), "public, max-age=31536000, immutable");
    assert.equal(cc("/assets/chunk-DfG8a2_x.js"), "public, max-age=31536000, immutable");
    assert.equal(cc("/"), "no-cache");
    assert.equal(cc("/all.js"), "public, max-age=0, stale-while-revalidate=86400");
    assert.equal(cc("/img.png"), "public, max-age=0, must-revalidate", "no variants: no dictionary to keep");
    assert.equal(
      cc("/all.js", createResolver(manifest, { staleWhileRevalidate: 600 })),
      "public, max-age=0, stale-while-revalidate=600",
    );
    assert.equal(
      cc("/all.js", createResolver(manifest, { staleWhileRevalidate: 0 })),
      "public, max-age=0, must-revalidate",
    );
    const custom = createResolver(manifest, {
      cacheControl: (path) => (path.endsWith(".png") ? "max-age=60" : undefined),
    });
    assert.equal((custom.resolve("/img.png", "") as { cacheControl?: string }).cacheControl, "max-age=60");
    assert.equal((custom.resolve("/all.js", "") as { cacheControl?: string }).cacheControl, undefined);
  });

  const NAMES: [string, boolean][] = [
    ["app.3f9a1c2b.js", true],
    ["chunk-DfG8a2_x.js", true],
    ["index-BXs7TqzN.js", true],
    ["out-5XRPZ2LJ.js", true],
    ["main.0123456789abcdef0123.css", true],
    ["my-component.js", false],
    ["report-20240101.pdf", false],
    ["jquery-3.7.1.min.js", false],
    ["deadbeef.js", false],
    ["styles.css", false],
    ["bundle.abcdefgh.js", false],
  ];
  for (const [name, hashed] of NAMES) {
    test(`defaultCacheControl: ${name} is ${hashed ? "" : "not "}content-hashed`, () => {
      assert.equal(defaultCacheControl(name, entry(JS, [])).includes("immutable"), hashed);
    });
  }
});

describe("paths", () => {
  const PATHS: [string, string | null, ResolverOptions?][] = [
    ["/", "index.html"],
    ["/docs/", "docs/index.html"],
    ["/docs/?q=1", "docs/index.html"],
    ["/all.js?v=1", "all.js"],
    ["/all.js#top", null],
    ["/names/with%20space%20%C3%A9.txt", "names/with space é.txt"],
    ["/names/with space é.txt", "names/with space é.txt"],
    ["/names/with%20space%20%c3%a9.txt", "names/with space é.txt"],
    ["/archive.tar.gz", "archive.tar.gz"],
    ["/.well-known/security.txt", ".well-known/security.txt"],
    ["/.hidden", null],
    ["/.hidden", ".hidden", { dotfiles: true }],
    ["/.precompressor.json", null],
    ["/.precompressor.json", null, { dotfiles: true }],
    ["/all.js.br", null],
    ["/all.js.gz", null],
    ["/ALL.JS", null],
    ["/all.js/", null],
    ["/nope.js", null],
    ["/constructor", null],
    ["/__proto__", null],
    ["/toString", null],
    ["/hasOwnProperty/index.html", null],
    ["//all.js", null],
    ["/", null, { index: false }],
    ["/docs/", null, { index: false }],
    ["/docs", "docs/index.html", { redirect: false }],
    ["/docs/", "docs/default.htm", { index: "default.htm" }],
  ];
  const withDefault = { ...manifest, files: { ...manifest.files, "docs/default.htm": entry(HTML, []) } };
  for (const [path, key, options] of PATHS) {
    test(`${path} ${options ? JSON.stringify(options) : ""} -> ${key}`, () => {
      const r = createResolver(withDefault, options).resolve(path, "gzip");
      if (key === null) return assert.equal(r, null);
      assert.ok(r?.status === 200, `got ${JSON.stringify(r)}`);
      assert.equal(r.path, r.encoding ? key + VARIANT_SUFFIX[r.encoding as Encoding] : key);
    });
  }

  test("/dir redirects to /dir/, keeping the query", () => {
    assert.deepEqual(resolver.resolve("/docs", ""), { status: 301, location: "/docs/" });
    assert.deepEqual(resolver.resolve("/docs?a=1&b", ""), { status: 301, location: "/docs/?a=1&b" });
  });
});

// Each must be refused (400) or not found (null), never a file; most must be 400 before any lookup.
const TRAVERSAL: [string, 400 | null][] = [
  ["/../all.js", 400],
  ["/docs/../all.js", 400],
  ["/docs/..", 400],
  ["/docs/.", 400],
  ["/./all.js", 400],
  ["/%2e%2e/all.js", 400],
  ["/%2E%2e/all.js", 400],
  ["/%2E%2E/", 400],
  ["/.%2e/all.js", 400],
  ["/%2e/all.js", 400],
  ["/docs/%2e%2e/all.js", 400],
  ["/docs/..%2fall.js", 400],
  ["/docs%2findex.html", 400],
  ["/docs%2Findex.html", 400],
  ["/docs%5cindex.html", 400],
  ["/docs%5Cindex.html", 400],
  ["/docs\\index.html", 400],
  ["/..\\..\\etc\\passwd", 400],
  ["\\all.js", 400],
  ["/all.js%00", 400],
  ["/all.js%00.png", 400],
  ["/all.js\0", 400],
  ["/%zz", 400],
  ["/%", 400],
  ["/all.js%", 400],
  ["/%e9", 400],
  ["/%c0%ae%c0%ae/all.js", 400],
  ["/%c0%af", 400],
  ["/%ed%a0%80", 400],
  ["/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 400],
  ["/%252e%252e/all.js", null],
  ["/%252e%252e%252fall.js", null],
  ["/..;/all.js", null],
  ["/...", null],
  ["//etc/passwd", null],
  ["/etc/passwd", null],
  ["all.js", 400],
  ["", 400],
  ["*", 400],
  ["http://evil.example/all.js", 400],
  [`/${"a/".repeat(20_000)}all.js`, null],
  [`/${"%2e%2e/".repeat(1000)}all.js`, 400],
  [`/${"é".repeat(10_000)}`, null],
];

describe("traversal probes", () => {
  for (const [path, expected] of TRAVERSAL) {
    test(`${JSON.stringify(path.length > 60 ? `${path.slice(0, 40)}…(${path.length})` : path)} -> ${expected}`, () => {
      const r = resolver.resolve(path, "gzip, br");
      assert.deepEqual(r, expected === null ? null : { status: 400 });
    });
  }

  test("any path resolves to a manifest key or nothing, and never throws", () => {
    const keys = new Set(Object.keys(manifest.files));
    const segment = fc.oneof(
      fc.constantFrom(
        "..",
        ".",
        "%2e",
        "%2E%2e",
        "%2f",
        "%5c",
        "\\",
        "%00",
        "%",
        "%zz",
        "%c0%ae",
        "docs",
        "all.js",
        "index.html",
        "",
      ),
      fc.string({ maxLength: 6 }),
    );
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), (segments) => {
        const r = resolver.resolve(`/${segments.join("/")}`, "br");
        if (r?.status === 200) assert.ok(keys.has(r.path.replace(/\.(gz|br|zst)$/, "")) || keys.has(r.path));
        if (r?.status === 301) assert.match(r.location, /^\/[^/]/);
      }),
      { numRuns: 5000 },
    );
  });
});
