// Compression Dictionary Transport (RFC 9842): a new file compressed against the previous
// release's file as dictionary, with the RFC's header (magic + SHA-256 of the dictionary).
import { createHash } from "node:crypto";
import { basename, dirname } from "node:path";
import * as zlib from "node:zlib";
import { BROTLI_WINDOW_LOG } from "./codecs.js";
import type { DeltaEncoding } from "./manifest-format.js";
import { hashedName } from "./serve/resolver.js";

export const DELTA_ENCODINGS: readonly DeltaEncoding[] = ["dcz", "dcb"];

/** dcz: a zstd skippable frame (magic 0x184D2A5E, 32-byte payload) carrying the dictionary's SHA-256. */
const DCZ_MAGIC = Buffer.from([0x5e, 0x2a, 0x4d, 0x18, 0x20, 0x00, 0x00, 0x00]);
/** dcb: 0xff "DCB" then the dictionary's SHA-256. */
const DCB_MAGIC = Buffer.from([0xff, 0x44, 0x43, 0x42]);
export const DELTA_HEADER_BYTES: Record<DeltaEncoding, number> = { dcz: 40, dcb: 36 };

const MB = 1024 * 1024;

/** RFC 9842 §4.2: a dcz window may not exceed max(8 MB, 1.25 × dictionary), and never 128 MB. */
export function dczWindowLog(dictionarySize: number): number {
  const limit = Math.min(128 * MB, Math.max(8 * MB, 1.25 * dictionarySize));
  return Math.floor(Math.log2(limit));
}

type DictZlib = {
  zstdCompress?: (b: Buffer, o: object, cb: (e: Error | null, r: Buffer) => void) => void;
  zstdDecompressSync?: (b: Buffer, o?: object) => Buffer;
};
const z = zlib as typeof zlib & DictZlib;
const constants = zlib.constants as unknown as Record<string, number>;

function zstdOptions(level: number, size: number, dictionary: Buffer): object {
  return {
    dictionary,
    pledgedSrcSize: size,
    params: {
      [constants.ZSTD_c_compressionLevel as number]: level,
      [constants.ZSTD_c_windowLog as number]: dczWindowLog(dictionary.length),
    },
  };
}

function brotliOptions(level: number, size: number, dictionary: Buffer): zlib.BrotliOptions {
  return {
    dictionary,
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: level,
      [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: size,
      [zlib.constants.BROTLI_PARAM_LGWIN]: BROTLI_WINDOW_LOG,
    },
  } as zlib.BrotliOptions;
}

/**
 * Which delta encodings this Node really supports. Probed, not read from the version:
 * Node 20 accepts a brotli `dictionary` option and silently ignores it.
 */
export const deltaSupport: Readonly<Record<DeltaEncoding, boolean>> = probe();

function probe(): Record<DeltaEncoding, boolean> {
  const dictionary = Buffer.from("export function precompressorProbe(value) { return value * 31 + 7; }\n".repeat(40));
  const input = Buffer.concat([dictionary, Buffer.from("// the only new line\n")]);
  const works = (encode: () => Buffer, decode: (b: Buffer) => Buffer): boolean => {
    try {
      const out = encode();
      // Without the dictionary this input cannot shrink below ~100 bytes; with it, a few dozen.
      return out.length < 60 && decode(out).equals(input);
    } catch {
      return false;
    }
  };
  return {
    dcz:
      typeof z.zstdDecompressSync === "function" &&
      works(
        () =>
          (zlib as unknown as { zstdCompressSync: (b: Buffer, o: object) => Buffer }).zstdCompressSync(
            input,
            zstdOptions(19, input.length, dictionary),
          ),
        (b) => (z.zstdDecompressSync as (b: Buffer, o: object) => Buffer)(b, { dictionary }),
      ),
    dcb: works(
      () => zlib.brotliCompressSync(input, brotliOptions(11, input.length, dictionary)),
      (b) => zlib.brotliDecompressSync(b, { dictionary } as zlib.BrotliOptions),
    ),
  };
}

