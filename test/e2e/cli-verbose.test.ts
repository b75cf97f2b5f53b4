// --verbose through the real CLI: one line per entry of --json's `changes`, same order, with real byte counts.
import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { copySite, loadManifest, removeDir, runCli } from "../support/helpers.js";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));
async function site(): Promise<string> {
  const dir = await copySite();
  dirs.push(dir);
  return dir;
}

/** The per-file lines: everything before the summary table. */
function fileLines(stdout: string): string[] {
  const lines = stdout.split("\n");
  return lines.slice(
    0,
    lines.findIndex((l) => l.startsWith("encoding ")),
  );
}

describe("--verbose", () => {
  it("prints state, path, bytes of the file and of each variant, in the order of --json's changes", async () => {
    const dir = await site();
    const twin = await site();
    const r = await runCli([dir, "--verbose", "--no-cache", "--encodings", "br,gzip"]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse((await runCli([twin, "--json", "--no-cache", "--encodings", "br,gzip"])).stdout);
    const lines = fileLines(r.stdout);
    assert.equal(lines.length, json.changes.length);
    const manifest = await loadManifest(dir);
    lines.forEach((line, i) => {
      const { path, state } = json.changes[i];
      const entry = manifest.files[path];
      assert.ok(entry, path);
      const variants = ["br", "gzip"].map((e) => `  ${e} ${entry.variants[e as "br" | "gzip"]?.size} B`).join("");
      assert.equal(line, `${state}  ${path}  ${entry.size} B${variants}`);
    });
    assert.match(r.stdout, /encoding\s+variants/, "the summary table still follows");
  });

  it("a rerun lists only what changed: an edited file and a removed one", async () => {
    const dir = await site();
    assert.equal((await runCli([dir, "--no-cache", "-q"])).code, 0);
    const html = `<!doctype html><p>${"edited ".repeat(300)}</p>`;
    await writeFile(join(dir, "index.html"), html);
    await rm(join(dir, "assets", "style.css"));
    const r = await runCli([dir, "--verbose", "--no-cache"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = fileLines(r.stdout);
    assert.equal(lines.length, 2, r.stdout);
    assert.match(lines[0] ?? "", /^removed {5}assets\/style\.css$/);
    assert.match(
      lines[1] ?? "",
      new RegExp(`^compressed  index\\.html  ${html.length} B  gzip \\d+ B  br \\d+ B  zstd \\d+ B$`),
    );
  });

  it("has no short form", async () => {
    const r = await runCli([await site(), "-v"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '-v'/);
  });
});
