// The planning step on its own: data in, tasks and reasons out, no disk and no threads.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { resolveOptions } from "../../src/build/options.js";
import { deltaJobs, digestsOf, type PlanInput, plan, sortFiles } from "../../src/build/plan.js";
import type { ScannedFile } from "../../src/build/scan.js";
import type { Manifest, ManifestEntry } from "../../src/manifest-format.js";

const DIR = "/site";
const opts = resolveOptions({ dir: DIR, cache: false });
const digests = digestsOf(opts);

function file(rel: string, size = 2000, mtimeMs = 1000): ScannedFile {
  return { rel, path: `${DIR}/${rel}`, size, mtimeMs };
}

/** A last-run entry for `f` with every encoding written at `variantSize` bytes. */
function entry(f: ScannedFile, variantSize = 500): ManifestEntry {
  const v = { size: variantSize, hash: "sha256-v" };
  return {
    hash: "sha256-x",
    size: f.size,
    mtimeMs: f.mtimeMs,
    type: "text/javascript; charset=utf-8",
    variants: { gzip: v, br: v, zstd: v },
  };
}

function manifestOf(entries: Record<string, ManifestEntry>, settings = digests): Manifest {
  return { version: 1, generator: "test", settings: { ...settings }, files: entries };
}

/** The site's files plus, for each one with an entry, its three variants at their recorded sizes. */
function onDisk(files: ScannedFile[], previous: Manifest | undefined): ScannedFile[] {
  const out = [...files];
  for (const [rel, e] of Object.entries(previous?.files ?? {}))
    for (const [suffix, v] of [
      [".gz", e.variants.gzip],
      [".br", e.variants.br],
      [".zst", e.variants.zstd],
    ] as const)
      if (v) out.push(file(rel + suffix, v.size));
  return out;
}

function planOf(files: ScannedFile[], previous?: Manifest, extra: Partial<PlanInput> = {}) {
  const o = extra.opts ?? opts;
  const sorted = extra.sorted ?? sortFiles(onDisk(files, previous), previous, o);
  return plan({
    opts: o,
    realRoot: DIR,
    sorted,
    digests,
    deltaEncodings: [],
    dictionaries: new Map(),
    slotIsFree: () => true,
    ...extra,
  });
}

describe("plan", () => {
  test("a first run sends every file to a worker as new, eligible ones with all three encodings", () => {
    const result = planOf([file("a.js"), file("b.png"), file("tiny.css", 10)]);
    assert.deepEqual(
      result.tasks.map((t) => [t.task.path, t.reason, t.task.jobs.map((j) => j.encoding)]),
      [
        ["/site/a.js", "new", ["gzip", "br", "zstd"]],
        ["/site/b.png", "new", []],
        ["/site/tiny.css", "new", []],
      ],
    );
    assert.deepEqual(result.skipped, { type: 1, minSize: 1, nameTooLong: 0 });
    assert.deepEqual([...result.eligible], ["a.js"]);
    assert.equal(result.kept.size, 0);
  });

  test("an unchanged file keeps its entry and reaches no worker; its variants are not files of the site", () => {
    const a = file("a.js");
    const result = planOf([a], manifestOf({ "a.js": entry(a) }));
    assert.equal(result.tasks.length, 0);
    assert.deepEqual(result.kept.get("a.js")?.variants.br, { size: 500, hash: "sha256-v" });
  });

  test("each reason a file is looked at again", () => {
    const a = file("a.js");
    const prev = { "a.js": entry(a) };
    assert.equal(planOf([file("a.js", 2000, 2000)], manifestOf(prev)).tasks[0]?.reason, "changed");
    assert.equal(planOf([file("a.js", 2001)], manifestOf(prev)).tasks[0]?.reason, "changed");
    assert.equal(planOf([a], manifestOf(prev, { ...digests, br: "sha256-old" })).tasks[0]?.reason, "settings");
    // A variant of another size than recorded (edited or replaced by hand).
    const sorted = sortFiles(
      [a, file("a.js.gz", 500), file("a.js.br", 499), file("a.js.zst", 500)],
      manifestOf(prev),
      opts,
    );
    assert.equal(planOf([a], manifestOf(prev), { sorted }).tasks[0]?.reason, "variant");
  });

  test("an encoding recorded as not worth it stays so while its place is free, and is redone when it is not", () => {
    const a = file("a.js");
    const e = entry(a);
    delete e.variants.br;
    assert.equal(planOf([a], manifestOf({ "a.js": e })).tasks.length, 0);
    assert.equal(planOf([a], manifestOf({ "a.js": e }), { slotIsFree: () => false }).tasks[0]?.reason, "variant");
  });

  test("dictionaries from previous releases send the file to a worker with its delta jobs", () => {
    const a = file("a.js");
    const deltaDigests = { ...digests };
    const deltaEncodings = deltaJobs(opts, ["dcz"], deltaDigests);
    const dictionaries = new Map([["a.js", [{ path: "/old/a.js", hash: "sha256-d" }]]]);
    const result = planOf([a], manifestOf({ "a.js": entry(a) }), {
      deltaEncodings,
      dictionaries,
      digests: deltaDigests,
    });
    assert.equal(result.tasks[0]?.reason, "deltas");
    assert.deepEqual(
      result.tasks[0]?.task.deltas?.encodings.map((e) => e.encoding),
      ["dcz"],
    );
    assert.ok(deltaDigests.dcz?.startsWith("sha256-"));
  });

  test("a variant whose own name passes 255 bytes is skipped for that encoding only", () => {
    const name = `${"n".repeat(249)}.js`; // 252 bytes: with .gz or .br 255, with .zst 256
    const result = planOf([file(name)]);
    assert.deepEqual(
      result.tasks[0]?.task.jobs.map((j) => j.encoding),
      ["gzip", "br"],
    );
    assert.equal(result.skipped.nameTooLong, 1);
    assert.deepEqual([...(result.tooLong.get(name) ?? [])], ["zstd"]);
  });

  test("`x.js.br` beside `x.js` is a variant's place; `notes.tar.gz` is a file of the site", () => {
    const sorted = sortFiles([file("x.js"), file("x.js.br", 10), file("notes.tar.gz")], undefined, opts);
    assert.deepEqual(
      sorted.served.map((f) => f.rel),
      ["notes.tar.gz", "x.js"],
    );
    assert.deepEqual([...sorted.slots], [["x.js.br", 10]]);
  });

  test("a variant the last manifest recorded stays a variant's place after its source is gone", () => {
    const gone = file("gone.js");
    const sorted = sortFiles([file("gone.js.zst", 500)], manifestOf({ "gone.js": entry(gone) }), opts);
    assert.deepEqual(sorted.served, []);
  });

  test("shards split the site's files, each exactly once, and each keeps only its part of the last manifest", () => {
    const files = Array.from({ length: 40 }, (_, i) => file(`f${i}.js`, 1000 + i * 97));
    const previous = manifestOf(Object.fromEntries(files.map((f) => [f.rel, entry(f)])));
    const seen: string[] = [];
    for (let k = 1; k <= 3; k++) {
      const shardOpts = resolveOptions({ dir: DIR, cache: false, shard: `${k}/3` });
      const sorted = sortFiles(onDisk(files, previous), previous, shardOpts);
      assert.deepEqual(Object.keys(sorted.previous?.files ?? {}).sort(), sorted.served.map((f) => f.rel).sort());
      seen.push(...sorted.served.map((f) => f.rel));
    }
    assert.deepEqual(seen.sort(), files.map((f) => f.rel).sort());
  });
});
