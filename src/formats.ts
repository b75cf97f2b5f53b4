// What each file extension is: its Content-Type, whether compressing it pays,
// and which brotli mode suits it. One table, so the CLI and the manifest agree.
import { extname } from "node:path";
import type { Encoding } from "./manifest-format.js";

// The suffixes live in the resolver, which may import nothing.
import { VARIANT_SUFFIX } from "./serve/resolver.js";

export { VARIANT_SUFFIX };

export const ALL_ENCODINGS: readonly Encoding[] = ["gzip", "br", "zstd"];

/** The source and encoding a name would be the variant of (`x.js.br` → `x.js`, br), by its suffix alone. */
export function variantOf(name: string): { source: string; encoding: Encoding } | undefined {
  for (const encoding of ALL_ENCODINGS) {
    const suffix = VARIANT_SUFFIX[encoding];
    if (name.length > suffix.length && name.endsWith(suffix))
      return { source: name.slice(0, -suffix.length), encoding };
  }
  return undefined;
}

type Kind = "text" | "font" | "binary";
interface Format {
  type: string;
  /** Compressible, and if so which brotli mode fits; `undefined` = never compress. */
  kind?: Kind;
}

const text = (type: string): Format => ({ type: `${type}; charset=utf-8`, kind: "text" });
const font = (type: string): Format => ({ type, kind: "font" });
const binary = (type: string): Format => ({ type, kind: "binary" });
const stored = (type: string): Format => ({ type });

const FORMATS: Readonly<Record<string, Format>> = {
  html: text("text/html"),
  htm: text("text/html"),
  css: text("text/css"),
  js: text("text/javascript"),
  mjs: text("text/javascript"),
  cjs: text("text/javascript"),
  json: text("application/json"),
  map: text("application/json"),
  jsonld: text("application/ld+json"),
  webmanifest: text("application/manifest+json"),
  svg: text("image/svg+xml"),
  xml: text("application/xml"),
  rss: text("application/rss+xml"),
  atom: text("application/atom+xml"),
  txt: text("text/plain"),
  md: text("text/markdown"),
  csv: text("text/csv"),
  tsv: text("text/tab-separated-values"),
  ics: text("text/calendar"),
  vtt: text("text/vtt"),
  yaml: text("application/yaml"),
  yml: text("application/yaml"),
  ts: text("text/plain"),
  tsx: text("text/plain"),
  jsx: text("text/javascript"),
  glsl: text("text/plain"),
  wasm: binary("application/wasm"),
  ico: binary("image/vnd.microsoft.icon"),
  bmp: binary("image/bmp"),
  pdf: binary("application/pdf"),
  ttf: font("font/ttf"),
  otf: font("font/otf"),
  eot: font("application/vnd.ms-fontobject"),
  // Already compressed: a second pass costs CPU and gains nothing.
  png: stored("image/png"),
  jpg: stored("image/jpeg"),
  jpeg: stored("image/jpeg"),
  gif: stored("image/gif"),
  webp: stored("image/webp"),
  avif: stored("image/avif"),
  jxl: stored("image/jxl"),
  heic: stored("image/heic"),
  woff: stored("font/woff"),
  woff2: stored("font/woff2"),
  zip: stored("application/zip"),
  gz: stored("application/gzip"),
  tgz: stored("application/gzip"),
  br: stored("application/octet-stream"),
  zst: stored("application/zstd"),
  dcz: stored("application/octet-stream"),
  dcb: stored("application/octet-stream"),
  xz: stored("application/x-xz"),
  bz2: stored("application/x-bzip2"),
  "7z": stored("application/x-7z-compressed"),
  rar: stored("application/vnd.rar"),
  mp3: stored("audio/mpeg"),
  mp4: stored("video/mp4"),
  m4a: stored("audio/mp4"),
  ogg: stored("audio/ogg"),
  opus: stored("audio/ogg"),
  webm: stored("video/webm"),
  mov: stored("video/quicktime"),
};

function formatOf(path: string): Format | undefined {
  return FORMATS[extname(path).slice(1).toLowerCase()];
}

/** Content-Type for a served file, from its extension; unknown types are opaque bytes. */
export function contentTypeOf(path: string): string {
  return formatOf(path)?.type ?? "application/octet-stream";
}

/** True when the extension names a type worth compressing (text, fonts, wasm, …). */
export function isCompressible(path: string): boolean {
  return formatOf(path)?.kind !== undefined;
}

/** The brotli mode hint for a compressible file. */
export function brotliKindOf(path: string): Kind {
  return formatOf(path)?.kind ?? "binary";
}
