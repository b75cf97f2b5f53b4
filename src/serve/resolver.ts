// Negotiation and lookup; no runtime imports, so it runs anywhere.
import type { DeltaEncoding, DeltaEntry, Encoding, Manifest, ManifestEntry } from "../manifest-format.js";

// `<file>.gz` etc. beside the original.
export const VARIANT_SUFFIX: Readonly<Record<Encoding, string>> = { gzip: ".gz", br: ".br", zstd: ".zst" };

/** Options of {@link createResolver}; every one has a default. */
export interface ResolverOptions {
  /** Server preference: breaks ties between equal q-values. Default `["br", "zstd", "gzip"]`. */
  encodings?: readonly Encoding[];
  /**
   * When identity is refused (`identity;q=0`, `*;q=0`) and no acceptable variant exists:
   * `true` answers 406, `false` sends identity anyway. Default `true`.
   */
  strict?: boolean;
  /** File served for a path ending in `/`; `false` disables it. Default `"index.html"`. */
  index?: string | false;
  /** `/dir` redirects (301) to `/dir/` when `dir/<index>` exists; `false` serves that index at `/dir`. Default `true`. */
  redirect?: boolean;
  /** Serve names starting with `.` (`.well-known/` always is; the manifest never is). Default `false`. */
  dotfiles?: boolean;
  /** Cache-Control of a file (all its variants); `undefined` sends none. Default {@link defaultCacheControl}. */
  cacheControl?: (path: string, entry: ManifestEntry) => string | undefined;
  /**
   * Seconds an unhashed file offered as a dictionary may be used stale while it revalidates, which is
   * also how long Chrome keeps it as a dictionary. `0`: `must-revalidate`, no dictionary survives.
   * Only for the default `cacheControl`. Default {@link DICTIONARY_LIFETIME} (a day).
   */
  staleWhileRevalidate?: number;
}

/** A file to send: everything the response headers need, from the manifest alone. */
export interface Resolved {
  status: 200;
  /** File to send, relative to the root, POSIX: the key, or the key plus `.gz`/`.br`/`.zst`. */
  path: string;
  /** Content-Encoding; `null` for identity (never sent as a header). `dcz`/`dcb`: an RFC 9842 delta. */
  encoding: Encoding | DeltaEncoding | null;
  /** Bytes of the file at `path`: Content-Length of a full response. */
  size: number;
  /** `sha256-<base64url>` of the bytes at `path`. */
  hash: string;
  /** Strong, distinct per variant: `"<hash>"` or `"<hash>-br"`, from the hash of the bytes sent. */
  etag: string;
  contentType: string;
  /** HTTP-date of the original's mtime. */
  lastModified: string;
  /** The original's mtime truncated to whole seconds, in ms, for If-Modified-Since. */
  mtime: number;
  /** `"Accept-Encoding"` when the file has variants (plus `Available-Dictionary` when it has deltas). */
  vary: string | undefined;
  cacheControl: string | undefined;
  /** `Use-As-Dictionary` (RFC 9842): the client may keep this file as the dictionary for its next versions. */
  useAsDictionary: string | undefined;
}

/**
 * The answer for one request path; `null` means "not ours" (404 or `next()`).
 * - `200`: serve {@link Resolved}.
 * - `301`: `/dir` → `location` `/dir/` (query kept).
 * - `400`: malformed or forbidden path (`..`, `%2f`, `%5c`, `\`, NUL, bad percent-encoding), refused before any lookup.
 * - `406`: identity refused and no acceptable variant exists (only when `strict`).
 */
export type Resolution = Resolved | { status: 301; location: string } | { status: 400 } | { status: 406; vary: string };

/** The resolver; build one per manifest with {@link createResolver}. */
export interface Resolver {
  /**
   * @param url The request target's path as received (still percent-encoded), optionally with `?query`
   *   (a `#fragment` is not expected: clients do not send one).
   * @param acceptEncoding The Accept-Encoding field; several lines may be given as an array.
   * @param availableDictionary The Available-Dictionary field (`:<base64 SHA-256>:`): enables `dcz`/`dcb`.
   */
  resolve(
    url: string,
    acceptEncoding?: string | readonly string[] | null,
    availableDictionary?: string | null,
  ): Resolution | null;
}

/**
 * A content hash in a file name, as bundlers emit it by default: `[name]-[hash]` or `[name].[hash]`
 * before the extension, the hash 8 base64url characters (Vite/Rollup `index-DiwrgTda.js`, esbuild's
 * base32 `chunk-5XRPZ2LJ.js`, Parcel's hex) or 9+ lowercase hex (webpack's `[contenthash]`, 20; 16+
 * may stand alone, as webpack names assets `[hash][ext]`).
 * It must have a letter and a digit or a capital: that spares words, dates and versions. Tested on a
 * whole path or a bare name; groups: the name with its separator, the hash, the extension. The one
 * rule of the resolver, the build's deltas and the nginx/Caddy configs (which use its source).
 */
