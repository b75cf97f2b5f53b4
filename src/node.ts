// Serve a precompressed folder from node:http, Connect or Express. Also home of the site core that
// the fetch adapter shares: manifest (re)loading, HTTP preconditions and ranges, the hot-variant cache.
import { createHash } from "node:crypto";
import { type FSWatcher, readFileSync, unwatchFile, watch, watchFile } from "node:fs";
import { type FileHandle, open, readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { basename, dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream";
import { PrecompressorError } from "./errors.js";
import { formatDigest, hashBytes } from "./hash.js";
import { createLazyServer, type LazyServeOptions, type LazyServer } from "./lazy-serve.js";
import { MANIFEST_NAME, parseManifest } from "./manifest.js";
import { createResolver, type Resolved, type Resolver, type ResolverOptions } from "./resolver.js";

/** Options of {@link serveStatic} and `createFetchHandler`: the resolver's, plus where and how to load. */
export interface ServeStaticOptions extends ResolverOptions {
  /** Manifest path. Default `<dir>/.precompressor.json`. */
  manifest?: string;
  /** Reload the manifest when it changes on disk (a redeploy). Default `true`. */
  watch?: boolean;
  /** Memory for hot variants, keyed by content hash; `0` streams every body from disk. Default 32 MiB. */
  cacheBytes?: number;
  /** Larger files are streamed from disk, never cached. Default 1 MiB. */
  cacheFileBytes?: number;
  /**
   * Lazy mode: a compressible file under `dir` that the manifest does not list is compressed on its
   * first request into `lazy.cacheDir` (single flight, bounded, off the event loop) and served from there.
   */
  lazy?: LazyServeOptions;
}

/** What to answer, decided from the manifest and the request headers alone (no I/O). */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  /** Bytes `start..end` (inclusive) of this file are the body; absent for HEAD, 304, 4xx. */
  file?: Resolved;
  start: number;
  end: number;
  /** A short text body for error statuses. */
  text?: string;
}

/** How an adapter reads one request header (Node joins repeated lines with `, `). */
export type HeaderReader = (name: string) => string | string[] | null | undefined;

/**
 * Answers one request again against another resolver (a reloaded manifest, or the bytes really on
 * disk); `plain` ignores Available-Dictionary, so no delta is chosen.
 */
export type Redecide = (resolver: Resolver, plain?: boolean) => Reply | null;

/** A reply with its body: bytes in memory or the open file to stream `start..end` from. */
export interface Loaded {
  /** Maybe not the reply given to {@link Site.load}: a redeploy may change it; `null` is "not ours". */
  reply: Reply | null;
  /** Present when `reply.file` is. */
  body?: Buffer | FileHandle;
  /** The manifest's entry no longer matches the file on disk: `reply` describes the bytes found there. */
  restated?: boolean;
}

/** A loaded site: the current resolver, its file bodies, and the watcher that swaps it on redeploy. */
export interface Site {
  /** The resolver of the manifest now in force; read it once per request. */
  readonly resolver: Resolver;
  /** The body bytes, when they are in memory: no I/O, no await. */
  cached(file: Resolved): Buffer | undefined;
  /**
   * The body of a reply with a `file`, from memory or disk, always the bytes its headers describe;
   * while a deploy is in flight the reply may be redecided (see {@link openSite}).
   */
  load(reply: Reply, redecide: Redecide): Promise<Loaded>;
  /** Re-read the manifest now; resolves `true` when a new one took effect. */
  reload(): Promise<boolean>;
  close(): void;
}

// Debounce: an editor or rsync may fire several events for one write.
const RELOAD_DELAY_MS = 30;
const NOT_ON_DISK = new Set(["ENOENT", "ENOTDIR", "EISDIR"]);
// How long one request waits out a deploy in flight (disk and manifest disagree) at most.
const DEPLOY_WAIT_MS = 1000;
// A file changed more recently may still be being written in place (a build rewriting index.html).
const SETTLE_MS = 100;

/** A file as it is on disk now. */
interface OnDisk {
  /** The bytes (small files) or the open descriptor they were hashed from (large ones). */
  body: Buffer | FileHandle;
  hash: string;
  size: number;
  mtimeMs: number;
  /** Unchanged while read and for {@link SETTLE_MS} before: not being written in place. */
  settled: boolean;
}

function readManifestAt(path: string, options: ServeStaticOptions): { text: string; resolver: Resolver } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new PrecompressorError(
      "E_MANIFEST",
      `Cannot read the manifest ${path}: run precompressor on the folder first`,
      {
        path,
        cause,
      },
    );
  }
  return { text, resolver: resolverOf(text, path, options) };
}