/** SHA-256 of the dictionary, raw: what the RFC header carries and `Available-Dictionary` names. */
export function dictionaryDigest(dictionary: Buffer): Buffer {
  return createHash("sha256").update(dictionary).digest();
}

/**
 * Encode `input` against `dictionary` as a dcz or dcb body, header included.
 *
 * @example
 * const body = await encodeDelta("dcz", newBytes, oldBytes, 19);
 */
export async function encodeDelta(
  encoding: DeltaEncoding,
  input: Buffer,
  dictionary: Buffer,
  level: number,
): Promise<Buffer> {
  if (!deltaSupport[encoding]) throw new Error(`${encoding} is not supported by Node ${process.version}`);
  const hash = dictionaryDigest(dictionary);
  if (encoding === "dcz") {
    const compress = z.zstdCompress as NonNullable<DictZlib["zstdCompress"]>;
    const body = await new Promise<Buffer>((resolve, reject) =>
      compress(input, zstdOptions(level, input.length, dictionary), (err, out) => (err ? reject(err) : resolve(out))),
    );
    return Buffer.concat([DCZ_MAGIC, hash, body]);
  }
  const body = await new Promise<Buffer>((resolve, reject) =>
    zlib.brotliCompress(input, brotliOptions(level, input.length, dictionary), (err, out) =>
      err ? reject(err) : resolve(out),
    ),
  );
  return Buffer.concat([DCB_MAGIC, hash, body]);
}

/** Decode a dcz/dcb body after checking its header names `dictionary` (tests, benchmarks). */
export function decodeDelta(encoding: DeltaEncoding, body: Buffer, dictionary: Buffer): Buffer {
  const magic = encoding === "dcz" ? DCZ_MAGIC : DCB_MAGIC;
  const headerBytes = DELTA_HEADER_BYTES[encoding];
  if (!body.subarray(0, magic.length).equals(magic)) throw new Error(`${encoding}: bad magic`);
  if (!body.subarray(magic.length, headerBytes).equals(dictionaryDigest(dictionary)))
    throw new Error(`${encoding}: header names another dictionary`);
  const payload = body.subarray(headerBytes);
  if (encoding === "dcb") return zlib.brotliDecompressSync(payload, { dictionary } as zlib.BrotliOptions);
  return (z.zstdDecompressSync as (b: Buffer, o: object) => Buffer)(payload, { dictionary });
}

/**
 * The name a file keeps across releases: its path with a content hash removed (the resolver's
 * {@link hashedName}, so the delta is made for the name a browser's `match` pattern covers):
 * `assets/app.3f9a1c2b.js` and `assets/app.77bc0e1d.js` (or `index-DiwrgTda.js`) match.
 */
export function logicalName(rel: string): string {
  const name = basename(rel);
  const hashed = hashedName(name);
  const stripped = hashed ? `${(hashed[1] as string).slice(0, -1)}${hashed[3]}` : name; // `a.1f…e.js` → `a.js`
  const folder = dirname(rel);
  return folder === "." ? stripped : `${folder}/${stripped}`;
}

/** Hex characters of the dictionary's hash that tag a delta's file name. */
const DELTA_TAG_CHARS = 8;
const DELTA_NAME = new RegExp(`\\.[0-9a-f]{${DELTA_TAG_CHARS}}\\.(${DELTA_ENCODINGS.join("|")})$`);

/** File name of a delta: beside its file, tagged with the dictionary so releases never collide. */
export function deltaFileName(rel: string, dictionaryHash: Buffer, encoding: DeltaEncoding): string {
  return `${rel}.${dictionaryHash.toString("hex").slice(0, DELTA_TAG_CHARS)}.${encoding}`;
}

/** Whether `name` has the shape `deltaFileName` gives: `<file>.<tag>.dcz` or `.dcb`. */
export function isDeltaFileName(name: string): boolean {
  return DELTA_NAME.test(name);
}
