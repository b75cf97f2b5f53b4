// Shared by the serving tests: a real precompressed site in a temp folder, real listening servers,
// raw HTTP requests (no client-side path normalisation or decompression), and body decoding.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { type Agent, createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zlib from "node:zlib";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { precompress } from "../../src/index.js";
import type { Manifest, ManifestEntry } from "../../src/manifest-format.js";

const FIXTURE = new URL("../../fixtures/site/", import.meta.url).pathname;
export const MANIFEST = ".precompressor.json";

export interface Site {
  dir: string;
  manifest: Manifest;
  /** The original bytes of a manifest key. */
  original(key: string): Promise<Buffer>;
  remove(): Promise<void>;
}

/** A larger text for ranges deep into a file (streamed from disk when the cache is off). */
export const LARGE_TEXT = Array.from({ length: 6_000 }, (_, i) => `line ${i}: ${"lorem ipsum ".repeat(i % 7)}\n`).join(
  "",
);

let template: Promise<string> | undefined;

/** A fresh copy of the precompressed test site, in its own temp folder (compressed once per process). */
export async function makeSite(): Promise<Site> {
  template ??= buildTemplate();
  const dir = await mkdtemp(join(tmpdir(), "precompressor-serve-"));
  await cp(await template, dir, { recursive: true, preserveTimestamps: true });
  const manifest = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as Manifest;
  return {
    dir,
    manifest,
    original: (key) => readFile(join(dir, key)),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Copy the fixture site's originals (not its generated variants) plus a few extra cases, then run `precompress`. */
async function buildTemplate(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "precompressor-template-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  await cp(FIXTURE, dir, {
    recursive: true,
    // A `.gz`/`.br`/`.zst` beside its original is generated; `notes.tar.gz` (no `notes.tar`) is the user's own.
    filter: (source) =>
      !source.endsWith(MANIFEST) && (!/\.(gz|br|zst)$/.test(source) || !existsSync(source.replace(/\.\w+$/, ""))),
  });
  await mkdir(join(dir, ".well-known"), { recursive: true });
  await mkdir(join(dir, "big"), { recursive: true });
  await writeFile(join(dir, ".well-known/security.txt"), "Contact: mailto:security@example.com\n".repeat(40));
  await writeFile(join(dir, ".hidden.txt"), "secret ".repeat(300));
  await writeFile(join(dir, "empty.txt"), "");
  await writeFile(join(dir, "big/large.txt"), LARGE_TEXT);
  await precompress({ dir, cache: false });
  const manifestPath = join(dir, MANIFEST);
  const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as Manifest;
  // Files the scan may skip today (a user's own .gz, dotfiles, empty files) are added by hand so the
  // serving rules for them are still tested; a no-op once precompress lists them itself.
  for (const [key, type] of [
    ["downloads/notes.tar.gz", "application/gzip"],
    [".hidden.txt", "text/plain; charset=utf-8"],
    [".well-known/security.txt", "text/plain; charset=utf-8"],
    ["empty.txt", "text/plain; charset=utf-8"],
  ] as const) {
    manifest.files[key] ??= await entryOf(dir, key, type);
  }
  await writeFile(manifestPath, JSON.stringify(manifest));
  return dir;
}

/** A manifest entry without variants, computed from the file itself. */
export async function entryOf(dir: string, key: string, type: string): Promise<ManifestEntry> {
  const bytes = await readFile(join(dir, key));
  const info = await stat(join(dir, key));
  return { hash: sha256(bytes), size: bytes.length, mtimeMs: info.mtimeMs, type, variants: {} };
}

export function sha256(bytes: Uint8Array): string {
  return `sha256-${createHash("sha256").update(bytes).digest("base64url")}`;
}

export interface Listening {
  server: Server;
  port: number;
  origin: string;
  close(): Promise<void>;
}

/** Listen on 127.0.0.1 with an ephemeral port. */
export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Listening> {
  const server = createServer(handler);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One raw HTTP/1.1 request: the path is sent exactly as given, the body is returned undecoded. */
export function get(
  port: number,
  path: string,
  headers: Record<string, string | string[]> = {},
  method = "GET",
  agent: Agent | false = false,
): Promise<Answer> {
  return new Promise((done, fail) => {
    const req = request({ host: "127.0.0.1", port, path, method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", fail);
    });
    req.on("error", fail);
    req.end();
  });
}

/**
 * A node:http handler that hands requests to a fetch handler the way Bun and Deno do: a target no
 * URL can hold is refused (400) before the handler sees it, `null` becomes a 404, a thrown error a
 * 500, and a client that goes away cancels the body.
 */
export function fetchBridge(handler: (request: Request) => Promise<Response | null>) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    let request: Request;
    try {
      const headers = new Headers();
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        headers.append(req.rawHeaders[i] ?? "", req.rawHeaders[i + 1] ?? "");
      // An origin-form target joins the Host; an absolute-form one stands alone; `*` and the like fail.
      const target = req.url ?? "/";
      const url = target.startsWith("/") ? `http://${req.headers.host}${target}` : target;
      request = new Request(url, { method: req.method, headers });
    } catch {
      res.writeHead(400).end();
      return;
    }
    let response: Response;
    try {
      response = (await handler(request)) ?? new Response("Not Found", { status: 404 });
    } catch {
      res.writeHead(500).end();
      return;
    }
    const out: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      out[name] = value;
    });
    res.writeHead(response.status, out);
    const reader = req.method === "HEAD" ? undefined : response.body?.getReader();
    res.once("close", () => void reader?.cancel().catch(() => {}));
    for (let chunk = await reader?.read(); chunk && !chunk.done; chunk = await reader?.read()) res.write(chunk.value);
    res.end();
  };
}

const requireCjs = createRequire(import.meta.url);

/** Decode a body by its Content-Encoding, with the platform's own decoders (zstd: Node 22.15+ or the bindings). */
export async function decode(body: Buffer, encoding: string | string[] | undefined): Promise<Buffer> {
  if (encoding === undefined) return body;
  if (encoding === "gzip") return gunzipSync(body);
  if (encoding === "br") return brotliDecompressSync(body);
  if (encoding === "zstd") {
    const native = (zlib as unknown as { zstdDecompressSync?: (b: Buffer) => Buffer }).zstdDecompressSync;
    if (native) return native(body);
    const bindings = requireCjs("@mongodb-js/zstd/bindings.js") as { decompress(b: Buffer): Promise<Buffer> };
    return bindings.decompress(body);
  }
  throw new Error(`unexpected Content-Encoding ${String(encoding)}`);
}

/** Assert a 200 whose decoded body is byte for byte the original file. */
export async function assertServes(site: Site, answer: Answer, key: string, encoding?: string): Promise<void> {
  assert.equal(answer.status, 200, `status for ${key}`);
  assert.equal(answer.headers["content-encoding"], encoding, `Content-Encoding for ${key}`);
  assert.equal(answer.headers["content-length"], String(answer.body.length));
  const original = await site.original(key);
  assert.ok(
    (await decode(answer.body, encoding)).equals(original),
    `decoded body of ${key} (${encoding ?? "identity"})`,
  );
}

/** Wait until `check` passes (a redeploy is picked up asynchronously), or fail after `ms`. */
export async function eventually(check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((done) => setTimeout(done, 25));
  }
}
