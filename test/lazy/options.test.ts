import assert from "node:assert/strict";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { settingsDigest } from "../../src/build/settings.js";
import { PrecompressorError } from "../../src/errors.js";
import { LAZY_LEVELS, type LazyOptions, resolveLazyOptions } from "../../src/lazy/options.js";
import { LEVEL_RANGE } from "../../src/limits.js";

const BASE: LazyOptions = { root: "site", cacheDir: "cache" };

/** Throws `E_BAD_OPTION` with exactly `message`. */
function refuses(options: Partial<LazyOptions>, message: string): void {
  assert.throws(() => resolveLazyOptions({ ...BASE, ...options }), { code: "E_BAD_OPTION", message });
}

describe("lazy options", () => {
  it("fills in the defaults: lazy levels, the build's min size and ratio, absolute folders", () => {
    const s = resolveLazyOptions(BASE);
    assert.equal(s.root, resolve("site"));
    assert.equal(s.cacheDir, resolve("cache"));
    assert.deepEqual(s.levels, LAZY_LEVELS);
    assert.deepEqual([...s.encodings], ["gzip", "br", "zstd"]);
    assert.equal(s.minSize, 1024);
    assert.equal(s.minRatio, 0.95);
    assert.equal(s.maxSize, 256 * 1024 * 1024);
    assert.equal(s.maxWaitMs, 50);
    assert.equal(s.timeoutMs, 30_000);
    assert.equal(s.concurrency, 1);
    assert.equal(s.maxFileSize, 32 * 1024 * 1024);
    assert.equal(s.reapIntervalMs, 60_000);
    for (const e of s.encodings) {
      assert.equal(s.digests[e], settingsDigest({ encoding: e, level: LAZY_LEVELS[e], minSize: 1024, minRatio: 0.95 }));
    }
  });

  it("keys each encoding's settings: a new level changes only that encoding's digest", () => {
    const before = resolveLazyOptions(BASE);
    const after = resolveLazyOptions({ ...BASE, levels: { br: 7 }, encodings: ["br", "gzip"] });
    assert.equal(after.levels.br, 7);
    assert.notEqual(after.digests.br, before.digests.br);
    assert.equal(after.digests.gzip, before.digests.gzip);
    assert.equal(after.digests.zstd, undefined, "no digest for an encoding not produced");
  });

  it("clamps what has an obvious floor", () => {
    const s = resolveLazyOptions({ ...BASE, maxWaitMs: -5, concurrency: 0.5, minSize: -1 });
    assert.equal(s.maxWaitMs, 0);
    assert.equal(s.concurrency, 1);
    assert.equal(s.minSize, 0);
  });

  it("refuses bad values with E_BAD_OPTION naming the option, with the build's ranges", () => {
    refuses({ maxSize: 0 }, "lazy.maxSize: expected a positive number");
    refuses({ timeoutMs: Number.NaN }, "lazy.timeoutMs: expected a positive number");
    refuses({ reapIntervalMs: -1 }, "lazy.reapIntervalMs: expected a positive number");
    refuses({ minRatio: 1.5 }, "lazy.minRatio: expected a number above 0 and at most 1, got 1.5");
    refuses({ encodings: ["deflate" as "gzip"] }, 'lazy: unknown "deflate"');
    const [, brMax] = LEVEL_RANGE.br;
    refuses(
      { levels: { br: brMax + 1 } },
      `lazy.levels.br: expected a whole number from 0 to ${brMax}, got ${brMax + 1}`,
    );
    refuses({ levels: { gzip: 6.5 } }, "lazy.levels.gzip: expected a whole number from 1 to 9, got 6.5");
  });

  it("names the first bad option in a fixed order", () => {
    refuses({ maxSize: 0, minRatio: 2, levels: { br: 99 } }, "lazy.maxSize: expected a positive number");
    refuses({ minRatio: 2, levels: { br: 99 } }, "lazy.minRatio: expected a number above 0 and at most 1, got 2");
  });

  it("reports failures through console.warn unless told otherwise", (t) => {
    const error = new PrecompressorError("E_WRITE", "a.js: lazy br failed: ENOSPC");
    const seen: PrecompressorError[] = [];
    resolveLazyOptions({ ...BASE, onError: (e) => seen.push(e) }).onError(error);
    assert.deepEqual(seen, [error]);
    const warn = t.mock.method(console, "warn", () => {});
    resolveLazyOptions(BASE).onError(error);
    assert.deepEqual(
      warn.mock.calls.map((c) => c.arguments),
      [["precompressor: a.js: lazy br failed: ENOSPC"]],
    );
  });
});
