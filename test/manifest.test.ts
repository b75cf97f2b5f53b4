import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { deltaFileName } from "../src/delta.js";
import { PrecompressorError } from "../src/errors.js";
import {
  type Manifest,
  type ManifestEntry,
  parseManifest,
  readManifest,
  sameManifest,
  writeManifest,
} from "../src/manifest.js";
import { CanonicalReader, pushText } from "../src/manifest-text.js";
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

/** The writer as it was before it wrote in chunks: the bytes every reader and test was built on. */
function previousText(m: Manifest): string {
  const lines = Object.entries(m.files).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  const shard = m.shard ? `"shard":${JSON.stringify(m.shard)},` : "";
  const head = `{"version":${m.version},"generator":${JSON.stringify(m.generator)},"settings":${JSON.stringify(m.settings)},${shard}"files":{`;
  return `${head}\n${lines.join(",\n")}\n}}\n`;
}

/** Keys that are valid manifest keys, some of them awkward for a line reader. */
const awkwardKeys = ["a.js", "日本語/😀.js", 'quote"d.js', "10", "9", "a,b.css", "}}", "x:{y}"];

function sample(count: number, shard?: Manifest["shard"]): Manifest {
  const files: Record<string, ManifestEntry> = {};
  const keys = [...awkwardKeys, ...Array.from({ length: count }, (_, i) => `d${i % 7}/f${i}.png`)].sort();
  for (const [i, key] of keys.entries())
    files[key] =
      i % 3 ? (entry({ size: i, mtimeMs: 1.5 + i }) as ManifestEntry) : ({ ...entry(), variants: {} } as ManifestEntry);
  return {
    version: 1,
    generator: "precompressor@0.0.0",
    settings: { gzip: "sha256:x" },
    ...(shard ? { shard } : {}),
    files,
  };
}

describe("manifest text", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "pc-manifest-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("writeManifest writes the same bytes as before, with or without shard, empty or past one chunk", async () => {
    const path = join(dir, "m.json");
    for (const m of [sample(0), sample(5, { index: 2, count: 3 }), sample(5000), { ...sample(0), files: {} }]) {
      await writeManifest(path, m);
      assert.equal(await readFile(path, "utf8"), previousText(m));
      assert.equal(takenAsCanonical(previousText(m)), true);
      const read = await readManifest(path);
      assert.deepEqual(read, { manifest: m, warnings: [] });
      // Key order too: a rerun compares manifests by their JSON.
      assert.equal(JSON.stringify(read.manifest), JSON.stringify(m));
    }
  });

  /** Whether the line reader takes `text` as ours (else it is parsed whole). */
  const takenAsCanonical = (text: string) => {
    const reader = new CanonicalReader({ head: () => true, entry: () => true });
    pushText(reader, text);
    return reader.end();
  };

  test("any other JSON layout of the same document reads the same", async () => {
    const m = sample(20, { index: 1, count: 2 });
    const canonical = previousText(m);
    const colon = { ...m, files: { ...m.files, 'colon":in.js': entry() as ManifestEntry } };
    assert.equal(takenAsCanonical(canonical), true);
    const layouts = [
      JSON.stringify(m),
      JSON.stringify(m, null, 2),
      canonical.replaceAll("\n", "\r\n"),
      canonical.replace('"files":{\n', '"files":{ \n'),
      canonical.replace("\n}}\n", "\n}\n}"),
      JSON.stringify(Object.assign({ files: m.files }, m)),
      JSON.stringify({ ...m, extra: [1, 2] }),
      // Ours, but a key with `":` in it is left to the whole-text parse.
      previousText(colon),
    ];
    const others = layouts.length;
    layouts.push(canonical.trimEnd(), `${canonical}  \n\n`);
    for (const [i, text] of layouts.entries()) {
      // Ours with other whitespace after the document is still ours; the rest is read whole.
      assert.equal(takenAsCanonical(text), i >= others, `layout ${i}: read line by line or whole`);
      const expected = JSON.parse(text) as Manifest;
      assert.equal(JSON.stringify(parseManifest(text)), JSON.stringify(expected), `layout ${i}`);
      const path = join(dir, `layout-${i}.json`);
      await writeFile(path, text);
      const read = await readManifest(path);
      assert.equal(JSON.stringify(read.manifest), JSON.stringify(expected), `layout ${i}, from a file`);
    }
  });

  test("the canonical text gets every check: bad entries dropped with a warning, a bad head refused", async () => {
    const m = sample(3);
    const bad = previousText(m).replace('"a.js":', '"../a.js":');
    const warnings: string[] = [];
    const parsed = parseManifest(bad, (w) => warnings.push(w));
    assert.equal(parsed.files["../a.js"], undefined);
    assert.equal(Object.keys(parsed.files).length, Object.keys(m.files).length - 1);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /"\.\.\/a\.js"/);
    for (const text of [
      previousText({ ...m, version: 2 as 1 }),
      previousText(m).slice(0, -20),
      previousText(m).replace('"10":{', '"10":{"x":'),
    ]) {
      assert.throws(
        () => parseManifest(text),
        (e) => e instanceof PrecompressorError && e.code === "E_MANIFEST",
      );
      const path = join(dir, "bad.json");
      await writeFile(path, text);
      const read = await readManifest(path);
      assert.equal(read.manifest, undefined);
      assert.match(read.warnings[0] as string, /rebuilding everything/);
    }
  });

  test("a key listed twice means what JSON.parse makes of it: the last value, checked", () => {
    const m = sample(2);
    const text = previousText(m);
    const lines = text.split("\n");
    const twice = [lines[0], `"a.js":${JSON.stringify({ ...entry(), hash: "nope" })},`, ...lines.slice(1)].join("\n");
    const invalidLast = [
      lines[0],
      ...lines.slice(1, -3).map((l) => (l.endsWith(",") ? l : `${l},`)),
      `"a.js":{"hash":"nope"}`,
      ...lines.slice(-2),
    ].join("\n");
    for (const t of [twice, invalidLast]) {
      const warnings: string[] = [];
      const expected = JSON.parse(t) as Manifest;
      const parsed = parseManifest(t, (w) => warnings.push(w));
      const valid = expected.files["a.js"]?.hash !== "nope";
      assert.equal(parsed.files["a.js"] !== undefined, valid);
      assert.equal(warnings.length, valid ? 0 : 1);
    }
  });

  test("sameManifest is the comparison of the two documents' JSON", () => {
    const m = sample(4);
    const reordered = { ...m, files: Object.fromEntries(Object.entries(m.files).reverse()) };
    const changed = { ...m, files: { ...m.files, "a.js": { ...(m.files["a.js"] as ManifestEntry), size: 1234 } } };
    for (const other of [m, structuredClone(m), reordered, changed, { ...m, generator: "y" }, sample(5), undefined])
      assert.equal(sameManifest(m, other), JSON.stringify(m) === JSON.stringify(other));
  });
});
