// Serve a precompressed folder from node:http, Connect or Express: a thin adapter that writes the
// core's answer to a ServerResponse.
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream";
import { type Answer, createCore } from "./core.js";
import { isGetOrHead, mergeVary, type Reply, textReply } from "./http.js";
import type { ServeStaticOptions } from "./site.js";

// The adapter, and the core it is built on for adapters of other servers: nothing else.
export { type Answer, createCore } from "./core.js";
export { decide, type HeaderReader, type Reply } from "./http.js";
export type { ServeStaticOptions } from "./site.js";

/** A Node request handler that is also Connect/Express middleware; `close()` stops the manifest watcher. */
export interface StaticHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
  /** Stop watching the manifest (and lazy mode's reaper and threads). */
  close(): void;
  /** Lazy mode: drop one file's cached variants (a URL path), or all of them. */
  purge(path?: string): Promise<void>;
}

type Next = ((error?: unknown) => void) | undefined;

// What a reply may have set: none of it may stay on an error page (a Content-Encoding it lacks).
const OWN_HEADERS = [
  "content-type",
  "content-length",
  "content-encoding",
  "content-range",
  "etag",
  "last-modified",
  "accept-ranges",
  "cache-control",
  "use-as-dictionary",
  "location",
];

/**
 * Serve the precompressed folder `dir`: the best variant per request, with the right headers,
 * 304/206/416/406, and `next()` (404 without one) for what the manifest does not list. Methods other
 * than GET and HEAD go to `next()` (405 `Allow: GET, HEAD` without one); a malformed path goes to
 * `next()` too (400 without one), like serve-static, so a later route can still claim it. An error
 * goes to `next(error)` (a 500 without one); it never stops the server.
 * Throws `PrecompressorError` `E_MANIFEST` when the manifest cannot be read.
 *
 * @example
 * import express from "express";
 * import { serveStatic } from "precompressor/node";
 * express().use(serveStatic("dist")).listen(3000);
 * // or: http.createServer(serveStatic("dist")).listen(3000)
 */
export function serveStatic(dir: string, options: ServeStaticOptions = {}): StaticHandler {
  const core = createCore(dir, options);

  function serve(req: IncomingMessage, res: ServerResponse, next: Next) {
    const fail = (error: unknown) => failed(res, next, error);
    try {
      let signal: AbortSignal | undefined;
      if (core.lazy) {
        // A client that goes away stops waiting at once; the shared compression goes on.
        const abort = new AbortController();
        res.once("close", () => abort.abort());
        signal = abort.signal;
      }
      const answer = core.answer(req.method ?? "GET", targetOf(req), (name) => req.headers[name], signal);
      if (!(answer instanceof Promise)) return send(req, res, next, answer);
      answer.then((loaded) => send(req, res, next, loaded)).catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  const handler: StaticHandler = (req, res, next) => {
    if (isGetOrHead(req.method)) return serve(req, res, next);
    if (next) return next();
    writeReply(res, textReply(405, "Method Not Allowed", { Allow: "GET, HEAD" }));
  };
  handler.close = () => core.close();
  handler.purge = (path) => core.purge(path);
  return handler;
}

function send(req: IncomingMessage, res: ServerResponse, next: Next, { reply, body }: Answer) {
  if (!reply || (reply.status === 400 && next)) {
    if (next) next();
    else writeReply(res, textReply(404, "Not Found"));
    return;
  }
  if (reply.status === 301) reply.headers.Location = redirectTarget(req, reply.headers.Location ?? "/");
  if (!body || Buffer.isBuffer(body)) return writeReply(res, reply, body);
  try {
    writeReply(res, reply);
  } catch (error) {
    void body.close();
    throw error;
  }
  // Closes the descriptor when done, or when the client goes away.
  pipeline(body.createReadStream({ start: reply.start, end: reply.end }), res, () => {});
}

/** An error inside a request: `next(error)`, or a plain 500; once the head is out, only a cut connection. */
function failed(res: ServerResponse, next: Next, error: unknown): void {
  try {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const name of OWN_HEADERS) res.removeHeader(name);
    if (next) {
      next(error);
      return;
    }
    process.emitWarning(error instanceof Error ? error : String(error), "PrecompressorWarning");
    writeReply(res, textReply(500, "Internal Server Error"));
  } catch {
    res.destroy();
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
