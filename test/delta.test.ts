import assert from "node:assert/strict";
import { readdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { DELTA_HEADER_BYTES, decodeDelta, deltaSupport, dictionaryDigest, logicalName } from "../src/delta.js";
import { clean, precompress } from "../src/index.js";
import { copySite, loadManifest, removeDir, verifyVariants } from "./support/helpers.js";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));

/** Last release: the demo site. This release: app.js edited and renamed with a new hash, vendor unchanged. */
async function twoReleases(): Promise<{ previous: string; current: string }> {
  const previous = await copySite();
  const current = await copySite();
  dirs.push(previous, current);
  const app = await readFile(join(current, "assets/app.3f9a1c2b.js"), "utf8");
  await writeFile(
    join(current, "assets/app.3f9a1c2b.js"),
    app.replace("class Command extends EventEmitter", "class Command extends EventEmitter /* v2 */"),
  );
  await rename(join(current, "assets/app.3f9a1c2b.js"), join(current, "assets/app.9d1e4f27.js"));
  return { previous, current };
}

describe("delta names", () => {
  for (const [rel, logical] of [
    ["assets/app.3f9a1c2b.js", "assets/app.js"],
    ["assets/chunk-DfG8a2_x.js", "assets/chunk.js"],
    ["assets/index-BxQz9LkT.css", "assets/index.css"],
    ["build/three.module.js", "build/three.module.js"],
    ["bootstrap.bundle.min.js", "bootstrap.bundle.min.js"],
    ["docs/something-reference.js", "docs/something-reference.js"],
    ["index.html", "index.html"],
  ] as const) {
    it(`${rel} keeps the logical name ${logical}`, () => assert.equal(logicalName(rel), logical));
  }
});

describe("RFC 9842 deltas", () => {
  it(`support on Node ${process.version} is probed for real: dcz ${deltaSupport.dcz}, dcb ${deltaSupport.dcb}`, () => {
    const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
    assert.equal(deltaSupport.dcz, major > 22 || (major === 22 && minor >= 19));
    assert.equal(deltaSupport.dcb, major > 24 || (major === 24 && minor >= 15));
  });

  it("an encoding this Node cannot write is reported once and no file is written for it", async () => {
    const { previous, current } = await twoReleases();
    const warnings: string[] = [];
    const summary = await precompress({
      dir: current,
      cache: false,
      dictionaryFrom: [previous],
      onWarning: (w) => warnings.push(w),
    });
    for (const encoding of ["dcz", "dcb"] as const) {
      const files = ((await readdir(current, { recursive: true })) as string[]).filter((f) =>
        f.endsWith(`.${encoding}`),
      );
      if (deltaSupport[encoding]) {
        assert.ok(files.length > 0, `${encoding} written`);
        assert.equal(summary.deltas[encoding]?.files, files.length);
      } else {
        assert.deepEqual(files, []);
        assert.equal(warnings.filter((w) => w.startsWith(`${encoding} deltas need`)).length, 1);
      }
    }
  });

  it("every delta decodes, with its dictionary, to the new file; each beats the file's br variant", async (t) => {
    if (!deltaSupport.dcz && !deltaSupport.dcb)
      return t.skip(`Node ${process.version} writes no deltas (CI runs this under Node 24)`);
    const { previous, current } = await twoReleases();
    await precompress({ dir: current, cache: false, dictionaryFrom: [previous] });
    const manifest = await loadManifest(current);
    await verifyVariants(current, manifest);
    let checked = 0;
    for (const [rel, entry] of Object.entries(manifest.files)) {
      for (const delta of entry.deltas ?? []) {
        const source = await readFile(join(current, rel));
        // The renamed app.js matches last release's app by logical name; the rest by path.
        const oldName = rel === "assets/app.9d1e4f27.js" ? "assets/app.3f9a1c2b.js" : rel;
        const dictionary = await readFile(join(previous, oldName));
        const body = await readFile(join(current, delta.file));
        assert.equal(body.length, delta.size);
        assert.equal(delta.dict, `sha256-${dictionaryDigest(dictionary).toString("base64url")}`);
        assert.deepEqual(
          body.subarray(DELTA_HEADER_BYTES[delta.encoding] - 32, DELTA_HEADER_BYTES[delta.encoding]),
          dictionaryDigest(dictionary),
        );
        assert.deepEqual(decodeDelta(delta.encoding, body, dictionary), source, delta.file);
        assert.ok(delta.size < (entry.variants.br?.size ?? Number.POSITIVE_INFINITY), `${delta.file} beats br`);
        checked += 1;
      }
    }
    const app = manifest.files["assets/app.9d1e4f27.js"];
    assert.ok(app?.deltas?.some((d) => d.encoding === "dcz") || !deltaSupport.dcz, "the renamed file got a dcz delta");
    // An unchanged file's delta against itself is a few dozen bytes.
    const vendor = manifest.files["assets/vendor.77bc0e1d.js"]?.deltas?.find((d) => d.encoding === "dcz");
    if (deltaSupport.dcz) assert.ok(vendor && vendor.size < 100, `vendor dcz is ${vendor?.size} bytes`);
    assert.ok(checked >= 8, `checked ${checked} deltas`);
  });

  it("reruns keep deltas; dropping --dictionary-from removes them; clean removes them too", async (t) => {
    if (!deltaSupport.dcz) return t.skip(`Node ${process.version} writes no dcz deltas`);
    const { previous, current } = await twoReleases();
    await precompress({ dir: current, cache: false, dictionaryFrom: [previous] });
    const first = (await loadManifest(current)).files["assets/vendor.77bc0e1d.js"]?.deltas?.[0];
    assert.ok(first);
    const inode = (await stat(join(current, first.file))).ino;
    const rerun = await precompress({ dir: current, cache: false, dictionaryFrom: [previous] });
    assert.equal(rerun.states.compressed, 0);
    assert.equal((await stat(join(current, first.file))).ino, inode, "the delta is not rewritten");
    await precompress({ dir: current, cache: false });
    await assert.rejects(stat(join(current, first.file)), "deltas go when no dictionary is given");
    await precompress({ dir: current, cache: false, dictionaryFrom: [previous] });
    await clean({ dir: current });
    const left = ((await readdir(current, { recursive: true })) as string[]).filter((f) => /\.(dcz|dcb)$/.test(f));
    assert.deepEqual(left, []);
  });

  it("a missing --dictionary-from folder is named", async () => {
    const { current } = await twoReleases();
    await assert.rejects(
      precompress({ dir: current, dictionaryFrom: ["/nonexistent/release"] }),
      /--dictionary-from \/nonexistent\/release: no such directory/,
    );
  });
});