export const HASHED_NAME: RegExp =
  /(?:^|\/)([^/]+?[.-]|(?=[\da-f]{16}))((?=[\w-]{0,7}[A-Z\d])(?=[\w-]{0,7}[A-Za-z])[\w-]{8}|(?=[\da-f]*\d)(?=[\da-f]*[a-f])[\da-f]{9,})(\.\w+)$/;

/**
 * {@link HASHED_NAME} on `name`.
 *
 * @example
 * hashedName("vendor-B-x3Yz_k.js")?.[2] // "B-x3Yz_k"
 */
export function hashedName(name: string): RegExpExecArray | null;
export function hashedName(name: string): RegExpExecArray | null {
  return HASHED_NAME.exec(name);
}

/** Default `staleWhileRevalidate`: a day (see the README's Compression Dictionary Transport). */
export const DICTIONARY_LIFETIME = 86400;

// Docs on overloads reach the .d.ts, not the JS (2 KB budget).
/**
 * The default Cache-Control. A content-hashed name never changes: `immutable` for a year. A hash is
 * 8+ hex chars (`app.3f9a1c2b.js`) or 8 base64url/base32 chars (`chunk-DfG8a2_x.js`, `out-5XRPZ2LJ.js`)
 * after `.` or `-`, with a digit and a letter (an uppercase one for the latter), which spares words and
 * dates. HTML gets `no-cache`. A file offered as a dictionary (it has variants) gets `public, max-age=0,
 * stale-while-revalidate=<staleWhileRevalidate>`: Chrome keeps a dictionary for max-age +
 * stale-while-revalidate, so `must-revalidate` would discard it, while max-age=0 still revalidates on
 * every load (a redeploy shows at most one load late). Anything else `public, max-age=0, must-revalidate`
 * (as Netlify, Vercel and Cloudflare Pages): a redeploy is seen at once, and revalidating is a cheap 304.
 *
 * @example
 * defaultCacheControl("assets/app.3f9a1c2b.js", entry) // "public, max-age=31536000, immutable"
 * defaultCacheControl("lib.js", entry) // "public, max-age=0, stale-while-revalidate=86400"
 * createResolver(manifest, { cacheControl: (path, entry) => path.startsWith("fonts/") ? "public, max-age=86400" : defaultCacheControl(path, entry) })
 */
export function defaultCacheControl(path: string, entry: ManifestEntry, staleWhileRevalidate?: number): string;
export function defaultCacheControl(path: string, entry: ManifestEntry, swr = DICTIONARY_LIFETIME): string {
  if (hashedName(path)) return "public, max-age=31536000, immutable";
  if (entry.type.startsWith("text/html")) return "no-cache";
  // The same files that get Use-As-Dictionary: non-HTML with variants.
  return swr > 0 && Object.keys(entry.variants).length
    ? `public, max-age=0, stale-while-revalidate=${swr}`
    : "public, max-age=0, must-revalidate";
}

