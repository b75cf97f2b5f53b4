// Serve a precompressed folder from fetch-style servers (Hono, Bun.serve, Deno.serve): a Request in,
// a Response or `null` (not ours) out. A thin adapter over the same core as the node one.
import { Readable } from "node:stream";
import { createCore } from "./core.js";
import { isGetOrHead, textReply } from "./http.js";
import type { ServeStaticOptions } from "./site.js";

export type { ServeStaticOptions } from "./site.js";

/** A fetch handler; `close()` stops the manifest watcher. */
export interface FetchHandler {
  (request: Request): Promise<Response | null>;
  close(): void;
  /** Lazy mode: drop one file's cached variants (a URL path), or all of them. */
  purge(path?: string): Promise<void>;
}

/**
 * Serve the precompressed folder `dir` to fetch-style servers. `null` means "not ours": a path the
 * manifest does not list, a malformed one (`..`, `%2f`, bad percent-encoding: never opened), or a
 * method other than GET and HEAD; answer those yourself (404, 405) or pass them on. An error inside
 * a request is a plain-text 500 (and a `PrecompressorWarning`), never a rejection.
 * Throws `PrecompressorError` `E_MANIFEST` when the manifest cannot be read.
 *
 * @example
 * const handler = createFetchHandler("dist");
 * Bun.serve({ fetch: async (req) => (await handler(req)) ?? new Response("Not Found", { status: 404 }) });
 * // Hono: app.use(async (c, next) => (await handler(c.req.raw)) ?? next());
 */
export function createFetchHandler(dir: string, options: ServeStaticOptions = {}): FetchHandler {
  const core = createCore(dir, options);

  async function answer(request: Request): Promise<Response | null> {
    const { reply, body } = await core.answer(
      request.method,
      targetOf(request.url),
      (name) => request.headers.get(name),
      request.signal,
    );
    if (!reply || reply.status === 400) return null;
    if (!body) return new Response(reply.text ?? null, reply);
    // readFile's buffers own a plain ArrayBuffer, which is what a Response body accepts.
    if (Buffer.isBuffer(body))
      return new Response(body.subarray(reply.start, reply.end + 1) as Uint8Array<ArrayBuffer>, reply);
    // Streamed from the descriptor that was checked; closed when done or cancelled.
    const stream = Readable.toWeb(body.createReadStream({ start: reply.start, end: reply.end }));
    return new Response(stream as ReadableStream, reply);
  }

  const handler: FetchHandler = async (request) => {
    if (!isGetOrHead(request.method)) return null;
    try {
      return await answer(request);
    } catch (error) {
      process.emitWarning(error instanceof Error ? error : String(error), "PrecompressorWarning");
      const { status, headers, text } = textReply(500, "Internal Server Error");
      return new Response(text, { status, headers });
    }
  };
  handler.close = () => core.close();
  handler.purge = (path) => core.purge(path);
  return handler;
}

/** The path and query as the client sent them: `new URL()` would re-encode and normalise them. */
function targetOf(url: string): string {
  return url.replace(/^[a-z][a-z\d+.-]*:\/\/[^/?#]*/i, "") || "/";
}
