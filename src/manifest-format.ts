// The manifest's shape only: type declarations, no code, so the zero-import
// resolver can share them through `import type`.

/** The encodings precompressor writes as files beside the original. */
export type Encoding = "gzip" | "br" | "zstd";

/** One written variant: `<file>.gz`, `<file>.br` or `<file>.zst`. */
export interface VariantEntry {
  /** Bytes of the encoded file. */
  size: number;
  /** `sha256-<base64url>` of the encoded bytes. */
  hash: string;
}

/** The dictionary-compressed encodings of RFC 9842. */
export type DeltaEncoding = "dcz" | "dcb";

/** A dictionary-compressed delta (RFC 9842) against a previous release's file. */
export interface DeltaEntry {
  /** `sha256-<base64url>` of the dictionary (the old file's bytes); `Available-Dictionary` carries it in base64. */
  dict: string;
  encoding: DeltaEncoding;
  size: number;
  /** `sha256-<base64url>` of the delta file's bytes (RFC header included). */
  hash: string;
  /** Path of the delta file, relative to the served root. */
  file: string;
}

/** Everything a response for one served file needs, with no `stat`. */
export interface ManifestEntry {
  /** `sha256-<base64url>` of the original bytes; the ETag basis. */
  hash: string;
  size: number;
  /** Modification time of the original; Last-Modified, and the rerun fast path. */
  mtimeMs: number;
  /** Content-Type of the original, from its extension. */
  type: string;
  /** Only variants actually written (those that passed --min-ratio). */
  variants: Partial<Record<Encoding, VariantEntry>>;
  deltas?: DeltaEntry[];
}

/** `<dir>/.precompressor.json`. Keys of `files` are POSIX paths relative to the root, no leading slash. */
export interface Manifest {
  version: 1;
  /** `precompressor@<version>`. */
  generator: string;
  /**
   * Digest of what shapes each encoding's output (level, min-size, min-ratio,
   * backend, major version). Only encodings that were requested are present;
   * a file with no variant for a listed encoding was tried and not worth it.
   */
  settings: Partial<Record<Encoding | DeltaEncoding, string>>;
  /** Only in a partial manifest written by `--shard k/n`: which job of how many wrote it. */
  shard?: { index: number; count: number };
  files: Record<string, ManifestEntry>;
}
