// The file opener under someone who can write into the served folder, over real HTTP on every
// adapter (issue #14 cases 2–6): symlinks out of the root or to hidden files, swaps during the lazy
// wait and during a stream, FIFOs, directories, unsafe delta files. Refused is 404, never 5xx or a hang.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ADAPTERS, within } from "../serve/adapters.js";
import { tempDir } from "../support/helpers.js";
import { decode, get, LARGE_TEXT, MANIFEST, makeSite, sha256 } from "../support/http.js";

const SECRET = "TOP-SECRET-OUTSIDE-THE-ROOT";
const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function site() {
  const s = await makeSite();
  dirs.push(s.dir);
  return s;
}

async function outside(): Promise<string> {
  const dir = await tempDir("outside-");
  dirs.push(dir);
  await writeFile(join(dir, "secret.json"), `{"secret":"${SECRET}"}\n`.repeat(200));
  await writeFile(join(dir, "f.json"), `{"secret":"${SECRET}"}\n`.repeat(200));
  return dir;
}

/** Replace `path` by a symlink to `target` in one rename, as an attacker would. */
async function swapForSymlink(path: string, target: string): Promise<void> {
  const link = `${path}.swap-${process.hrtime.bigint()}`;
  await symlink(target, link);
  await rename(link, path);
}

/** Drop a listed file's variants, so identity and every coding meet the same replaced file. */
async function dropVariants(dir: string, key: string): Promise<void> {
  for (const suffix of [".gz", ".br", ".zst"]) await rm(join(dir, key + suffix), { force: true });
}

const refused = (status: number) => assert.equal(status, 404);