function resolverOf(text: string, path: string, options: ServeStaticOptions): Resolver {
  try {
    // An entry that could leave the root or break a header is dropped by parseManifest, never served.
    const manifest = parseManifest(text, (message) =>
      process.emitWarning(`${path}: ${message}`, "PrecompressorWarning"),
    );
    return createResolver(manifest, options);
  } catch (cause) {
    throw new PrecompressorError("E_MANIFEST", `Invalid manifest ${path}: ${(cause as Error).message}`, {
      path,
      cause,
    });
  }
}

/**
 * Load `<dir>/.precompressor.json` and keep it current. The adapters are built on this; use it to
 * write one for another server.
 *
 * Atomic reloads: the resolver is immutable and swapped in one assignment, and a request reads it
 * once, so all its headers come from one manifest. Its body is always the bytes those headers
 * describe, verified by content hash: a small file when read (then kept in memory by hash), a large
 * one once per version on disk (then streamed from the descriptor it was hashed from, so a rename
 * during the stream cannot mix files). When the disk disagrees (a deploy in flight: files before
 * the manifest or the reverse) the request reloads the manifest, then waits up to 1 s for a new one
 * or for the file to settle (unchanged for 100 ms, so not half-written in place). If they still
 * disagree it is answered with the bytes really on disk, described by their own hash, size and
 * mtime with `Cache-Control: no-cache` (a delta falls back to a plain variant), or as "not ours"
 * when the file is gone: never a 5xx, never one version's bytes under another's headers. A torn or
 * invalid new manifest is ignored; the old one stays until a valid one appears.
 *
 * @example
 * const site = openSite("dist");
 * const reply = decide(site.resolver, "GET", "/app.js", (name) => headers[name]);
 */