// qvalue: 0..1, at most 3 decimals.
const WEIGHT = /^q=(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/i;
const TOKEN = /^[\w!#$%&'*+.^`|~-]+$/;

// Malformed members are skipped; a coding listed twice keeps its lowest q.
function parseAcceptEncoding(field: string): Map<string, number> {
  const weights = new Map<string, number>();
  for (const member of field.split(",")) {
    const [name = "", weight, extra] = member.split(";").map((part) => part.trim());
    const coding = name.toLowerCase() === "x-gzip" ? "gzip" : name.toLowerCase();
    if (!TOKEN.test(coding) || extra !== undefined || (weight !== undefined && !WEIGHT.test(weight))) continue;
    const q = weight === undefined ? 1 : Number(weight.slice(2));
    weights.set(coding, Math.min(q, weights.get(coding) ?? 1));
  }
  return weights;
}

// Bounded: unique fields cannot grow it.
const parsed = new Map<string, Map<string, number>>();
function weightsOf(field: string | readonly string[] | null | undefined): Map<string, number> {
  const text = typeof field === "string" ? field : (field ?? []).join(",");
  let weights = parsed.get(text);
  if (!weights) {
    if (parsed.size > 64) parsed.clear();
    weights = parseAcceptEncoding(text);
    parsed.set(text, weights);
  }
  return weights;
}

// The best of `available` (server order breaks ties) and identity's q; `*` never yields dcb/dcz.
function rank(weights: Map<string, number>, available: readonly Encoding[]) {
  const star = weights.get("*");
  let best: Encoding | null = null;
  let bestQ = 0;
  for (const encoding of available) {
    const q = weights.get(encoding) ?? star ?? 0;
    if (q > bestQ) {
      best = encoding;
      bestQ = q;
    }
  }
  // Under the least q (0.001): an unlisted identity is acceptable but loses every tie.
  return { best, bestQ, identityQ: weights.get("identity") ?? star ?? 1e-4 };
}

/**
 * The coding to send for an Accept-Encoding field when `available` (in server order) can be made:
 * one of them, `null` for identity, or `406` when identity is refused and none is acceptable
 * (`strict`). The manifest's negotiation, for a file it does not list (lazy mode).
 *
 * @example
 * chooseEncoding(["br", "gzip"], "gzip, br;q=0.5") // "gzip"
 */
export function chooseEncoding(
  available: readonly Encoding[],
  acceptEncoding: string | readonly string[] | null | undefined,
  strict?: boolean,
): Encoding | null | 406;
export function chooseEncoding(
  available: readonly Encoding[],
  acceptEncoding: string | readonly string[] | null | undefined,
  strict = true,
): Encoding | null | 406 {
  const { best, bestQ, identityQ } = rank(weightsOf(acceptEncoding), available);
  if (best && bestQ >= identityQ) return best;
  return identityQ > 0 || !strict ? null : 406;
}

// Encoded separators and NUL are refused before decoding, `.`/`..` segments after.
const FORBIDDEN_RAW = /\\|%(?:2f|5c|00)/i;
const FORBIDDEN_DECODED = /\0|(?:^|\/)\.\.?(?:\/|$)/;
const DOTFILE = /(?:^|\/)\.(?!well-known\/)/;
const MANIFEST_NAME = /(?:^|\/)\.precompressor\./;

/**
 * The one path rule for a request target (`/a%20b.js?x`): its decoded path, or `null` for what a
 * static server must refuse before touching the file system: not starting with `/`, `..` or `.`
 * segments (also as `%2e%2e`), `%2f`, `%5c`, `\`, NUL, malformed percent-encoding.
 */
export function requestPath(url: string): { path: string; raw: string; query: string } | null;
export function requestPath(url: string): { path: string; raw: string; query: string } | null {
  const cut = url.indexOf("?");
  const raw = cut < 0 ? url : url.slice(0, cut);
  if (raw[0] !== "/" || FORBIDDEN_RAW.test(raw)) return null;
  let path = raw;
  try {
    // Without `%` it is a no-op, and the costliest step.
    if (raw.includes("%")) path = decodeURIComponent(raw);
  } catch {
    return null; // `%zz`, `%`, overlong `%c0%ae`
  }
  return FORBIDDEN_DECODED.test(path) ? null : { path, raw, query: cut < 0 ? "" : url.slice(cut) };
}

/** A relative path never served: the manifest always, dotfiles unless allowed (`.well-known/` is). */
export function isHidden(key: string, dotfiles = false): boolean {
  return MANIFEST_NAME.test(key) || (!dotfiles && DOTFILE.test(key));
}

interface Prepared {
  entry: ManifestEntry;
  /** Variants present for this file, in server preference order. */
  encodings: Encoding[];
  deltas: DeltaEntry[];
  /** Keyed by encoding, "identity", or a delta's file. */
  answers: Record<string, Resolved>;
}

// A URL pattern (RFC 9842) relative to the file's own URL, so a mount prefix is kept; `*` is the hash.
// Bytes a browser percent-encodes in a path are encoded, so the pattern is ASCII and matches its URL.
const UTF8 = new TextEncoder();
function dictionaryMatch(key: string): string {
  const part = (text: string) =>
    text
      // What a browser encodes in a path (WHATWG path percent-encode set), plus `%`: a literal one.
      .replace(/[\0-\x20"#%<>?`{}\x7f-\u{10ffff}]/gu, (c) =>
        Array.from(UTF8.encode(c), (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join(""),
      )
      .replace(/[\\:*+()]/g, "\\$&");
  const hashed = hashedName(key);
  const name = hashed
    ? `${part(hashed[1] as string)}*${part(hashed[3] as string)}`
    : part(key.slice(key.lastIndexOf("/") + 1));
  return `match="${name.replace(/[\\"]/g, "\\$&")}"`;
}

/** The strong ETag of bytes with content hash `hash`, sent with `coding` (`null`: identity). */
export function etagOf(hash: string, coding: string | null): string {
  return `"${hash.slice(hash.indexOf("-") + 1).slice(0, 27)}${coding ? `-${coding}` : ""}"`;
}

/**
 * Build a resolver over a parsed manifest. It never touches the file system: a path not in the
 * manifest is `null`, and answers are computed once per file and encoding, then reused.
 *
 * @example
 * const resolver = createResolver(manifest);
 * const r = resolver.resolve("/assets/app.3f9a1c2b.js", "gzip, br;q=0.9");
 * if (r?.status === 200) serve(r.path, { "content-encoding": r.encoding, etag: r.etag });
 */
export function createResolver(manifest: Manifest, options?: ResolverOptions): Resolver;
export function createResolver(manifest: Manifest, options: ResolverOptions = {}): Resolver {
  const order = options.encodings ?? ["br", "zstd", "gzip"];
  const strict = options.strict ?? true;
  const index = options.index ?? "index.html";
  const redirect = options.redirect ?? true;
  const dotfiles = options.dotfiles ?? false;
  const swr = options.staleWhileRevalidate;
  const cacheControl = options.cacheControl ?? ((path, entry) => defaultCacheControl(path, entry, swr));
  // A Map: `__proto__` must not reach the prototype.
  const files = new Map<string, Prepared>();
  for (const [key, entry] of Object.entries(manifest.files)) {
    files.set(key, {
      entry,
      encodings: order.filter((e) => entry.variants[e]),
      deltas: entry.deltas ?? [],
      answers: {},
    });
  }
  function answer(key: string, file: Prepared, encoding: Encoding | null, delta?: DeltaEntry): Resolved {
    const slot = delta ? delta.file : (encoding ?? "identity");
    const cached = file.answers[slot];
    if (cached) return cached;
    const { entry } = file;
    const variant = delta ?? (encoding && entry.variants[encoding]);
    const hash = variant ? variant.hash : entry.hash;
    const mtime = Math.floor(entry.mtimeMs / 1000) * 1000;
    const resolved: Resolved = {
      status: 200,
      path: delta ? delta.file : encoding ? key + VARIANT_SUFFIX[encoding] : key,
      encoding: delta ? delta.encoding : encoding,
      size: variant ? variant.size : entry.size,
      hash,
      // The sent bytes' hash: a strong ETag changes whenever they do.
      etag: etagOf(hash, delta ? delta.encoding : encoding),
      contentType: entry.type,
      lastModified: new Date(mtime).toUTCString(),
      mtime,
      vary: file.deltas.length
        ? "Accept-Encoding, Available-Dictionary"
        : file.encodings.length
          ? "Accept-Encoding"
          : undefined,
      cacheControl: cacheControl(key, entry),
      // Pages change every release; scripts, styles and data are what a next version resembles.
      useAsDictionary: file.encodings.length && !entry.type.startsWith("text/html") ? dictionaryMatch(key) : undefined,
    };
    file.answers[slot] = resolved;
    return resolved;
  }

  function negotiate(
    key: string,
    file: Prepared,
    field: string | readonly string[] | null | undefined,
    dictionary?: string | null,
  ) {
    // No variants: not negotiated.
    if (!file.encodings.length && !file.deltas.length) return answer(key, file, null);
    const weights = weightsOf(field);
    const { best, bestQ, identityQ } = rank(weights, file.encodings);
    // A delta needs its coding listed by name (never via `*`) and the client's dictionary to be ours.
    const sf = dictionary && /^\s*:([\w+/]+=*):\s*$/.exec(dictionary);
    const wanted = sf && `sha256-${sf[1]?.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
    let delta: DeltaEntry | undefined;
    let deltaQ = 0;
    for (const d of file.deltas) {
      const q = d.dict === wanted ? (weights.get(d.encoding) ?? 0) : 0;
      if (q > deltaQ || (q && q === deltaQ && d.size < (delta?.size ?? 0))) {
        delta = d;
        deltaQ = q;
      }
    }
    if (delta && deltaQ >= bestQ && deltaQ >= identityQ) return answer(key, file, null, delta);
    if (best && bestQ >= identityQ) return answer(key, file, best);
    if (identityQ > 0 || !strict) return answer(key, file, null);
    return { status: 406 as const, vary: "Accept-Encoding" };
  }

  function resolve(
    url: string,
    acceptEncoding?: string | readonly string[] | null,
    dictionary?: string | null,
  ): Resolution | null {
    const target = requestPath(url);
    if (!target) return { status: 400 };
    const { path, raw, query } = target;
    let key = path.slice(1);
    if (key === "" || key.endsWith("/")) key = index ? key + index : "";
    if (isHidden(key, dotfiles)) return null;
    const file = files.get(key);
    if (file) return negotiate(key, file, acceptEncoding, dictionary);
    const dirIndex = index && key ? files.get(`${key}/${index}`) : undefined;
    if (!dirIndex) return null;
    // Relative links need `/dir/`.
    if (redirect) return { status: 301, location: `${raw}/${query}` };
    return negotiate(`${key}/${index}`, dirIndex, acceptEncoding, dictionary);
  }

  return { resolve };
}