for (const [name, start] of ADAPTERS) {
  describe(`${name}: case 2, a listed file replaced by a symlink is never followed out of the root`, () => {
    test("a symlink to /etc/passwd and to /dev/zero: 404, no outside byte, bounded time", async () => {
      const s = await site();
      const server = await start(s.dir);
      await dropVariants(s.dir, "robots.txt");
      await swapForSymlink(join(s.dir, "robots.txt"), "/etc/passwd");
      const passwd = await within(5000, get(server.port, "/robots.txt"), "symlink to /etc/passwd");
      refused(passwd.status);
      assert.ok(!passwd.body.includes("root:"));
      await dropVariants(s.dir, "data/products.json");
      await swapForSymlink(join(s.dir, "data/products.json"), "/dev/zero");
      const zero = await within(5000, get(server.port, "/data/products.json"), "symlink to /dev/zero");
      refused(zero.status);
      // A variant replaced the same way: the coded request is refused too.
      await swapForSymlink(join(s.dir, "assets/style.css.br"), "/etc/passwd");
      const variant = await within(5000, get(server.port, "/assets/style.css", { "accept-encoding": "br" }), "br");
      assert.ok(!variant.body.includes("root:"));
      assert.ok(variant.status < 500);
    });

    test("a symlink inside the root to a dotfile or the manifest is refused like its target", async () => {
      const s = await site();
      const server = await start(s.dir);
      await dropVariants(s.dir, "robots.txt");
      await swapForSymlink(join(s.dir, "robots.txt"), join(s.dir, ".hidden.txt"));
      refused((await within(5000, get(server.port, "/robots.txt"), "to a dotfile")).status);
      await dropVariants(s.dir, "docs/index.html");
      await swapForSymlink(join(s.dir, "docs/index.html"), join(s.dir, MANIFEST));
      const manifest = await within(5000, get(server.port, "/docs/index.html"), "to the manifest");
      refused(manifest.status);
      assert.ok(!manifest.body.includes('"files"'));
    });

    test("a swap to a symlink during a stream: the rest of the body is still the checked file", async () => {
      const s = await site();
      const server = await start(s.dir, { cacheBytes: 0 });
      const path = join(s.dir, "big/large.txt");
      const body = await new Promise<Buffer>((done, fail) => {
        const req = request({ host: "127.0.0.1", port: server.port, path: "/big/large.txt", agent: false }, (res) => {
          const chunks: Buffer[] = [];
          let swapped = false;
          res.on("data", (chunk: Buffer) => {
            chunks.push(chunk);
            if (swapped) return;
            swapped = true;
            res.pause();
            swapForSymlink(path, "/etc/passwd").then(() => res.resume(), fail);
          });
          res.on("end", () => done(Buffer.concat(chunks)));
          res.on("error", fail);
        });
        req.on("error", fail);
        req.end();
      });
      assert.equal(body.toString(), LARGE_TEXT);
    });
  });

  describe(`${name}: case 3, lazy mode serves nothing outside the root`, () => {
    test("the file or its folder swapped for a symlink during the lazy wait: never an outside byte", async () => {
      const s = await site();
      const away = await outside();
      const cacheDir = await tempDir("lazy-cache-");
      dirs.push(cacheDir);
      const server = await start(s.dir, { lazy: { cacheDir, maxWaitMs: 100 } });
      const upload = `{"row":"inside"}\n`.repeat(400);
      for (let i = 0; i < 12; i++) {
        const folder = join(s.dir, `u${i}`);
        await mkdir(folder);
        await writeFile(join(folder, "f.json"), upload);
        const answer = get(server.port, `/u${i}/f.json`, { "accept-encoding": "br" });
        await new Promise((done) => setTimeout(done, i % 4));
        if (i % 2) {
          await rename(folder, `${folder}.old`);
          await symlink(away, folder);
        } else await swapForSymlink(join(folder, "f.json"), join(away, "secret.json"));
        const a = await within(5000, answer, `swap ${i}`);
        assert.ok(a.status === 200 || a.status === 404, `status ${a.status}`);
        const text = (await decode(a.body, a.headers["content-encoding"] as string | undefined)).toString();
        assert.ok(!text.includes(SECRET), `swap ${i} served the outside file`);
        // Later requests, with the symlink in place, are refused.
        const later = await within(5000, get(server.port, `/u${i}/f.json`, { "accept-encoding": "br" }), "later");
        refused(later.status);
      }
    });

    test("symlinks inside the root to .env, .git/config, the manifest or a .br file: 404", async () => {
      const s = await site();
      const cacheDir = await tempDir("lazy-cache-");
      dirs.push(cacheDir);
      await writeFile(join(s.dir, ".env"), `TOKEN=${SECRET}\n`.repeat(100));
      await mkdir(join(s.dir, ".git"));
      await writeFile(join(s.dir, ".git/config"), `[core]\n\ttoken = ${SECRET}\n`.repeat(100));
      await mkdir(join(s.dir, "uploads"));
      const links: [string, string][] = [
        ["env.txt", "../.env"],
        ["git.txt", "../.git/config"],
        ["manifest.json", `../${MANIFEST}`],
        ["style.txt", "../assets/style.css.br"],
      ];
      for (const [link, target] of links) await symlink(target, join(s.dir, "uploads", link));
      const server = await start(s.dir, { lazy: { cacheDir, maxWaitMs: 1000 } });
      for (const [link] of links) {
        for (const encoding of ["br", "identity"]) {
          const a = await within(5000, get(server.port, `/uploads/${link}`, { "accept-encoding": encoding }), link);
          refused(a.status);
          assert.ok(!a.body.includes(SECRET) && !a.body.includes('"files"'), link);
        }
      }
    });
  });

  describe(`${name}: case 4, a manifest delta file that leaves the root is never opened`, () => {
    test("deltas[].file `../../…/outside.txt`: the entry is dropped at load with one warning, 404", async () => {
      const s = await site();
      const away = await outside();
      const manifest = JSON.parse(await readFile(join(s.dir, MANIFEST), "utf8"));
      const dictionary = Buffer.from("dictionary");
      const dict = sha256(dictionary);
      const key = "assets/app.3f9a1c2b.js";
      const file = `${"../".repeat(12)}${away.slice(1)}/secret.json`;
      manifest.files[key].deltas = [{ file, dict, encoding: "dcz", size: 4000, hash: sha256(Buffer.from("x")) }];
      await writeFile(join(s.dir, MANIFEST), JSON.stringify(manifest));
      const warnings: string[] = [];
      const server = await start(s.dir, { onWarning: (message) => warnings.push(message) });
      const a = await get(server.port, `/${key}`, {
        "accept-encoding": "dcz, br",
        "available-dictionary": `:${dict.slice(7).replace(/-/g, "+").replace(/_/g, "/")}=:`,
      });
      refused(a.status);
      assert.ok(!a.body.includes(SECRET));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? "", /assets\/app\.3f9a1c2b\.js/);
    });
  });

  describe(`${name}: case 5, a FIFO never blocks the server`, () => {
    test("a listed file replaced by a FIFO, and an unlisted FIFO in lazy mode: 404 at once, the server goes on", async () => {
      const s = await site();
      const cacheDir = await tempDir("lazy-cache-");
      dirs.push(cacheDir);
      await dropVariants(s.dir, "robots.txt");
      await rm(join(s.dir, "robots.txt"));
      execFileSync("mkfifo", [join(s.dir, "robots.txt")]);
      execFileSync("mkfifo", [join(s.dir, "uploads.json")]);
      const server = await start(s.dir, { lazy: { cacheDir } });
      // More than libuv's 4 threads, listed and unlisted at once.
      const probes = Array.from({ length: 12 }, (_, i) =>
        within(5000, get(server.port, i % 2 ? "/robots.txt" : "/uploads.json"), `FIFO probe ${i}`),
      );
      for (const a of await Promise.all(probes)) refused(a.status);
      const page = await within(2000, get(server.port, "/index.html", { "accept-encoding": "br" }), "after FIFOs");
      assert.equal(page.status, 200);
      assert.ok((await decode(page.body, "br")).equals(await s.original("index.html")));
    });
  });

  describe(`${name}: case 6, a listed path that became a directory is 404, never 5xx`, () => {
    test("a directory at robots.txt and at assets/style.css.br", async () => {
      const s = await site();
      const server = await start(s.dir);
      await dropVariants(s.dir, "robots.txt");
      await rm(join(s.dir, "robots.txt"));
      await mkdir(join(s.dir, "robots.txt"));
      refused((await within(5000, get(server.port, "/robots.txt"), "directory at robots.txt")).status);
      await rm(join(s.dir, "assets/style.css.br"));
      await mkdir(join(s.dir, "assets/style.css.br"));
      const css = await within(5000, get(server.port, "/assets/style.css", { "accept-encoding": "br" }), "br dir");
      assert.ok(css.status < 500, `status ${css.status}`);
      if (css.status === 200) {
        const decoded = await decode(css.body, css.headers["content-encoding"] as string | undefined);
        assert.ok(decoded.equals(await s.original("assets/style.css")));
      }
    });
  });
}