export function openSite(dir: string, options: ServeStaticOptions = {}): Site {
  const root = resolve(dir);
  const manifestPath = resolve(options.manifest ?? join(root, MANIFEST_NAME));
  let { text, resolver } = readManifestAt(manifestPath, options);
  const cacheBytes = options.cacheBytes ?? 32 * 1024 * 1024;
  const cache = createBodyCache(cacheBytes);
  const cacheFileBytes = cacheBytes > 0 ? (options.cacheFileBytes ?? 1024 * 1024) : -1;

  // Settles when a new manifest takes effect: requests waiting out a deploy go on at once.
  let swapped = () => {};
  let nextSwap = new Promise<void>((done) => {
    swapped = done;
  });
  let pending: Promise<boolean> | undefined;
  async function readAndSwap(): Promise<boolean> {
    const next = await readFile(manifestPath, "utf8").catch(() => undefined);
    if (next === undefined || next === text) return false;
    let fresh: Resolver;
    try {
      fresh = resolverOf(next, manifestPath, options);
    } catch {
      return false; // torn or invalid: keep serving the old manifest until a valid one lands
    }
    text = next;
    resolver = fresh;
    swapped();
    nextSwap = new Promise((done) => {
      swapped = done;
    });
    return true;
  }
  function reload(): Promise<boolean> {
    pending ??= readAndSwap().finally(() => {
      pending = undefined;
    });
    return pending;
  }

  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(reload, RELOAD_DELAY_MS);
    timer.unref();
  };
  let watcher: FSWatcher | undefined;
  let polling = false;
  if (options.watch ?? true) {
    // Watch the folder, not the file: an atomic rename replaces the file a watcher would hold.
    const name = basename(manifestPath);
    try {
      watcher = watch(dirname(manifestPath), (_event, file) => {
        if (!file || file === name) schedule();
      });
      watcher.on("error", () => watcher?.close());
      watcher.unref();
    } catch {
      // No inotify (some containers, network mounts): poll the manifest's stat instead.
      watchFile(manifestPath, { interval: 1000, persistent: false }, schedule);
      polling = true;
    }
  }

  // Concurrent reads of one version of a small file are one read; each version of a large one is hashed once.
  const reads = new Map<string, Promise<Buffer>>();
  const digests = new Map<string, Promise<string>>();

  /** The file as it is now; `undefined` when it is not on disk. */
  async function fromDisk(path: string): Promise<OnDisk | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (error) {
      if (NOT_ON_DISK.has((error as NodeJS.ErrnoException).code ?? "")) return undefined;
      throw error;
    }
    try {
      const before = await handle.stat();
      // One version of one file: a rename brings a new inode, a write in place new times.
      const id = `${before.dev}:${before.ino}:${before.size}:${before.mtimeMs}:${before.ctimeMs}`;
      let bytes: Buffer | undefined;
      let digest: Promise<string> | undefined;
      // An empty file is bytes too: there is no range to stream.
      if (before.size <= Math.max(cacheFileBytes, 0)) {
        let read = reads.get(id);
        if (!read) {
          read = handle.readFile().finally(() => reads.delete(id));
          reads.set(id, read);
        }
        bytes = await read;
      } else {
        digest = digests.get(id);
        if (!digest) {
          if (digests.size >= 4096) digests.clear();
          digest = hashOfHandle(handle, before.size);
          digests.set(id, digest);
          digest.catch(() => digests.delete(id));
        }
      }
      const hash = bytes ? hashBytes(bytes) : await (digest as Promise<string>);
      const after = await handle.stat();
      const unchanged =
        after.size === before.size && after.mtimeMs === before.mtimeMs && after.ctimeMs === before.ctimeMs;
      // Written while hashed: that hash describes no version.
      if (!unchanged) digests.delete(id);
      if (bytes) {
        await handle.close();
        // Keyed by content, so right for any manifest that lists these bytes.
        cache.put(hash, bytes);
      }
      return {
        body: bytes ?? handle,
        hash,
        size: bytes?.length ?? before.size,
        mtimeMs: after.mtimeMs,
        settled: unchanged && Date.now() - Math.max(after.mtimeMs, after.ctimeMs) >= SETTLE_MS,
      };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async function load(first: Reply, redecide: Redecide): Promise<Loaded> {
    const deadline = Date.now() + DEPLOY_WAIT_MS;
    let reply: Reply | null = first;
    for (let attempt = 0; ; attempt++) {
      const file = reply?.file;
      if (!reply || !file) return { reply };
      const inMemory = cache.get(file.hash);
      if (inMemory) return { reply, body: inMemory };
      const disk = await fromDisk(join(root, file.path));
      if (disk?.hash === file.hash) return { reply, body: disk.body };
      // The disk is not what this manifest describes: a deploy is in flight.
      const delta = file.encoding === "dcb" || file.encoding === "dcz";
      const late = Date.now() >= deadline;
      if (disk && !delta && (late || (attempt > 0 && disk.settled))) {
        // Still disagreeing: send the bytes really there, described by their own hash and size.
        const actual = restate(file, disk);
        const restated = redecide({ ...resolver, resolve: () => actual });
        if (restated?.file) return { reply: restated, body: disk.body, restated: true };
        await release(disk);
        return { reply: restated };
      }
      await release(disk);
      if (delta) {
        // A delta is only right for the dictionary it was made from: a plain variant instead.
        reply = redecide(resolver, true);
        continue;
      }
      if (late) return { reply: null }; // listed, but not on disk
      // Reload at once (the watcher may lag, or be off), then wait for a new manifest or a settled file.
      if (attempt === 0) await reload();
      else await Promise.race([nextSwap, new Promise((done) => setTimeout(done, SETTLE_MS))]);
      reply = redecide(resolver);
    }
  }

  return {
    get resolver() {
      return resolver;
    },
    cached: (file) => cache.get(file.hash),
    load,
    reload,
    close() {
      clearTimeout(timer);
      watcher?.close();
      if (polling) unwatchFile(manifestPath, schedule);
    },
  };
}

