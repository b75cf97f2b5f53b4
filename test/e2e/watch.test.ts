// `precompressor --watch` as a child process: edits, additions and deletions under dir, then Ctrl-C.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { appendFile, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { copySite, loadManifest, removeDir, runCli, tempDir, verifyVariants } from "../support/helpers.js";
import { CLI, type Live, poll, startNode } from "./helpers.js";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));
async function tracked(make: Promise<string>): Promise<string> {
  const dir = await make;
  dirs.push(dir);
  return dir;
}

const RERUN = /^(\d+) files?: (\d+) compressed, (\d+) restored, (\d+) unchanged, (\d+) removed, (\d+) failed/m;

async function startWatch(dir: string, { waitForFirstRun = true } = {}): Promise<Live> {
  const cache = await tracked(tempDir("watch-cache-"));
  const live = startNode(CLI, [dir, "--watch", "--cache-dir", cache], dir);
  await live.waitFor(/watching .* for changes \(Ctrl-C stops\)/);
  if (waitForFirstRun) await live.waitFor(/^time: /m); // the first run's summary
  return live;
}

/** Megabytes of varied text: brotli 11 is busy with it for seconds, long enough to act mid-run. */
function bigText(): string {
  let seed = 7;
  const words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda", "theta", "zeta"];
  return Array.from({ length: 600_000 }, () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return words[seed % words.length] + String(seed % 97);
  }).join(" ");
}

/** Ctrl-C, then the manifest must hold: every variant it lists exists and decodes; no lock or temp file left. */
async function interruptAndCheck(live: Live, dir: string): Promise<void> {
  live.process.kill("SIGINT");
  assert.equal(await live.exited, 130, live.stderr());
  await verifyVariants(dir);
  const leftovers = (await readdir(dir, { recursive: true })).filter((n) =>
    /(^|\/)\.pc-[0-9a-f]{20}\.tmp$|\.precompressor\.lock$/.test(n),
  );
  assert.deepEqual(leftovers, []);
}

describe("--watch", () => {
  it("re-runs after an edit, an added file in a new folder, a deletion and an edited .tar.gz; one line each; blind to its own writes", async () => {
    const dir = await tracked(copySite());
    const live = await startWatch(dir);
    try {
      await appendFile(join(dir, "index.html"), "<p>edited while watching</p>\n");
      const edited = await live.waitFor(RERUN, 1);
      assert.deepEqual([edited[2], edited[5]], ["1", "0"], edited[0]);
      await verifyVariants(dir); // throws unless the manifest has index.html's new bytes and its variants decode to them
      // Writing the variants and the manifest must not have triggered another run.
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal([...live.stdout().matchAll(new RegExp(RERUN.source, "gm"))].length, 1, live.stdout());

      await mkdir(join(dir, "new", "deeper"), { recursive: true });
      await writeFile(
        join(dir, "new", "deeper", "app.js"),
        `export const list = ${JSON.stringify(Array(200).fill("item"))};\n`,
      );
      const added = await live.waitFor(RERUN, 2);
      assert.equal(added[2], "1", added[0]);
      const entry = (await loadManifest(dir)).files["new/deeper/app.js"];
      assert.deepEqual(Object.keys(entry?.variants ?? {}).sort(), ["br", "gzip", "zstd"]);
      await verifyVariants(dir);

      await rm(join(dir, "assets", "style.css"));
      const removed = await live.waitFor(RERUN, 3);
      assert.equal(removed[5], "1", removed[0]);
      for (const suffix of ["", ".gz", ".br", ".zst"])
        assert.equal(existsSync(join(dir, `assets/style.css${suffix}`)), false);
      assert.equal((await loadManifest(dir)).files["assets/style.css"], undefined);
      await verifyVariants(dir);

      // A .gz whose base is no type we compress is a source of the site, not one of our variants.
      await appendFile(join(dir, "downloads", "notes.tar.gz"), "appended bytes");
      await live.waitFor(RERUN, 4);
      await verifyVariants(dir); // its manifest entry has the new bytes' hash and size
    } finally {
      await interruptAndCheck(live, dir);
    }
  });

  it("Ctrl-C during a re-run stops it with the manifest consistent", async () => {
    const dir = await tracked(copySite());
    const live = await startWatch(dir);
    await writeFile(join(dir, "big.txt"), bigText());
    await poll(() => existsSync(join(dir, ".precompressor.lock")) || undefined);
    await interruptAndCheck(live, dir);
    assert.match(live.stderr(), /interrupted; finished files are in the manifest/);
    const manifest = await loadManifest(dir);
    if (manifest.files["big.txt"]) assert.ok(Object.keys(manifest.files["big.txt"].variants).length > 0);
  });

  it("an edit made during the first run is not missed", async () => {
    const dir = await tracked(copySite());
    await writeFile(join(dir, "big.txt"), bigText());
    const live = await startWatch(dir, { waitForFirstRun: false });
    try {
      await poll(() => existsSync(join(dir, ".precompressor.lock")) || undefined);
      await appendFile(join(dir, "index.html"), "<p>edited during the first run</p>\n");
      await live.waitFor(/^time: /m);
      await live.waitFor(RERUN);
      await verifyVariants(dir); // the manifest and variants have the edited index.html
    } finally {
      await interruptAndCheck(live, dir);
    }
  });

  it("refuses --check and --dry-run (usage error)", async () => {
    const dir = await tracked(copySite());
    const r = await runCli([dir, "--watch", "--check"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--watch: cannot be combined with --check or --dry-run/);
  });
});
