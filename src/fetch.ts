// Serve a precompressed folder from fetch-style servers (Hono, Bun.serve, Deno.serve): a Request in,
// a Response or `null` (not ours) out. Same decisions as the node adapter, from the same site core.
import { Readable } from "node:stream";
import { createLazyServer, type LazyServer } from "./lazy-serve.js";
import { decide, openSite, type Redecide, type Reply, releaseBody, type ServeStaticOptions } from "./node.js";

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
 * method other than GET and HEAD; answer those yourself (404, 405) or pass them on.
 * Throws `PrecompressorError` `E_MANIFEST` when the manifest cannot be read.
 *
 * @example
 * const handler = createFetchHandler("dist");
 * Bun.serve({ fetch: async (req) => (await handler(req)) ?? new Response("Not Found", { status: 404 }) });
 * // Hono: app.use(async (c, next) => (await handler(c.req.raw)) ?? next());
 */
export function createFetchHandler(dir: string, options: ServeStaticOptions = {}): FetchHandler {
  const site = openSite(dir, options);
  const lazy = options.lazy ? createLazyServer(dir, options.lazy) : undefined;

  async function answer(request: Request): Promise<Response | null> {
    const redecide: Redecide = (resolver, plain) =>
      decide(resolver, request.method, targetOf(request.url), (name) =>
        plain && name === "available-dictionary" ? null : request.headers.get(name),
      );
    const first = redecide(site.resolver);
    if (!first && lazy) return lazyResponse(lazy, request);
    const { reply, body, restated } = first?.file
      ? await site.load(first, redecide)
      : { reply: first, body: undefined };
    if (restated && lazy) {
      // Lazy mode compresses a file whose entry no longer matches it, rather than sending it as found.
      await releaseBody(body);
      return lazyResponse(lazy, request);
    }
    if (!reply || reply.status === 400) return null;
    if (!body) return respond(reply, reply.text ?? null);
    // readFile's buffers own a plain ArrayBuffer, which is what a Response body accepts.
    if (Buffer.isBuffer(body))
      return respond(reply, body.subarray(reply.start, reply.end + 1) as Uint8Array<ArrayBuffer>);
    // A file too large for memory, streamed from the descriptor its hash was checked on; closed when done or cancelled.
    return respond(
      reply,
      Readable.toWeb(body.createReadStream({ start: reply.start, end: reply.end })) as ReadableStream,
    );
  }

  const handler: FetchHandler = (request) =>
    request.method === "GET" || request.method === "HEAD" ? answer(request) : Promise.resolve(null);
  handler.close = () => {
    site.close();
    void lazy?.close();
  };
  handler.purge = async (path) => lazy?.purge(path);
  return handler;
}

/** Not in the manifest: lazy mode's answer, or `null`. */
async function lazyResponse(lazy: LazyServer, request: Request): Promise<Response | null> {
  const answer = await lazy.answer(
    request.method,
    targetOf(request.url),
    (name) => request.headers.get(name),
    request.signal,
  );
  if (!answer) return null;
  const body = answer.body ? (Readable.toWeb(answer.body.createReadStream()) as ReadableStream) : null;
  return new Response(body, { status: answer.status, headers: answer.headers });
}

function respond(reply: Reply, body: BodyInit | null): Response {
  return new Response(body, { status: reply.status, headers: reply.headers });
}

/** The path and query as the client sent them: `new URL()` would re-encode and normalise them. */
function targetOf(url: string): string {
  return url.replace(/^[a-z][a-z\d+.-]*:\/\/[^/?#]*/i, "") || "/";
}