/** The manifest's answer for a file, restated for the bytes really on disk (a deploy in flight). */
function restate(file: Resolved, disk: OnDisk): Resolved {
  const tag = (hash: string) => hash.slice(hash.indexOf("-") + 1).slice(0, 27);
  const mtime = Math.floor(disk.mtimeMs / 1000) * 1000;
  return {
    ...file,
    size: disk.size,
    hash: disk.hash,
    etag: file.etag.replace(tag(file.hash), tag(disk.hash)),
    mtime,
    lastModified: new Date(mtime).toUTCString(),
    // Transitional: revalidated, then a 304 once the new manifest lists these same bytes.
    cacheControl: "no-cache",
  };
}

async function release(disk: OnDisk | undefined): Promise<void> {
  if (disk && !Buffer.isBuffer(disk.body)) await disk.body.close();
}

/** `sha256-<base64url>` of a file's first `size` bytes, read by position (the stream then starts anew). */
async function hashOfHandle(handle: FileHandle, size: number): Promise<string> {
  const hash = createHash("sha256");
  const chunk = Buffer.allocUnsafe(Math.min(size, 1024 * 1024));
  for (let at = 0; at < size; ) {
    const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, size - at), at);
    if (bytesRead === 0) break; // shorter than its stat said: the hash cannot match
    hash.update(chunk.subarray(0, bytesRead));
    at += bytesRead;
  }
  return formatDigest(hash);
}

/** A least-recently-used map of verified bodies by content hash, bounded in bytes. */
function createBodyCache(maxBytes: number) {
  const bodies = new Map<string, Buffer>();
  let bytes = 0;
  return {
    get(hash: string): Buffer | undefined {
      const body = bodies.get(hash);
      if (body) {
        // Re-insert: Map order is the recency order.
        bodies.delete(hash);
        bodies.set(hash, body);
      }
      return body;
    },
    put(hash: string, body: Buffer): void {
      if (body.length > maxBytes || bodies.has(hash)) return;
      bodies.set(hash, body);
      bytes += body.length;
      for (const [old, oldBody] of bodies) {
        if (bytes <= maxBytes) break;
        bodies.delete(old);
        bytes -= oldBody.length;
      }
    },
  };
}

const isGetOrHead = (method: string | undefined) => method === "GET" || method === "HEAD";
const ETAGS = /(?:W\/)?"[^"]*"/g;
const opaque = (tag: string) => (tag.startsWith("W/") ? tag.slice(2) : tag);

function first(value: string | string[] | null | undefined): string | undefined {
  return (Array.isArray(value) ? value.join(", ") : value) ?? undefined;
}

/** RFC 9110 §8.8.3.2: weak comparison for If-None-Match, strong for If-Match and If-Range. */
function matches(field: string, etag: string, weak: boolean): boolean {
  if (field.trim() === "*") return true;
  for (const tag of field.match(ETAGS) ?? []) {
    if (weak ? opaque(tag) === opaque(etag) : tag === etag) return true;
  }
  return false;
}

