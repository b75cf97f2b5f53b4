// Pure encoders: bytes or a stream in, encoded bytes out, one per encoding.
import type { Transform } from "node:stream";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import type { Encoding } from "./manifest-format.js";
import { createZstdCompressStream, zstdCompressBuffer, zstdCompressBufferSync } from "./zstd.js";

/** Files above this size stream through the encoders with bounded memory. */
export const STREAM_THRESHOLD = 16 * 1024 * 1024;

export type BrotliKind = "text" | "font" | "binary";

export interface EncodeOptions {
  level: number;
  /** Size of the whole input: brotli's size hint and window, zstd's pledged size. */
  size: number;
  /** Chooses brotli's mode. */
  kind: BrotliKind;
}

/**
 * Brotli's default window, 2^22. Browsers decode windows up to 2^24 but never large-window mode;
 * measured on real assets, a window sized to each file saved nothing, and 2^24 would multiply
 * the encoder's memory for huge files (README, "Large files").
 */
export const BROTLI_WINDOW_LOG = 22;

const BROTLI_MODE: Record<BrotliKind, number> = {
  text: zlib.constants.BROTLI_MODE_TEXT,
  font: zlib.constants.BROTLI_MODE_FONT,
  binary: zlib.constants.BROTLI_MODE_GENERIC,
};

function brotliOptions({ level, size, kind }: EncodeOptions): zlib.BrotliOptions {
  return {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: level,
      [zlib.constants.BROTLI_PARAM_MODE]: BROTLI_MODE[kind],
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: size,
      [zlib.constants.BROTLI_PARAM_LGWIN]: BROTLI_WINDOW_LOG,
    },
  };
}

/**
 * Streamed files take brotli's input block down from 2^18 to 2^16: less memory and slightly
 * smaller output on every kind of asset measured. Whole buffers keep the default: there 2^16
 * was larger for some big files, and the output must never exceed a peer's at the same quality.
 * README, "Large files", has the figures.
 */
const BROTLI_STREAM_BLOCK_LOG = 16;

function brotliStreamOptions(options: EncodeOptions): zlib.BrotliOptions {
  const { params } = brotliOptions(options);
  return { params: { ...params, [zlib.constants.BROTLI_PARAM_LGBLOCK]: BROTLI_STREAM_BLOCK_LOG } };
}

// zlib's default memLevel (8): measured smaller than 9 on real assets. The gzip header carries
// no mtime or name, so output is deterministic.
const gzipOptions = (level: number): zlib.ZlibOptions => ({ level });

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);

/**
 * Encode a whole buffer.
 *
 * @example
 * const br = await encodeBuffer("br", source, { level: 11, size: source.length, kind: "text" });
 */
export function encodeBuffer(encoding: Encoding, input: Buffer, options: EncodeOptions): Promise<Buffer> {
  switch (encoding) {
    case "gzip":
      return gzip(input, gzipOptions(options.level));
    case "br":
      return brotli(input, brotliOptions(options));
    case "zstd":
      return zstdCompressBuffer(input, options.level);
  }
}

/**
 * Encode a whole buffer on the calling thread, for workers: no hand-off to libuv's pool, so no
 * more encoders run at once than there are threads, and brotli gets the whole input in one call,
 * so it sizes its tables to the file instead of to its window. Undefined where the codec has no
 * synchronous form (zstd from @mongodb-js/zstd): use `encodeBuffer`.
 */
export function encodeBufferSync(encoding: Encoding, input: Buffer, options: EncodeOptions): Buffer | undefined {
  switch (encoding) {
    case "gzip":
      return zlib.gzipSync(input, gzipOptions(options.level));
    case "br":
      return zlib.brotliCompressSync(input, brotliOptions(options));
    case "zstd":
      return zstdCompressBufferSync(input, options.level);
  }
}

/** A streaming encoder producing the same format as `encodeBuffer`, for files too large to buffer. */
export function createEncodeStream(encoding: Encoding, options: EncodeOptions): Transform {
  switch (encoding) {
    case "gzip":
      return zlib.createGzip(gzipOptions(options.level));
    case "br":
      return zlib.createBrotliCompress(brotliStreamOptions(options));
    case "zstd":
      return createZstdCompressStream(options.level, options.size);
  }
}
