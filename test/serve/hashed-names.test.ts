// The one content-hash-name rule (#14 case 9): the resolver's Cache-Control and Use-As-Dictionary
// and the build's delta matching agree, on names as bundlers emit them and on ordinary names.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { logicalName } from "../../src/delta.js";
import type { ManifestEntry } from "../../src/manifest-format.js";
import { createResolver, defaultCacheControl, hashedName } from "../../src/serve/resolver.js";
import { covers, hasURLPattern, matchOf } from "./match.js";

const entry = (type: string): ManifestEntry => ({
  hash: "sha256-AAAA",
  size: 2000,
  mtimeMs: 0,
  type,
  variants: { br: { size: 100, hash: "sha256-BBBB" } },
});
const JS = "text/javascript; charset=utf-8";

// Each with the next release's name when it is content-hashed.
const HASHED: [string, string][] = [
  ["index-DiwrgTda.js", "index-Bq7_x-Zk.js"], // Vite/Rollup, no digit
  ["vendor-B-x3Yz_k.js", "vendor-C9aaTT_e.js"], // Vite/Rollup, `-` and `_` inside
  ["chunk-5XRPZ2LJ.js", "chunk-QWERTYUI.js"], // esbuild base32
  ["main.0a1b2c3d4e5f60718293.js", "main.f0e1d2c3b4a596877869.js"], // webpack [contenthash], 20 hex
  ["app.3f9a1c2b.js", "app.77bc0e1d.js"], // Parcel, 8 hex
];
const ORDINARY = [
  "settings.js",
  "2024-report.pdf",
  "jquery-3.7.1.min.js",
  "font-awesome.css",
  "my-app-main.js",
  "report-20240101.pdf",
  "bundle.abcdefgh.js",
  "three.module.js",
];

describe("hashed names: one rule", () => {
  for (const [name, next] of HASHED) {
    test(`${name} is content-hashed: immutable, a \`*\` match, and the same logical name as ${next}`, () => {
      assert.ok(hashedName(name));
      assert.equal(defaultCacheControl(`assets/${name}`, entry(JS)), "public, max-age=31536000, immutable");
      assert.equal(logicalName(`assets/${name}`), logicalName(`assets/${next}`));
      const r = createResolver({ version: 1, generator: "", settings: {}, files: { [`assets/${name}`]: entry(JS) } });
      const answer = r.resolve(`/assets/${name}`, "br");
      assert.ok(answer?.status === 200);
      const match = matchOf(answer.useAsDictionary);
      assert.ok(match.includes("*"), match);
      // What the build pairs as a delta is what a browser will ask for with that dictionary.
      assert.ok(covers(match, `http://127.0.0.1/assets/${name}`, `http://127.0.0.1/assets/${next}`));
      assert.ok(!covers(match, `http://127.0.0.1/assets/${name}`, "http://127.0.0.1/assets/other-DiwrgTda.js"));
    });
  }
  for (const name of ORDINARY) {
    test(`${name} is not content-hashed`, () => {
      assert.equal(hashedName(name), null);
      assert.equal(logicalName(`x/${name}`), `x/${name}`);
      assert.equal(defaultCacheControl(name, entry(JS)).includes("immutable"), false);
    });
  }

  test(`Unicode names in match are percent-encoded and cover the browser's URL${hasURLPattern ? " (URLPattern)" : ""}`, () => {
    const files = { "assets/日本語-DiwrgTda.js": entry(JS), "🎉.css": entry("text/css; charset=utf-8") };
    const r = createResolver({ version: 1, generator: "", settings: {}, files });
    const cjk = r.resolve(`/assets/${encodeURIComponent("日本語-DiwrgTda")}.js`, "br");
    assert.ok(cjk?.status === 200);
    assert.equal(cjk.useAsDictionary, 'match="%E6%97%A5%E6%9C%AC%E8%AA%9E-*.js"');
    assert.ok(
      covers(matchOf(cjk.useAsDictionary), "http://h/assets/日本語-DiwrgTda.js", "http://h/assets/日本語-Xy_9Ab-c.js"),
    );
    const emoji = r.resolve(`/${encodeURIComponent("🎉")}.css`, "br");
    assert.ok(emoji?.status === 200);
    assert.equal(emoji.useAsDictionary, 'match="%F0%9F%8E%89.css"');
    assert.ok(covers(matchOf(emoji.useAsDictionary), "http://h/🎉.css", "http://h/🎉.css"));
  });
});
