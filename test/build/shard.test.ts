import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  parseShard,
  partialManifestName,
  shardOfPartialName,
  splitShards,
  type Weighted,
} from "../../src/build/shard.js";
import { PrecompressorError } from "../../src/errors.js";

/** A deterministic tree: mostly small files, a few large ones, as a built site has. */
function tree(count: number): Weighted[] {
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  return Array.from({ length: count }, (_, i) => ({
    rel: `assets/${i % 37}/file-${i}.js`,
    weight: next() < 0.02 ? 200_000 + Math.floor(next() * 800_000) : 100 + Math.floor(next() * 16_000),
  }));
}

describe("parseShard", () => {
  test("k/n with 1 <= k <= n", () => {
    assert.deepEqual(parseShard("1/1"), { index: 1, count: 1 });
    assert.deepEqual(parseShard("3/4"), { index: 3, count: 4 });
  });
  test("anything else is E_BAD_OPTION naming --shard and the value", () => {
    for (const bad of ["0/3", "4/3", "1/0", "a/b", "1", "1/2/3", "-1/2", "1.5/2", "", "01/2"])
      assert.throws(
        () => parseShard(bad),
        (e) => e instanceof PrecompressorError && e.code === "E_BAD_OPTION" && e.message.includes(`"${bad}"`),
        bad,
      );
  });
  test("partial manifest names round-trip, and no other name parses", () => {
    assert.equal(partialManifestName({ index: 2, count: 5 }), ".precompressor.shard-2-of-5.json");
    assert.deepEqual(shardOfPartialName(".precompressor.shard-2-of-5.json"), { index: 2, count: 5 });
    for (const name of [".precompressor.json", ".precompressor.shard-0-of-5.json", "x.precompressor.shard-1-of-2.json"])
      assert.equal(shardOfPartialName(name), undefined, name);
  });
});

describe("splitShards", () => {
  test("every file lands in exactly one shard in 1..n, the same on every call", () => {
    const files = tree(2_000);
    const a = splitShards(files, 4);
    const b = splitShards([...files].reverse(), 4);
    for (const f of files) {
      const k = a(f.rel);
      assert.ok(k >= 1 && k <= 4);
      assert.equal(b(f.rel), k, f.rel);
    }
  });
  test("balanced by weight: no shard exceeds its share by more than the largest file", () => {
    const files = tree(5_000);
    const largest = Math.max(...files.map((f) => f.weight));
    const total = files.reduce((s, f) => s + f.weight, 0);
    for (const n of [2, 3, 4, 7]) {
      const shardOf = splitShards(files, n);
      const loads = new Array(n + 1).fill(0);
      for (const f of files) loads[shardOf(f.rel)] += f.weight;
      for (let k = 1; k <= n; k++) assert.ok(Math.abs(loads[k] - total / n) <= largest, `n=${n} k=${k} ${loads[k]}`);
    }
  });
  test("when a few files change, few files move", () => {
    const files = tree(5_000);
    const before = splitShards(files, 4);
    // 20 files change size by up to ±20%, 10 are added, 10 removed.
    const changed = files.slice(10).map((f, i) => (i % 250 === 0 ? { ...f, weight: Math.round(f.weight * 1.2) } : f));
    changed.push(...Array.from({ length: 10 }, (_, i) => ({ rel: `new/${i}.js`, weight: 5_000 })));
    const after = splitShards(changed, 4);
    const moved = changed.filter((f) => !f.rel.startsWith("new/") && before(f.rel) !== after(f.rel)).length;
    assert.ok(moved <= 60, `${moved} of ${changed.length} files moved`);
  });
  test("one shard takes everything; an empty tree still maps every key", () => {
    const one = splitShards(tree(100), 1);
    assert.equal(one("anything"), 1);
    const empty = splitShards([], 3);
    const k = empty("x.js");
    assert.ok(k >= 1 && k <= 3);
  });
});
