// The rules `precompressor config nginx|caddy` writes agree with the resolver's, name for name.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { ManifestEntry } from "../../src/manifest-format.js";
import { createResolver, HASHED_NAME } from "../../src/serve/resolver.js";
import { HASHED_PCRE, HASHED_RE2, HIDDEN_PATH } from "../../src/server-config/rules.js";
import { runCli } from "../support/helpers.js";

const entry: ManifestEntry = { hash: "sha256-x", size: 1, mtimeMs: 0, type: "text/javascript", variants: {} };
const hashedByRe2 = (path: string) =>
  HASHED_RE2.some(
    ({ all, none }) => all.every((p) => new RegExp(p).test(path)) && !none.some((p) => new RegExp(p).test(path)),
  );
const NAMES = [
  "app.3f9a1c2b.js",
  "assets/app.0a3368c1.js",
  "chunk-DfG8a2_x.js",
  "index-BXs7TqzN.js",
  "out-5XRPZ2LJ.js",
  "main.0123456789abcdef0123.css",
  "my-component.js",
  "report-20240101.pdf",
  "jquery-3.7.1.min.js",
  "deadbeef.js",
  "styles.css",
  "bundle.abcdefgh.js",
  "a.b-3f9a1c2b.js",
  "x.3f9a1c2b.min.js",
  "dir.3f9a1c2b/file.js",
  "ABCDEFG1.js",
  "a.ABCDEFG1.js",
  "a.ABCDEFG12.js",
  "a-abcdefg1.js",
];

describe("server configs: one hashed-name rule", () => {
  test("nginx uses the resolver's regex as is", () => {
    assert.equal(HASHED_PCRE, HASHED_NAME.source);
  });

  test("Caddy's lookahead-free rule agrees with the resolver on known names", () => {
    for (const name of NAMES) assert.equal(hashedByRe2(name), HASHED_NAME.test(name), name);
  });

  test("… and on generated names", () => {
    const char = fc.constantFrom(..."0123456789abcdefgzAFZ_.-/");
    fc.assert(
      fc.property(fc.array(char, { maxLength: 24 }), fc.constantFrom(".js", ".css", ""), (chars, ext) => {
        const name = chars.join("") + ext;
        assert.equal(hashedByRe2(name), HASHED_NAME.test(name), name);
      }),
      { numRuns: 20_000 },
    );
  });
});

describe("server configs: what is never served", () => {
  test("dotfiles except .well-known/ are hidden exactly where the resolver refuses them", () => {
    const hidden = new RegExp(HIDDEN_PATH);
    const segment = fc.array(fc.constantFrom(..."welknoa.-"), { minLength: 1, maxLength: 12 }).map((c) => c.join(""));
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 4 }), (segments) => {
        fc.pre(!segments.some((s) => s === "." || s === ".."));
        const key = segments.join("/");
        const resolver = createResolver({ version: 1, files: { [key]: entry } } as never);
        assert.equal(hidden.test(`/${key}`), resolver.resolve(`/${key}`) === null, key);
      }),
      { numRuns: 20_000 },
    );
  });

  test("the manifest, the lock and temp files are hidden", () => {
    const hidden = new RegExp(HIDDEN_PATH);
    for (const path of [
      "/.precompressor.json",
      "/.precompressor.lock",
      "/a/.pc-0123456789abcdef0123.tmp",
      "/.well-known",
    ])
      assert.ok(hidden.test(path), path);
    for (const path of ["/.well-known/security.txt", "/a/.well-known/x", "/app.js", "/a.b/c"])
      assert.ok(!hidden.test(path), path);
  });
});

describe("precompressor config", () => {
  test("nginx: a server block, root the absolute path, default listen 80", async () => {
    const { code, stdout } = await runCli(["config", "nginx", "fixtures/site"]);
    assert.equal(code, 0);
    assert.match(stdout, /^server \{$/m);
    assert.match(stdout, /^ {4}listen 80;$/m);
    assert.ok(stdout.includes(`root "${resolve("fixtures/site")}";`));
    assert.match(stdout, /gzip_static on;[\s\S]*brotli_static on;[\s\S]*gzip_vary on;/);
  });

  test("caddy: a site block that binds the host given", async () => {
    const { code, stdout } = await runCli(["config", "caddy", "fixtures/site", "--listen", "[::1]:8443"]);
    assert.equal(code, 0);
    assert.match(stdout, /^http:\/\/:8443 \{\n\tbind ::1$/m);
    assert.match(stdout, /precompressed br zstd gzip/);
  });

  test("a bad --listen or server is a usage error", async () => {
    assert.equal((await runCli(["config", "nginx", "fixtures/site", "--listen", "host:99999"])).code, 2);
    assert.equal((await runCli(["config", "apache", "fixtures/site"])).code, 2);
  });
});
