// Shared by the nginx and Caddy suites: a precompressed site, the block `precompressor config`
// prints for it, a real server started on 127.0.0.1 as a child process, and the checks both pass.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { contentTypeOf } from "../../src/formats.js";
import type { Encoding, Manifest } from "../../src/manifest-format.js";
import { createResolver, VARIANT_SUFFIX } from "../../src/serve/resolver.js";
import { runCli } from "../support/helpers.js";
import { entryOf, get, makeSite, type Site } from "../support/http.js";

/** The absolute path of a program, or undefined (sbin is searched too: nginx lives there). */
export function which(program: string): string | undefined {
  try {
    const path = `${process.env.PATH ?? ""}:/usr/sbin:/sbin`;
    return execFileSync("sh", ["-c", `command -v ${program}`], { env: { ...process.env, PATH: path } })
      .toString()
      .trim();
  } catch {
    return undefined;
  }
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

/** Resolves once `port` accepts connections; rejects with the log if the child exits first or after 15 s. */
export async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited early:\n${log()}`);
    const open = await new Promise<boolean>((done) => {
      const socket = new Socket();
      socket.once("connect", () => done(true)).once("error", () => done(false));
      socket.connect(port, "127.0.0.1");
    }).finally(() => undefined);
    if (open) return;
    await new Promise((done) => setTimeout(done, 50));
  }
  throw new Error(`port ${port} never opened:\n${log()}`);
}

/** SIGTERM, then SIGKILL after 5 s; resolves when the child has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once("exit", done));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

// Names whose Cache-Control the servers must decide like the resolver (not in the fixture site).
const NAMED = [
  "assets/chunk-DfG8a2_x.js",
  "assets/out-5XRPZ2LJ.js",
  "assets/deadbeef.js",
  "assets/bundle.abcdefgh.js",
  "assets/jquery-3.7.1.min.js",
  "report-20240101.txt",
  "page.0a3368c1.html",
  "OLD.HTM",
];
// Never served, with the fixture's own `.hidden.txt` and the manifest.
const HIDDEN = [".precompressor.lock", "assets/.pc-0123456789abcdef0123.tmp", "assets/.env", ".well-known/.secret"];

/** A precompressed site plus the files above, readable by a server's unprivileged workers. */
async function serverSite(): Promise<{ site: Site; manifest: Manifest }> {
  const site = await makeSite();
  const manifest = structuredClone(site.manifest);
  for (const key of [...NAMED, ...HIDDEN]) {
    await mkdir(join(site.dir, key, ".."), { recursive: true });
    await writeFile(join(site.dir, key), `secret-or-not ${key}\n`);
    if (NAMED.includes(key)) manifest.files[key] = await entryOf(site.dir, key, contentTypeOf(key));
  }
  // mkdtemp makes 0700 folders; nginx's workers run as another user.
  await chmod(site.dir, 0o755);
  return { site, manifest };
}

/** How one suite starts its server from the printed block; the returned child is stopped after. */
export type StartServer = (config: string, port: number, dir: string) => Promise<{ child: ChildProcess; log: string }>;

/** What a server does where it falls short of the resolver: the comment in its block says so. */
export interface Limits {
  /** Who wins `gzip;q=1, br;q=0.1`: the q-values (`gzip`) or the server's order (`br`). */
  gzipOverBr: "gzip" | "br";
  /** Status of `Range: bytes=0-9` on a br response. */
  codedRange: 200 | 206;
  /** Whether an identity response of a file with variants has `Vary: Accept-Encoding`. */
  identityVary: boolean;
}

/** The checks every generated config must pass against its real server. */
export function webServerSuite(
  name: "nginx" | "caddy",
  missing: string | undefined,
  encodings: readonly Encoding[],
  limits: Limits,
  start: StartServer,
): void {
  describe(`${name} with the block \`precompressor config ${name}\` prints`, { skip: missing }, () => {
    let site: Site;
    let manifest: Manifest;
    let port: number;
    let child: ChildProcess | undefined;

    before(async () => {
      ({ site, manifest } = await serverSite());
      port = await freePort();
      const printed = await runCli(["config", name, site.dir, "--listen", `127.0.0.1:${port}`]);
      assert.equal(printed.code, 0, printed.stderr);
      assert.match(printed.stdout, new RegExp(`root \\*? ?"${site.dir}"`), "root is the absolute path");
      const started = await start(printed.stdout, port, join(site.dir, ".."));
      child = started.child;
      await waitForPort(port, child, () => (existsSync(started.log) ? readFileSync(started.log, "utf8") : ""));
    });
    after(async () => {
      if (child) await stopChild(child);
      await site?.remove();
    });

    const served = () => Object.keys(site.manifest.files).filter((key) => !key.startsWith("."));

    test(`every ${encodings.join(", ")} variant is sent byte for byte, with Vary: Accept-Encoding`, async () => {
      let checked = 0;
      for (const key of served()) {
        for (const encoding of encodings) {
          if (!site.manifest.files[key]?.variants[encoding]) continue;
          const answer = await get(port, `/${encodeURI(key)}`, { "accept-encoding": encoding });
          assert.equal(answer.status, 200, key);
          assert.equal(answer.headers["content-encoding"], encoding, `${key} ${encoding}`);
          assert.match(String(answer.headers.vary), /accept-encoding/i, `${key} ${encoding}: Vary`);
          assert.ok(answer.body.equals(await readFile(join(site.dir, key + VARIANT_SUFFIX[encoding]))), key);
          checked++;
        }
      }
      assert.ok(checked >= 10, `${checked} variants checked`);
    });

    test("without Accept-Encoding every file is its original bytes", async () => {
      for (const key of served()) {
        const answer = await get(port, `/${encodeURI(key)}`);
        assert.equal(answer.status, 200, key);
        assert.equal(answer.headers["content-encoding"], undefined, key);
        assert.ok(answer.body.equals(await site.original(key)), key);
      }
    });

    test("the manifest, the lock, temp files and dotfiles get 403 or 404; .well-known/ is served", async () => {
      for (const key of [".precompressor.json", ".hidden.txt", ...HIDDEN]) {
        for (const encoding of ["", "br", "gzip"]) {
          const answer = await get(port, `/${key}`, encoding ? { "accept-encoding": encoding } : {});
          assert.ok([403, 404].includes(answer.status), `${key}: ${answer.status}`);
          assert.ok(!answer.body.includes("secret") && !answer.body.includes('"files"'), key);
        }
      }
      const known = await get(port, "/.well-known/security.txt");
      assert.equal(known.status, 200);
      assert.ok(known.body.equals(await site.original(".well-known/security.txt")));
    });

    test("what the block's comment says the server cannot do", async () => {
      const css = "/assets/style.css";
      const coding = async (field: string) =>
        (await get(port, css, { "accept-encoding": field })).headers["content-encoding"];
      assert.equal(await coding("br;q=0, gzip"), "gzip", "q=0 refuses");
      assert.equal(await coding("gzip;q=1, br;q=0.1"), limits.gzipOverBr);
      assert.equal(await coding("zstd"), encodings.includes("zstd") ? "zstd" : undefined);
      assert.equal(await coding("*"), undefined, "* selects no variant");
      assert.equal(await coding("x-gzip"), undefined, "x-gzip selects no variant");
      const refused = await get(port, css, { "accept-encoding": "identity;q=0" });
      assert.equal(refused.status, 200, "identity;q=0: identity, not 406");
      assert.equal(refused.headers["content-encoding"], undefined);
      const range = await get(port, css, { "accept-encoding": "br", range: "bytes=0-9" });
      assert.equal(range.status, limits.codedRange, "Range of a br response");
      const identity = await get(port, css);
      assert.equal(
        /accept-encoding/i.test(String(identity.headers.vary ?? "")),
        limits.identityVary,
        "Vary on identity",
      );
    });

    test("Cache-Control by the resolver's rule: hashed names immutable, HTML no-cache", async () => {
      // Neither server sends a delta: the resolver without dictionaries is the reference.
      const resolver = createResolver(manifest, { staleWhileRevalidate: 0 });
      const paths = [
        "/",
        "/docs/",
        ...Object.keys(manifest.files)
          .filter((k) => !k.startsWith("."))
          .map(encodeURI)
          .map((k) => `/${k}`),
      ];
      for (const path of paths) {
        const expected = resolver.resolve(path, "br");
        assert.ok(expected?.status === 200, path);
        const answer = await get(port, path, { "accept-encoding": "br" });
        assert.equal(answer.headers["cache-control"], expected.cacheControl, path);
      }
    });
  });
}
