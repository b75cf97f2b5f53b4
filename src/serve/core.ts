// The runtime-neutral answer to a GET or HEAD: the site's reply and body, or lazy mode's for what
// the manifest does not list (or no longer matches). The node and fetch adapters only translate.
import type { FileHandle } from "node:fs/promises";
import { decide, first, type HeaderReader, type Reply } from "./http.js";
import { createLazyServer } from "./lazy.js";
import { openSite, type Redecide, type ServeStaticOptions } from "./site.js";

/** A reply and its body: bytes in memory, or the open file to stream `start..end` from. */
export interface Answer {
  /** `null`: not ours (404 or `next()`). */
  reply: Reply | null;
  body?: Buffer | FileHandle;
}

/** Close a body that will not be sent. */
export async function releaseBody(body: Buffer | FileHandle | undefined): Promise<void> {
  if (body && !Buffer.isBuffer(body)) await body.close();
}

/**
 * The serving core of one folder. `answer` is synchronous when it needs no I/O (the hot path: bytes
 * in memory, or no body at all), else a promise.
 *
 * @example
 * const core = createCore("dist");
 * const answer = await core.answer("GET", "/app.js", (name) => headers[name]);
 */
export function createCore(dir: string, options: ServeStaticOptions = {}) {
  const site = openSite(dir, options);
  const lazy = options.lazy ? createLazyServer(dir, options.lazy, options) : undefined;

  function answer(
    method: string,
    target: string,
    header: HeaderReader,
    signal?: AbortSignal,
  ): Answer | Promise<Answer> {
    const dictionary = first(header("available-dictionary"));
    const redecide: Redecide = (by, plain) =>
      decide(
        "resolve" in by ? by.resolve(target, header("accept-encoding"), plain ? undefined : dictionary) : by,
        method,
        header,
      );
    const reply = redecide(site.resolver);
    if (!reply && lazy) return lazy.answer(method, target, header, signal);
    const body = reply?.file && site.cached(reply.file);
    if (!reply?.file || body) return { reply, body };
    return site.load(reply, redecide).then(async (loaded) => {
      // Lazy mode compresses a file whose entry no longer matches it (or is gone), rather than sending it as found.
      if (lazy && (loaded.restated || !loaded.reply)) {
        await releaseBody(loaded.body);
        return lazy.answer(method, target, header, signal);
      }
      return loaded;
    });
  }

  return {
    answer,
    /** Whether requests may wait on lazy mode (then pass a signal that aborts when the client leaves). */
    lazy: lazy !== undefined,
    close() {
      site.close();
      void lazy?.close();
    },
    purge: async (path?: string) => lazy?.purge(path),
  };
}
