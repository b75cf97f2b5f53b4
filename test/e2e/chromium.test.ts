// Debian's Chromium, driven by playwright-core, against `precompressor serve`: a real page decodes
// to its sources, and after a release a returning visitor gets RFC 9842 deltas under the defaults.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BrowserContext, chromium, type Page, type Response } from "playwright-core";
import { deltaSupport } from "../../src/delta.js";
import type { Manifest } from "../../src/manifest-format.js";
import { HASHED_NAME } from "../../src/serve/resolver.js";
import { ROOT, runCli } from "../support/helpers.js";
import { type CountingProxy, type Exchange, startCountingProxy } from "./counting-proxy.js";
import { freePort, stopChild, waitForPort, which } from "./web-servers.js";

const CHROMIUM = which("chromium");
const missing = CHROMIUM ? undefined : "chromium is not installed (apt-get install chromium)";
const noDeltas =
  deltaSupport.dcz || deltaSupport.dcb
    ? undefined
    : `Node ${process.version} writes no RFC 9842 deltas (dcz needs >= 22.19, dcb >= 24.15): run under Node 24`;
if (missing) console.log(`skipping the Chromium suite: ${missing}`);
else if (noDeltas) console.log(`skipping the Chromium delta visit: ${noDeltas}`);

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** A vendor bundle the way bundlers write one: ajv's 100-odd CommonJS files in a module table. */
function ajvBundle(): string {
  const base = join(ROOT, "node_modules", "ajv", "dist");
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".js")) files.push(path);
    }
  };
  walk(base);
  const modules = files.map(
    (f) => `${JSON.stringify(relative(base, f))}: function (require, module, exports) {\n${readFileSync(f, "utf8")}\n}`,
  );
  return `var __modules = {\n${modules.join(",\n")}\n};\n`;
}

/** The next release of a source: a comment every 61 lines and one new function, as small fixes do. */
function nextRelease(source: string, release: number): string {
  const lines = source.split("\n").map((line, i) => (i % 61 === 60 ? `${line}\n// release ${release}: ${i}` : line));
  return `${lines.join("\n")}\nfunction releaseNotes${release}() { return "release ${release}: ${lines.length} lines"; }\n`;
}

interface Release {
  dir: string;
  /** URL path -> SHA-256 (hex) of its source. */
  sources: Record<string, string>;
  app: string;
  manifest: Manifest;
}

