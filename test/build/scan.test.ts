// The walk on real files: every file once, sorted by key, with the size and mtime the file system
// gives, and the search the plan and the ledger use instead of a Set of every key.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { resolveOptions } from "../../src/build/options.js";
import { sortFiles } from "../../src/build/plan.js";
import { listed, scan } from "../../src/build/scan.js";

let dir: string;
const rels = ["b/z.txt", "a.js", "a.js.br", "b/a.png", "10", "9", "日本/x.css"];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "pc-scan-"));
  for (const rel of rels) {
    await mkdir(join(dir, rel, ".."), { recursive: true });
    await writeFile(join(dir, rel), rel.repeat(3));
  }
});
after(() => rm(dir, { recursive: true, force: true }));

test("scan lists every file once, sorted by key, with its size, mtime and full path", async () => {
  const { files } = await scan({ dir, include: ["**/*"], exclude: [], followSymlinks: false });
  assert.deepEqual(
    files.map((f) => f.rel),
    [...rels].sort(),
  );
  for (const f of files) {
    const s = await stat(join(dir, f.rel));
    assert.equal(f.path, join(dir, f.rel));
    assert.deepEqual([f.size, f.mtimeMs], [s.size, s.mtimeMs]);
  }
  for (const rel of rels) assert.equal(listed(files, rel)?.rel, rel);
  for (const rel of ["", "a", "a.jsx", "b", "b/zz.txt", "zzz"]) assert.equal(listed(files, rel), undefined, rel);
});

test("sortFiles tells variants from sources whatever order its list comes in", async () => {
  const { files } = await scan({ dir, include: ["**/*"], exclude: [], followSymlinks: false });
  const opts = resolveOptions({ dir, cache: false });
  const sorted = sortFiles(files, undefined, opts);
  const reversed = sortFiles([...files].reverse(), undefined, opts);
  assert.deepEqual([...sorted.slots.keys()], ["a.js.br"]);
  assert.deepEqual([...reversed.slots.keys()], ["a.js.br"]);
  assert.deepEqual(
    reversed.served.map((f) => f.rel),
    sorted.served.map((f) => f.rel),
  );
});
