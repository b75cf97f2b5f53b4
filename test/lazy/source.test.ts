import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, realpath, rename, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { hashBytes } from "../../src/hash.js";
import { createSources } from "../../src/lazy/source.js";
import { removeDir, tempDir } from "../support/helpers.js";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));

const TEXT = Buffer.from("export const answer = 42;\n".repeat(100));

/** A root with `app.js`, a cache folder inside it, and a file beside the root. */
async function site(options: { minSize?: number; maxFileSize?: number } = {}) {
  const base = await realpath(await tempDir("lazy-source-"));
  dirs.push(base);
  const root = join(base, "site");
  const cache = join(root, "cache");
  await mkdir(cache, { recursive: true });
  await writeFile(join(root, "app.js"), TEXT);
  await writeFile(join(cache, "entry.js"), TEXT);
  await writeFile(join(base, "outside.js"), TEXT);
  const sources = createSources({
    places: Promise.resolve({ root, cache }),
    minSize: options.minSize ?? 1024,
    maxFileSize: options.maxFileSize ?? 1024 * 1024,
  });
  return { base, root, sources };
}

describe("lazy sources", () => {
  it("locates regular files inside the root only, within the size bounds", async () => {
    const { base, root, sources } = await site({ maxFileSize: 10_000 });
    await writeFile(join(root, "tiny.js"), "let a;");
    await writeFile(join(root, "huge.js"), Buffer.alloc(20_000, 97));
    await writeFile(join(root, "image.png"), TEXT);
    await writeFile(join(root, ".env.js"), TEXT);
    await mkdir(join(root, "folder.js"));
    await symlink(join(base, "outside.js"), join(root, "escape.js"));
    await symlink(join(root, "app.js"), join(root, "alias.js"));
    execFileSync("mkfifo", [join(root, "pipe.js")]);
    const found = await sources.locate("app.js");
    assert.equal(found?.real, join(root, "app.js"));
    assert.equal(found?.stats.size, TEXT.length);
    assert.equal((await sources.locate("alias.js"))?.real, join(root, "app.js"), "a link inside the root is fine");
    for (const probe of [
      "../outside.js",
      "escape.js",
      "cache/entry.js",
      ".env.js",
      "tiny.js",
      "huge.js",
      "image.png",
      "folder.js",
      "pipe.js",
      "missing.js",
      "/app.js",
    ]) {
      assert.equal(await sources.locate(probe), undefined, probe);
    }
  });

  it("refuses a file swapped for a symlink out of the root between two requests", async () => {
    const { base, root, sources } = await site();
    assert.ok(await sources.locate("app.js"));
    await rename(join(root, "app.js"), join(root, "old.js"));
    await symlink(join(base, "outside.js"), join(root, "app.js"));
    assert.equal(await sources.locate("app.js"), undefined);
  });

  it("hashes a file once per signature, shared by concurrent requests, and again after a write", async () => {
    const { root, sources } = await site();
    const found = await sources.locate("app.js");
    assert.ok(found);
    const first = sources.of(found.real, found.stats);
    assert.equal(sources.of(found.real, found.stats), first);
    assert.equal(await first.hash, hashBytes(TEXT));
    assert.equal(sources.known(found.real), first);
    assert.equal(await sources.unchanged(found.real, first.signature), true);

    const edited = Buffer.from(TEXT);
    edited.write("/* edited */", 0);
    await writeFile(join(root, "app.js"), edited);
    assert.equal(await sources.unchanged(found.real, first.signature), false);
    const again = await sources.locate("app.js");
    assert.ok(again);
    const second = sources.of(again.real, again.stats);
    assert.notEqual(second, first);
    assert.equal(await second.hash, hashBytes(edited));
  });

  it("gives no hash for a file written while it was read, and forgets that source", async () => {
    const { root, sources } = await site();
    const found = await sources.locate("app.js");
    assert.ok(found);
    // Stat'ed before the write: the hash read after it cannot be of the content that stat described.
    await writeFile(join(root, "app.js"), Buffer.concat([TEXT, TEXT]));
    const source = sources.of(found.real, found.stats);
    assert.equal(await source.hash, undefined);
    await sleep(0);
    assert.equal(sources.known(found.real), undefined);
  });

  it("reaps sources not used since a time, and forgets one or all", async () => {
    const { root, sources } = await site();
    await writeFile(join(root, "b.js"), TEXT);
    const a = await sources.locate("app.js");
    const b = await sources.locate("b.js");
    assert.ok(a && b);
    sources.of(a.real, a.stats);
    await sleep(30);
    sources.of(b.real, b.stats);
    sources.reap(Date.now() - 15);
    assert.equal(sources.known(a.real), undefined);
    assert.ok(sources.known(b.real));
    sources.of(a.real, a.stats);
    sources.forget(b.real);
    assert.equal(sources.size, 1);
    sources.forget();
    assert.equal(sources.size, 0);
  });

  it("fails every eligible lookup when the places could not be set up (the compressor answers undefined)", async () => {
    const sources = createSources({ places: Promise.reject(new Error("not ours")), minSize: 0, maxFileSize: 1 });
    await assert.rejects(sources.locate("app.js"), /not ours/);
    assert.equal(await sources.locate("../app.js"), undefined, "an ineligible name is refused before the wait");
  });
});