/** Write a release (a page, a same-path lib.js, a hashed app, a stylesheet) and precompress it. */
async function buildRelease(
  root: string,
  release: number,
  lib: string,
  app: string,
  previous?: string,
): Promise<Release> {
  const dir = join(root, `release-${release}`);
  await mkdir(dir, { recursive: true });
  const appName = `app.${sha256(app).slice(0, 8)}.js`;
  assert.ok(HASHED_NAME.test(appName), `${appName} must look content-hashed`);
  const css = Array.from(
    { length: 60 },
    (_, i) => `.card-${i} { margin: ${i}px; color: #${(i * 4099).toString(16).padStart(6, "0").slice(0, 6)}; }`,
  ).join("\n");
  const html = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Release ${release}</title>
  <link rel="stylesheet" href="/style.css">
  <script src="/lib.js"></script>
  <script src="/${appName}"></script>
</head>
<body>
  <h1>Release ${release}</h1>
  ${Array.from({ length: 30 }, (_, i) => `<p class="card-${i}">Paragraph ${i} of a page that links a library, an app and a stylesheet.</p>`).join("\n  ")}
</body>
</html>
`;
  const files: Record<string, string> = { "index.html": html, "lib.js": lib, [appName]: app, "style.css": css };
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const run = await runCli([dir, "--no-cache", "-q", ...(previous ? ["--dictionary-from", previous] : [])]);
  assert.equal(run.code, 0, run.stderr);
  const manifest = JSON.parse(await readFile(join(dir, ".precompressor.json"), "utf8")) as Manifest;
  const sources = Object.fromEntries(
    Object.entries(files).map(([name, text]) => [name === "index.html" ? "/" : `/${name}`, sha256(text)]),
  );
  return { dir, sources, app: `/${appName}`, manifest };
}

/** `precompressor serve` as a child process on a free port. */
async function serve(dir: string, args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const bin = join(ROOT, "bin", "precompressor.js");
  const child = spawn(process.execPath, [bin, "serve", dir, "--port", String(port), ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d) => (stderr += d));
  await waitForPort(port, child, () => stderr);
  return { child, port };
}

/** Fetch each path in the page and hash what the browser decoded, with crypto.subtle. */
function hashesInPage(page: Page, paths: string[], cache: RequestCache): Promise<Record<string, string>> {
  return page.evaluate(
    async ({ paths, cache }) => {
      const out: Record<string, string> = {};
      for (const path of paths) {
        const body = await (await fetch(path, { cache })).arrayBuffer();
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
        out[path] = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
      }
      return out;
    },
    { paths, cache },
  );
}

/** The bytes a visit cost, printed per response and in total. */
function printWire(title: string, exchanges: Exchange[]): number {
  let total = 0;
  console.log(title);
  for (const e of exchanges) {
    total += e.bodyBytes + e.headerBytes;
    const dictionary = e.request["available-dictionary"] ? " (Available-Dictionary sent)" : "";
    console.log(
      `  ${e.status} ${e.path}: ${e.encoding ?? "identity"}, ${e.bodyBytes} B body + ${e.headerBytes} B headers${dictionary}`,
    );
  }
  console.log(`  total on the wire: ${total} B`);
  return total;
}

const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** One returning visitor: a browser profile, and one origin (the proxy) across releases. */
interface Visitor {
  page: Page;
  proxy: CountingProxy;
  /** Serve `release` behind the proxy and load its page; resolves with each response's Content-Encoding. */
  visit(release: Release): Promise<Map<string, string | undefined>>;
  close(): Promise<void>;
}

async function openVisitor(profile: string, serveArgs: string[] = []): Promise<Visitor> {
  const proxy = await startCountingProxy();
  // One context for every visit: the dictionary store lives in the profile.
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const servers: ChildProcess[] = [];
  return {
    page,
    proxy,
    async visit(release) {
      const { child, port } = await serve(release.dir, serveArgs);
      servers.push(child);
      proxy.target(port);
      const encodings = new Map<string, string | undefined>();
      const onResponse = (response: Response) => {
        encodings.set(new URL(response.url()).pathname, response.headers()["content-encoding"]);
      };
      page.on("response", onResponse);
      await page.goto(`${proxy.origin}/`, { waitUntil: "load" });
      page.off("response", onResponse);
      return encodings;
    },
    async close() {
      await context.close();
      await proxy.close();
      for (const child of servers) await stopChild(child);
    },
  };
}

/**
 * Visit release 2 after release 1 and return what went over the wire. lib.js is stale in the cache,
 * so its tag runs release 1's while Chrome revalidates in the background (one load late): wait for
 * that download, then hash what the cache holds without asking again (a new request would offer
 * release 2's own file as the dictionary).
 */
async function returningVisit(visitor: Visitor, second: Release): Promise<Exchange[]> {
  // Chrome stores a dictionary once its body is complete, off the request path.
  await new Promise((done) => setTimeout(done, 2500));
  const mark = visitor.proxy.log.length;
  await visitor.visit(second);
  const since = () => visitor.proxy.log.slice(mark);
  const downloaded = () => ["/lib.js", second.app].every((p) => since().some((e) => e.path === p && e.status === 200));
  for (let i = 0; i < 100 && !downloaded(); i++) await new Promise((done) => setTimeout(done, 50));
  const hashes = await hashesInPage(visitor.page, Object.keys(second.sources), "force-cache");
  assert.deepEqual(hashes, second.sources, "every body decodes to release 2's source");
  return since();
}

const fullResponses = (exchanges: Exchange[], path: string) =>
  exchanges.filter((e) => e.path === path && e.status === 200);

describe("Chromium against precompressor serve", { skip: missing }, () => {
  let root: string;
  let first: Release;
  let second: Release;
  let visitor: Visitor;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "precompressor-chromium-"));
    const lib = ajvBundle();
    const app = readFileSync(join(ROOT, "node_modules", "fast-check", "lib", "cjs", "fast-check.js"), "utf8");
    first = await buildRelease(root, 1, lib, app);
    if (!noDeltas) second = await buildRelease(root, 2, nextRelease(lib, 2), nextRelease(app, 2), first.dir);
    visitor = await openVisitor(join(root, "profile"));
  });
  after(async () => {
    await visitor?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  test("a real page: every resource decodes to its source, hashed in the page, and arrives as br or zstd", async () => {
    const encodings = await visitor.visit(first);
    const hashes = await hashesInPage(visitor.page, Object.keys(first.sources), "default");
    assert.deepEqual(hashes, first.sources);
    for (const path of ["/", "/lib.js", first.app, "/style.css"])
      assert.match(String(encodings.get(path)), /^(br|zstd)$/, path);
    const lib = visitor.proxy.log.find((e) => e.path === "/lib.js");
    assert.match(
      String(lib?.request["accept-encoding"]),
      /\bbr\b.*\bzstd\b|\bzstd\b.*\bbr\b/,
      "Chrome offers br and zstd",
    );
    assert.match(String(lib?.headers["cache-control"]), /stale-while-revalidate=86400/, "the default keeps it a day");
    printWire("visit 1 (release 1, nothing cached)", visitor.proxy.log);
  });

  test("after a release, Chrome sends Available-Dictionary and gets dcz/dcb for a same-path file and a hashed rename", {
    skip: noDeltas,
  }, async () => {
    for (const path of ["/lib.js", second.app])
      assert.ok(second.manifest.files[path.slice(1)]?.deltas?.length, `release 2 has deltas for ${path}`);
    const exchanges = await returningVisit(visitor, second);
    printWire("visit 2 (release 2, built with --dictionary-from release 1)", exchanges);
    for (const path of ["/lib.js", second.app]) {
      const full = fullResponses(exchanges, path);
      assert.ok(full.length, `${path} was downloaded`);
      for (const e of full) {
        assert.ok(e.request["available-dictionary"], `${path}: Available-Dictionary sent`);
        assert.match(String(e.encoding), /^(dcz|dcb)$/, `${path}: a delta`);
      }
      const br = second.manifest.files[path.slice(1)]?.variants.br?.size;
      console.log(`${path}: ${full.map((e) => `${e.encoding} ${e.bodyBytes} B`).join(", ")} instead of br ${br} B`);
    }
  });

  test("serve --stale-while-revalidate 0 (must-revalidate): Chrome keeps no dictionary for lib.js, it comes as br", {
    skip: noDeltas,
  }, async () => {
    const strict = await openVisitor(join(root, "profile-must-revalidate"), ["--stale-while-revalidate", "0"]);
    try {
      await strict.visit(first);
      const exchanges = await returningVisit(strict, second);
      printWire("visit 2 under must-revalidate", exchanges);
      const [lib] = fullResponses(exchanges, "/lib.js");
      assert.equal(lib?.request["available-dictionary"], undefined, "no dictionary kept");
      assert.equal(lib?.encoding, "br");
      // A hashed name is immutable for a year either way.
      assert.match(String(fullResponses(exchanges, second.app)[0]?.encoding), /^(dcz|dcb)$/);
    } finally {
      await strict.close();
    }
  });
});
