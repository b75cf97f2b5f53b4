// The public surface: each entry point exports exactly the names its README section documents.
// Names are read from the built declaration files, so types count as much as values.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import ts from "typescript";
import { ROOT } from "./support/helpers.js";

const README = readFileSync(join(ROOT, "README.md"), "utf8");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  exports: Record<string, { types: string } | string>;
};

/** Entry point -> the README heading of the section that documents it, and what it exports. */
const SURFACE: Record<string, { section: string; names: string[] }> = {
  ".": {
    section: "## The library",
    names: [
      "CleanOptions",
      "CleanSummary",
      "DeltaEntry",
      "Encoding",
      "EncodingTotals",
      "ErrorCode",
      "FileState",
      "LAZY_LEVELS",
      "LazyCompressor",
      "LazyMetrics",
      "LazyOptions",
      "LazyServeOptions",
      "LazyVariant",
      "MANIFEST_NAME",
      "Manifest",
      "ManifestEntry",
      "MergeOptions",
      "MergeSummary",
      "PrecompressOptions",
      "PrecompressorConfig",
      "PrecompressorError",
      "Progress",
      "Shard",
      "Summary",
      "VariantEntry",
      "clean",
      "createLazyCompressor",
      "defineConfig",
      "merge",
      "parseManifest",
      "precompress",
      "readManifest",
    ],
  },
  "./resolver": {
    section: "### `precompressor/resolver`",
    names: [
      "DICTIONARY_LIFETIME",
      "HASHED_NAME",
      "Resolution",
      "Resolved",
      "Resolver",
      "ResolverOptions",
      "VARIANT_SUFFIX",
      "chooseEncoding",
      "createResolver",
      "defaultCacheControl",
      "etagOf",
      "hashedName",
      "isHidden",
      "requestPath",
    ],
  },
  "./node": {
    section: "### `precompressor/node`",
    names: [
      "Answer",
      "HeaderReader",
      "Reply",
      "ServeStaticOptions",
      "StaticHandler",
      "createCore",
      "decide",
      "serveStatic",
    ],
  },
  "./fetch": {
    section: "### `precompressor/fetch`",
    names: ["FetchHandler", "ServeStaticOptions", "createFetchHandler"],
  },
  "./vite": {
    section: "## Use it in your build",
    names: ["PrecompressorPlugin", "PrecompressorPluginOptions", "default"],
  },
};

/** Every name a declaration file exports, types included. */
function exportsOf(dts: string): string[] {
  const program = ts.createProgram([dts], { strict: true, module: ts.ModuleKind.NodeNext });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(dts);
  assert.ok(source, dts);
  const symbol = checker.getSymbolAtLocation(source);
  assert.ok(symbol, `${dts} is not a module`);
  return checker
    .getExportsOfModule(symbol)
    .map((s) => s.getName())
    .sort();
}

/** The README's text from `heading` to the next heading of the same or a higher level. */
function section(heading: string): string {
  const start = README.indexOf(`\n${heading}`);
  assert.ok(start >= 0, `README has no section "${heading}"`);
  const level = heading.split(" ")[0] as string;
  const rest = README.slice(start + heading.length + 1);
  const end = rest.search(new RegExp(`\\n#{1,${level.length}} `));
  return end < 0 ? rest : rest.slice(0, end);
}

describe("public surface", () => {
  test("package.json exports exactly the entry points listed here", () => {
    assert.deepEqual(
      Object.keys(pkg.exports)
        .filter((k) => k !== "./package.json")
        .sort(),
      Object.keys(SURFACE).sort(),
    );
  });

  for (const [entry, { section: heading, names }] of Object.entries(SURFACE)) {
    test(`${entry === "." ? "precompressor" : `precompressor/${entry.slice(2)}`} exports what its README section documents`, () => {
      const target = pkg.exports[entry];
      assert.ok(target && typeof target === "object", entry);
      assert.deepEqual(exportsOf(join(ROOT, target.types)), [...names].sort());
      const text = section(heading);
      for (const name of names) {
        if (name === "default") continue;
        assert.match(text, new RegExp(`\\b${name}\\b`), `${name} is exported but not documented under "${heading}"`);
      }
    });
  }
});
