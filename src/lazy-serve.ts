// Lazy mode in the adapters: a file the manifest does not list (added after the build) is served
// from the lazy cache, compressed on its first request, or as identity until its variant is ready.
import { type FileHandle, open, realpath } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { ALL_ENCODINGS, contentTypeOf, isCompressible } from "./formats.js";
import { createLazyCompressor, type LazyCompressor, type LazyOptions } from "./lazy.js";
import type { Encoding, ManifestEntry } from "./manifest-format.js";
import { createResolver, defaultCacheControl } from "./resolver.js";

/** `lazy` option of the adapters: everything of {@link LazyOptions} but the root, which is the served folder. */
export type LazyServeOptions = Omit<LazyOptions, "root">;

/** A lazy answer: status, headers, and for a 200 to a GET the open file to stream whole. */
export interface LazyAnswer {
  status: 200 | 304 | 406;
  headers: Record<string, string>;
  body?: FileHandle;
}

export interface LazyServer {
  /** `null`: not a file lazy mode serves (missing, outside the root, dotfile, not compressible). */
  answer(
    method: string,
    url: string,
    header: (name: string) => string | string[] | null | undefined,
    signal: AbortSignal,
  ): Promise<LazyAnswer | null>;
  purge(path?: string): Promise<void>;
  close(): Promise<void>;
  readonly compressor: LazyCompressor;
}

/** The request path as a key, or `undefined` for anything a static server must refuse (as the resolver does). */
function keyOf(url: string): string | undefined {
  const raw = url.split("?")[0] ?? "";
  if (raw[0] !== "/" || /\\|%(?:2f|5c|00)/i.test(raw)) return undefined;
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  // No NUL, no empty segment, nothing starting with a dot: so no `.`/`..`, dotfile or manifest.
  if (/\0|\/\/|\/\./.test(path)) return undefined;
  const key = path.slice(1);
  return key === "" || key.endsWith("/") ? `${key}index.html` : key;
}

const first = (v: string | string[] | null | undefined) => (Array.isArray(v) ? v.join(", ") : (v ?? undefined));

/**
 * Create the lazy half of an adapter over `root`.
 *
 * @example
 * const lazy = createLazyServer("dist", { cacheDir: "/var/cache/site" });
 * const answer = await lazy.answer("GET", "/uploads/report.json", (h) => req.headers[h], signal);
 */
export function createLazyServer(root: string, options: LazyServeOptions): LazyServer {
  const compressor = createLazyCompressor({ ...options, root });
  const encodings = options.encodings ?? [...ALL_ENCODINGS];
  // The resolver's negotiation, over a file that has every lazy encoding: same q rules as the manifest path.
  const variants = Object.fromEntries(encodings.map((e) => [e, { size: 1, hash: "sha256-" }]));
  const entry: ManifestEntry = { hash: "sha256-", size: 1, mtimeMs: 0, type: "", variants };
  const negotiation = createResolver({ version: 1, generator: "", settings: {}, files: { f: entry } });
  const realRoot = realpath(resolve(root)).catch(() => resolve(root));

  async function answer(
    method: string,
    url: string,
    header: (name: string) => string | string[] | null | undefined,
    signal: AbortSignal,
  ): Promise<LazyAnswer | null> {
    const key = keyOf(url);
    if (!key || !isCompressible(key)) return null;
    // Proven inside the root after resolving symlinks, or never opened.
    const path = await realpath(join(root, key)).catch(() => undefined);
    if (!path?.startsWith((await realRoot) + sep)) return null;
    const choice = negotiation.resolve("/f", first(header("accept-encoding")));
    const type = contentTypeOf(key);
    const headers: Record<string, string> = { "Content-Type": type, Vary: "Accept-Encoding" };
    if (choice?.status === 406)
      return {
        status: 406,
        headers: { ...headers, "Content-Type": "text/plain; charset=utf-8", "Content-Length": "0" },
      };
    const encoding = choice?.status === 200 ? (choice.encoding as Encoding | null) : null;
    const variant = encoding ? await compressor.variant(key, encoding, signal) : undefined;
    // A variant just evicted is gone: identity instead.
    const handle =
      (variant && (await open(variant.path).catch(() => undefined))) || (await open(path).catch(() => undefined));
    if (!handle) return null;
    const stats = await handle.stat();
    if (!stats.isFile()) {
      await handle.close();
      return null;
    }
    const coded = variant && stats.size === variant.size ? variant : undefined;
    headers["Content-Length"] = String(stats.size);
    headers["Last-Modified"] = new Date(coded ? coded.mtimeMs : stats.mtimeMs).toUTCString();
    headers["Cache-Control"] = defaultCacheControl(key, { ...entry, type });
    // No content hash for identity here without reading the file: a weak validator from size and mtime.
    headers.ETag = coded
      ? `"${coded.hash.slice(7, 34)}-${coded.encoding}"`
      : `W/"${stats.size.toString(36)}-${Math.floor(stats.mtimeMs).toString(36)}"`;
    if (coded) headers["Content-Encoding"] = coded.encoding;
    const ifNoneMatch = first(header("if-none-match"));
    const opaque = headers.ETag.replace(/^W\//, "");
    if (
      ifNoneMatch &&
      (ifNoneMatch.trim() === "*" || ifNoneMatch.split(",").some((t) => t.trim().replace(/^W\//, "") === opaque))
    ) {
      await handle.close();
      return {
        status: 304,
        headers: { ETag: headers.ETag, Vary: headers.Vary as string, "Cache-Control": headers["Cache-Control"] },
      };
    }
    if (method === "HEAD") {
      await handle.close();
      return { status: 200, headers };
    }
    return { status: 200, headers, body: handle };
  }

  return {
    answer,
    purge: (path) =>
      compressor.purge(path === undefined ? undefined : (keyOf(path.startsWith("/") ? path : `/${path}`) ?? path)),
    close: () => compressor.close(),
    compressor,
  };
}
