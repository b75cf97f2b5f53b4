// Lazy mode in the adapters: a file the manifest does not list (added after the build) is answered
// from the lazy cache, compressed on its first request, or as identity until its variant is ready,
// through the same negotiation and HTTP decision as a built file.
import type { FileHandle } from "node:fs/promises";
import { resolve } from "node:path";
import { ALL_ENCODINGS, contentTypeOf, isCompressible } from "../formats.js";
import { createLazyCompressor, type LazyCompressor, type LazyOptions, type LazyVariant } from "../lazy/compressor.js";
import { DEFAULT_MIN_SIZE } from "../limits.js";

import { isSafeRelativePath } from "../paths.js";
import { decide, type HeaderReader, type Reply } from "./http.js";
import { createOpener, type Opened, openRegular } from "./open.js";
import {
  chooseEncoding,
  defaultCacheControl,
  etagOf,
  isHidden,
  type Resolution,
  type ResolverOptions,
  requestPath,
} from "./resolver.js";

/** `lazy` option of the adapters: everything of {@link LazyOptions} but the root, which is the served folder. */
export type LazyServeOptions = Omit<LazyOptions, "root">;

/** A lazy reply and the open file its body is `start..end` of; `reply: null` is not ours. */
export interface LazyLoaded {
  reply: Reply | null;
  body?: FileHandle;
}

export interface LazyServer {
  answer(method: string, url: string, header: HeaderReader, signal?: AbortSignal): Promise<LazyLoaded>;
  purge(path?: string): Promise<void>;
  close(): Promise<void>;
  readonly compressor: LazyCompressor;
}

/** The request path as a relative key, or `undefined` for anything lazy mode never looks at. */
function keyOf(url: string): string | undefined {
  const key = requestPath(url)?.path.slice(1);
  const file = key === "" || key?.endsWith("/") ? `${key}index.html` : key;
  return file !== undefined && isSafeRelativePath(file) && !isHidden(file) ? file : undefined;
}

/** The variant's own file, if it is still the one the compressor described (not just evicted). */
async function openVariant(variant: LazyVariant | undefined): Promise<Opened | undefined> {
  const opened = variant && (await openRegular(variant.path));
  if (opened?.stats.size === variant?.size) return opened;
  await opened?.handle.close();
  return undefined;
}

/**
 * Create the lazy half of an adapter over `root`; `resolverOptions` gives it the same server order
 * and `strict` as the manifest's negotiation.
 *
 * @example
 * const lazy = createLazyServer("dist", { cacheDir: "/var/cache/site" });
 * const { reply, body } = await lazy.answer("GET", "/uploads/report.json", (h) => req.headers[h], signal);
 */
export function createLazyServer(
  root: string,
  options: LazyServeOptions,
  resolverOptions: Pick<ResolverOptions, "encodings" | "strict"> = {},
): LazyServer {
  const compressor = createLazyCompressor({ ...options, root });
  const made = options.encodings ?? ALL_ENCODINGS;
  const order = (resolverOptions.encodings ?? ["br", "zstd", "gzip"]).filter((e) => made.includes(e));
  const strict = resolverOptions.strict ?? true;
  const minSize = options.minSize ?? DEFAULT_MIN_SIZE;
  // Never the cache folder, even when it sits inside the root.
  const opener = createOpener(root, { exclude: resolve(options.cacheDir) });

  async function answer(method: string, url: string, header: HeaderReader, signal?: AbortSignal) {
    const key = keyOf(url);
    if (!key || !isCompressible(key)) return { reply: null };
    // Opened and proven before the wait: a swap of the path meanwhile cannot change what is sent.
    const source = await opener.open(key);
    // What a symlink leads to must be servable by its own name too (not a `.br` beside its file).
    if (!source || !isCompressible(source.real)) {
      await source?.handle.close();
      return { reply: null };
    }
    const field = header("accept-encoding");
    const choice = chooseEncoding(order, field, strict);
    const variant =
      choice && choice !== 406 ? await compressor.variant(key, choice, signal).catch(() => undefined) : undefined;
    const coded = await openVariant(variant);
    // The variant as sent: only when its file is still the one described.
    const built = coded ? variant : undefined;
    const file = coded ?? source;
    await (coded ? source : undefined)?.handle.close();
    const { size, mtimeMs } = file.stats;
    // Not made (yet): identity, unless it is refused for a file that can have variants.
    const refused = !coded && source.stats.size >= minSize && chooseEncoding([], field, strict) === 406;
    const type = contentTypeOf(key);
    const mtime = Math.floor((built ? built.mtimeMs : mtimeMs) / 1000) * 1000;
    const resolution: Resolution = refused
      ? { status: 406, vary: "Accept-Encoding" }
      : {
          status: 200,
          path: key,
          encoding: built ? built.encoding : null,
          size,
          hash: built ? built.hash : "",
          // No content hash for identity without reading it: a weak validator from size and mtime.
          etag: built
            ? etagOf(built.hash, built.encoding)
            : `W/"${size.toString(36)}-${Math.floor(mtimeMs).toString(36)}"`,
          contentType: type,
          lastModified: new Date(mtime).toUTCString(),
          mtime,
          vary: "Accept-Encoding",
          cacheControl: defaultCacheControl(key, { hash: "", size, mtimeMs, type, variants: {} }),
          useAsDictionary: undefined,
        };
    const reply = decide(resolution, method, header);
    if (reply?.file) return { reply, body: file.handle };
    await file.handle.close();
    return { reply };
  }

  return {
    answer,
    purge: (path) =>
      compressor.purge(path === undefined ? undefined : (keyOf(path.startsWith("/") ? path : `/${path}`) ?? path)),
    close: () => compressor.close(),
    compressor,
  };
}
