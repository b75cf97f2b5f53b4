import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { deltaFileName } from "../src/delta.js";
import { PrecompressorError } from "../src/errors.js";
import { parseManifest } from "../src/manifest.js";
import { isHeaderSafe, isSafeRelativePath } from "../src/paths.js";

const digest = (c: string) => `sha256-${c.repeat(43)}`;
const entry = (extra: Record<string, unknown> = {}) => ({
  hash: digest("A"),
  size: 10,
  mtimeMs: 1,
  type: "text/plain; charset=utf-8",
  variants: { gzip: { size: 5, hash: digest("B") } },
  ...extra,
});
const manifestText = (files: Record<string, unknown>) =>
  JSON.stringify({ version: 1, generator: "x", settings: {}, files });

describe("isSafeRelativePath", () => {
  test("accepts plain relative POSIX paths, CJK and long names", () => {
    for (const p of [
      "a.txt",
      "assets/app.3f9a1c2b.js",
      "日本語/😀.js",
      `${"x".repeat(250)}.js`,
      "a..b",
      ".well-known/x",
    ])
      assert.equal(isSafeRelativePath(p), true, p);
  });
  test("refuses anything that could leave the root by its spelling", () => {
    for (const p of [
      "",
      "/etc/passwd",
      "../a",
      "a/../../b",
      "a/./b",
      "a//b",
      "a/",
      ".",
      "..",
      "a\\b",
      "a\0b",
      "a\nb",
      "a\u007fb",
    ])
      assert.equal(isSafeRelativePath(p), false, JSON.stringify(p));
  });
});

describe("isHeaderSafe", () => {
  test("refuses CR, LF, NUL; allows tab and Unicode", () => {
    assert.equal(isHeaderSafe("text/plain; charset=utf-8"), true);
    assert.equal(isHeaderSafe("a\tb"), true);
    for (const v of ["a\rb", "a\nb", "a\0b"]) assert.equal(isHeaderSafe(v), false);
  });
});

describe("parseManifest", () => {
  test("keeps valid entries and drops each invalid one with one warning naming it", () => {
    const dict = digest("C");
    const goodDelta = {
      dict,
      encoding: "dcz",
      size: 3,
      hash: digest("D"),
      file: deltaFileName("ok.js", Buffer.from(dict.slice(7), "base64url"), "dcz"),
    };
    const warnings: string[] = [];
    const manifest = parseManifest(
      manifestText({
        "ok.js": entry({ deltas: [goodDelta] }),
        "日本語.js": entry(),
        "../victim/a.txt": entry(),
        "/abs.txt": entry(),
        "crlf.txt": entry({ type: "text/plain\r\nSet-Cookie: x=1" }),
        "outside-delta.js": entry({ deltas: [{ ...goodDelta, file: "../../../tmp/outside.txt" }] }),
        "other-delta.js": entry({ deltas: [goodDelta] }),
        "bad-hash.js": entry({ hash: "sha256-x" }),
        "bad-encoding.js": entry({ variants: { deflate: { size: 1, hash: digest("B") } } }),
      }),
      (m) => warnings.push(m),
    );
    assert.deepEqual(Object.keys(manifest.files).sort(), ["ok.js", "日本語.js"].sort());
    assert.equal(warnings.length, 7);
    for (const key of ["../victim/a.txt", "/abs.txt", "crlf.txt", "outside-delta.js", "other-delta.js"])
      assert.ok(
        warnings.some((w) => w.includes(JSON.stringify(key))),
        key,
      );
  });
  test("a file that is not a version-1 manifest is E_MANIFEST", () => {
    for (const text of ["{ torn", "[]", '{"version":2,"files":{},"settings":{}}', '{"version":1}'])
      assert.throws(
        () => parseManifest(text),
        (e) => e instanceof PrecompressorError && e.code === "E_MANIFEST",
        text,
      );
  });
});
