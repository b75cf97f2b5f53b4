// The digest of everything that shapes one encoding's output. A change to it
// redoes that encoding only: a new zstd level leaves the .br files alone.
import { createHash } from "node:crypto";
import { formatDigest } from "../hash.js";
import type { DeltaEncoding, Encoding } from "../manifest-format.js";
import { BINDINGS_SMALL_FILE_BYTES, BINDINGS_SMALL_FILE_MAX_LEVEL, zstdBackend } from "../zstd.js";

/** Bump when a release changes output bytes for the same settings. */
export const OUTPUT_FORMAT_VERSION = 2;

export interface EncodingSettings {
  encoding: Encoding | DeltaEncoding;
  level: number;
  minSize: number;
  minRatio: number;
}

export function settingsDigest(s: EncodingSettings): string {
  const backend =
    s.encoding === "zstd" || s.encoding === "dcz"
      ? {
          zstdBackend,
          smallFile: zstdBackend === "node:zlib" ? null : [BINDINGS_SMALL_FILE_BYTES, BINDINGS_SMALL_FILE_MAX_LEVEL],
        }
      : {};
  const shape = { format: OUTPUT_FORMAT_VERSION, ...s, ...backend };
  return formatDigest(createHash("sha256").update(JSON.stringify(shape)));
}
