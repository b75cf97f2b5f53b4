// The one HTTP decision (RFC 9110): a resolution and the request headers in; status, headers and
// the byte range out. No I/O, so every adapter and lazy mode answer alike.
import { httpDate } from "./dates.js";
import type { Resolution, Resolved } from "./resolver.js";

/** What to answer, decided from the resolution and the request headers alone (no I/O). */
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

export const isGetOrHead = (method: string | undefined) => method === "GET" || method === "HEAD";
const ETAGS = /(?:W\/)?"[^"]*"/g;
const opaque = (tag: string) => (tag.startsWith("W/") ? tag.slice(2) : tag);

/** One header as a single string: repeated lines are one comma list. */
export function first(value: string | string[] | null | undefined): string | undefined {
  return (Array.isArray(value) ? value.join(", ") : value) ?? undefined;
}

/** RFC 9110 §8.8.3.2: weak comparison for If-None-Match, strong for If-Match and If-Range. */
function matches(field: string, etag: string, weak: boolean): boolean {
  if (field.trim() === "*") return true;
  for (const tag of field.match(ETAGS) ?? []) {
    if (weak ? opaque(tag) === opaque(etag) : tag === etag && !tag.startsWith("W/")) return true;
  }
  return false;
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
const REDIRECT_CACHE = "public, max-age=0, must-revalidate";
/** A short plain-text answer (404, 405, 500…): never a Content-Encoding. */
export const textReply = (status: number, text: string, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { ...headers, "Content-Type": TEXT, "Content-Length": String(Buffer.byteLength(text)) },
  start: 0,
  end: -1,
  text,
});

/**
 * Decide the answer to a GET or HEAD in RFC 9110 order: the resolution (negotiation), If-Match /
 * If-Unmodified-Since (412), If-None-Match / If-Modified-Since (304), Range / If-Range (206/416).
 * Dates count only as valid HTTP-dates. `null`: not ours; a 400 (malformed path) is a reply, so a
 * standalone server can send it.
 *
 * @example
 * const reply = decide(site.resolver.resolve(req.url, req.headers["accept-encoding"]), req.method, (name) => req.headers[name]);
 */
export function decide(resolved: Resolution | null, method: string, header: HeaderReader): Reply | null {
  if (!resolved) return null;
  if (resolved.status === 400) return textReply(400, "Bad Request");
  if (resolved.status === 301) {
    // A redirect is cacheable by default; say so, and revalidate it like a page.
    const headers = { Location: resolved.location, "Content-Length": "0", "Cache-Control": REDIRECT_CACHE };
    return { status: 301, headers, start: 0, end: -1 };
  }
  if (resolved.status === 406) return textReply(406, "Not Acceptable", { Vary: resolved.vary });
  const { etag, size } = resolved;
  const ifMatch = first(header("if-match"));
  if (
    ifMatch !== undefined
      ? !matches(ifMatch, etag, false)
      : resolved.mtime > (httpDate(first(header("if-unmodified-since"))) ?? Infinity)
  ) {
    return textReply(412, "Precondition Failed", validatorHeaders(resolved));
  }
  const ifNoneMatch = first(header("if-none-match"));
  // If-Modified-Since is ignored when If-None-Match is present (RFC 9110 §13.1.3).
  if (
    ifNoneMatch !== undefined
      ? matches(ifNoneMatch, etag, true)
      : resolved.mtime <= (httpDate(first(header("if-modified-since"))) ?? -1)
  ) {
    return { status: 304, headers: validatorHeaders(resolved), start: 0, end: -1 };
  }
  const full = headersOf(resolved);
  const range = method === "GET" ? first(header("range")) : undefined; // Range is defined for GET only
  const ifRange = first(header("if-range"));
  // If-Range with a date, or a weak or stale ETag: ignore Range and send it all.
  const strong = !etag.startsWith("W/") && ifRange?.trim() === etag;
  const span = range && (ifRange === undefined || strong) ? parseRange(range, size) : undefined;
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