/** An HTTP-date in ms, or `undefined` when it is not one (then the precondition is ignored). */
function dateOf(field: string | undefined): number | undefined {
  const ms = field === undefined ? Number.NaN : Date.parse(field);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * One `bytes=` range as `[start, end]`, `"unsatisfiable"`, or `undefined` to ignore the header
 * (invalid, another unit, or several ranges: a full 200 is a valid answer to those, RFC 9110 §14.2).
 */
function parseRange(field: string, size: number): [number, number] | "unsatisfiable" | undefined {
  const match = /^bytes=(\d*)-(\d*)$/i.exec(field.trim());
  if (!match) return undefined;
  const [, from = "", to = ""] = match;
  if (from === "") {
    if (to === "") return undefined;
    const suffix = Number(to);
    return suffix === 0 || size === 0 ? "unsatisfiable" : [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(from);
  if (to !== "" && Number(to) < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return [start, to === "" ? size - 1 : Math.min(Number(to), size - 1)];
}

const preparedHeaders = new WeakMap<Resolved, Record<string, string>>();

/** The full-response headers of a resolved file, built once per file and encoding. */
function headersOf(file: Resolved): Record<string, string> {
  let headers = preparedHeaders.get(file);
  if (headers) return headers;
  headers = {
    "Content-Type": file.contentType,
    "Content-Length": String(file.size),
    ETag: file.etag,
    "Last-Modified": file.lastModified,
    "Accept-Ranges": "bytes",
  };
  if (file.encoding) headers["Content-Encoding"] = file.encoding;
  if (file.vary) headers.Vary = file.vary;
  if (file.cacheControl) headers["Cache-Control"] = file.cacheControl;
  if (file.useAsDictionary) headers["Use-As-Dictionary"] = file.useAsDictionary;
  preparedHeaders.set(file, headers);
  return headers;
}

/** The headers a 304/412/416 keeps from the full response (RFC 9110 §15.4.5). */
function validatorHeaders(file: Resolved): Record<string, string> {
  const headers: Record<string, string> = { ETag: file.etag };
  if (file.vary) headers.Vary = file.vary;
  if (file.cacheControl) headers["Cache-Control"] = file.cacheControl;
  return headers;
}

const TEXT = "text/plain; charset=utf-8";
const textReply = (status: number, text: string, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { ...headers, "Content-Type": TEXT, "Content-Length": String(Buffer.byteLength(text)) },
  start: 0,
  end: -1,
  text,
});

/**
 * Decide the answer to a GET or HEAD from the manifest and the request headers alone, in RFC 9110
 * order: negotiation, If-Match / If-Unmodified-Since (412), If-None-Match / If-Modified-Since (304),
 * Range / If-Range (206/416). `null`: not ours; a 400 (malformed path) is also a reply, so a
 * standalone server can send it.
 *
 * @example
 * const reply = decide(site.resolver, req.method, req.url, (name) => req.headers[name]);
 */
export function decide(resolver: Resolver, method: string, url: string, header: HeaderReader): Reply | null {
  const resolved = resolver.resolve(url, header("accept-encoding"), first(header("available-dictionary")));
  if (!resolved) return null;
  if (resolved.status === 400) return textReply(400, "Bad Request");
  if (resolved.status === 301)
    return { status: 301, headers: { Location: resolved.location, "Content-Length": "0" }, start: 0, end: -1 };
  if (resolved.status === 406) return textReply(406, "Not Acceptable", { Vary: resolved.vary });
  const { etag, size } = resolved;
  const ifMatch = first(header("if-match"));
  if (
    ifMatch !== undefined
      ? !matches(ifMatch, etag, false)
      : resolved.mtime > (dateOf(first(header("if-unmodified-since"))) ?? Infinity)
  ) {
    return textReply(412, "Precondition Failed", validatorHeaders(resolved));
  }
  const ifNoneMatch = first(header("if-none-match"));
  // If-Modified-Since is ignored when If-None-Match is present (RFC 9110 §13.1.3).
  if (
    ifNoneMatch !== undefined
      ? matches(ifNoneMatch, etag, true)
      : resolved.mtime <= (dateOf(first(header("if-modified-since"))) ?? -1)
  ) {
    return { status: 304, headers: validatorHeaders(resolved), start: 0, end: -1 };
  }
  const full = headersOf(resolved);
  const range = method === "GET" ? first(header("range")) : undefined; // Range is defined for GET only
  const ifRange = first(header("if-range"));
  // If-Range with a date, or a weak or stale ETag: ignore Range and send it all.
  const span = range && (ifRange === undefined || ifRange.trim() === etag) ? parseRange(range, size) : undefined;
  if (span === "unsatisfiable") {
    return textReply(416, "Range Not Satisfiable", {
      ...validatorHeaders(resolved),
      "Content-Range": `bytes */${size}`,
    });
  }
  const body = method === "GET" ? resolved : undefined;
  if (!span) return { status: 200, headers: full, file: body, start: 0, end: size - 1 };
  const [start, end] = span;
  const headers = {
    ...full,
    "Content-Length": String(end - start + 1),
    "Content-Range": `bytes ${start}-${end}/${size}`,
  };
  return { status: 206, headers, file: body, start, end };
}

/**
 * The value of `Vary` after adding `Accept-Encoding` to what an earlier middleware set.
 *
 * @example
 * mergeVary("Origin", "Accept-Encoding") // "Origin, Accept-Encoding"
 */
export function mergeVary(prior: string, add: string): string {
  const names = prior.split(",").map((name) => name.trim().toLowerCase());
  return names.includes("*") || names.includes(add.toLowerCase()) ? prior : `${prior}, ${add}`;
}

/** A Node request handler that is also Connect/Express middleware; `close()` stops the manifest watcher. */
export interface StaticHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
  /** Stop watching the manifest (and lazy mode's reaper and threads). */
  close(): void;
  /** Lazy mode: drop one file's cached variants (a URL path), or all of them. */
  purge(path?: string): Promise<void>;
}

/**
 * Serve the precompressed folder `dir`: the best variant per request, with the right headers,
 * 304/206/416/406, and `next()` (404 without one) for what the manifest does not list. Methods other
 * than GET and HEAD go to `next()` (405 `Allow: GET, HEAD` without one); a malformed path goes to
 * `next()` too (400 without one), like serve-static, so a later route can still claim it.
 * Throws `PrecompressorError` `E_MANIFEST` when the manifest cannot be read.
 *
 * @example
 * import express from "express";
 * import { serveStatic } from "precompressor/node";
 * express().use(serveStatic("dist")).listen(3000);
 * // or: http.createServer(serveStatic("dist")).listen(3000)
 */
export function serveStatic(dir: string, options: ServeStaticOptions = {}): StaticHandler {
  const site = openSite(dir, options);
  const lazy = options.lazy ? createLazyServer(dir, options.lazy) : undefined;

  type Next = ((error?: unknown) => void) | undefined;

  function serve(req: IncomingMessage, res: ServerResponse, next: Next) {
    const redecide: Redecide = (resolver, plain) =>
      decide(resolver, req.method ?? "GET", targetOf(req), (name) =>
        plain && name === "available-dictionary" ? undefined : req.headers[name],
      );
    const reply = redecide(site.resolver);
    // The hot path: no body, or bytes in memory, answered without I/O or await.
    const body = reply?.file && site.cached(reply.file);
    if (!reply?.file || body) return send(req, res, next, reply, body);
    site
      .load(reply, redecide)
      .then(async (loaded) => {
        // Lazy mode compresses a file whose entry no longer matches it, rather than sending it as found.
        if (loaded.restated && lazy) {
          await releaseBody(loaded.body);
          return serveLazy(lazy, req, res, next);
        }
        send(req, res, next, loaded.reply, loaded.body);
      })
      .catch((error: unknown) => {
        if (next) next(error);
        else if (res.headersSent) res.destroy();
        else writeReply(res, textReply(500, "Internal Server Error"));
      });
  }

  function send(
    req: IncomingMessage,
    res: ServerResponse,
    next: Next,
    reply: Reply | null,
    body?: Buffer | FileHandle,
  ) {
    if (!reply && lazy) return void serveLazy(lazy, req, res, next);
    if (!reply || (reply.status === 400 && next)) {
      if (next) next();
      else writeReply(res, textReply(404, "Not Found"));
      return;
    }
    if (reply.status === 301) reply.headers.Location = redirectTarget(req, reply.headers.Location ?? "/");
    if (!body || Buffer.isBuffer(body)) return writeReply(res, reply, body);
    writeReply(res, reply);
    // Closes the descriptor when done, or when the client goes away.
    pipeline(body.createReadStream({ start: reply.start, end: reply.end }), res, () => {});
  }

  const handler: StaticHandler = (req, res, next) => {
    if (isGetOrHead(req.method)) return serve(req, res, next);
    if (next) return next();
    writeReply(res, textReply(405, "Method Not Allowed", { Allow: "GET, HEAD" }));
  };
  handler.close = () => {
    site.close();
    void lazy?.close();
  };
  handler.purge = async (path) => lazy?.purge(path);
  return handler;
}

/** Close a body that will not be sent. */
export async function releaseBody(body: Buffer | FileHandle | undefined): Promise<void> {
  if (body && !Buffer.isBuffer(body)) await body.close();
}

/** Not in the manifest (or its entry is stale): lazy mode's answer, or `next()`/404 when it has none. */
async function serveLazy(
  lazy: LazyServer,
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) {
  // A client that goes away stops waiting at once; the shared compression goes on.
  const abort = new AbortController();
  res.once("close", () => abort.abort());
  try {
    const answer = await lazy.answer(req.method ?? "GET", targetOf(req), (name) => req.headers[name], abort.signal);
    if (!answer) {
      if (next) next();
      else writeReply(res, textReply(404, "Not Found"));
      return;
    }
    const prior = res.getHeader("vary");
    res.writeHead(
      answer.status,
      prior ? { ...answer.headers, Vary: mergeVary(String(prior), "Accept-Encoding") } : answer.headers,
    );
    if (answer.body) pipeline(answer.body.createReadStream(), res, () => {});
    else res.end();
  } catch (error) {
    if (next) next(error);
    else if (res.headersSent) res.destroy();
    else writeReply(res, textReply(500, "Internal Server Error"));
  }
}

/** Write a reply's head, then the body slice or text; a piped file body follows when neither is given. */
function writeReply(res: ServerResponse, reply: Reply, body?: Buffer): void {
  let headers = reply.headers;
  const prior = headers.Vary && res.getHeader("vary");
  if (prior) headers = { ...headers, Vary: mergeVary(String(prior), headers.Vary ?? "") };
  res.writeHead(reply.status, headers);
  if (body)
    res.end(reply.start === 0 && reply.end === body.length - 1 ? body : body.subarray(reply.start, reply.end + 1));
  else if (!reply.file) res.end(reply.text);
}

/** The request target as a path: Express strips its mount point; an absolute-form target keeps its path. */
function targetOf(req: IncomingMessage): string {
  const url = req.url ?? "/";
  return url[0] === "/" ? url : url.replace(/^[a-z][a-z\d+.-]*:\/\/[^/?#]*/i, "") || "/";
}

/** Under an Express mount the client's path is `originalUrl`; one leading slash stops `//evil.example` redirects. */
function redirectTarget(req: IncomingMessage, location: string): string {
  const original = (req as { originalUrl?: string }).originalUrl;
  if (original === undefined || original === req.url) return location.replace(/^\/+/, "/");
  const cut = original.indexOf("?");
  const path = cut < 0 ? original : original.slice(0, cut);
  return `${path}/${cut < 0 ? "" : original.slice(cut)}`.replace(/^\/+/, "/");
}
