/** Every failure precompressor reports on purpose carries one of these codes. */
export type ErrorCode =
  | "E_INPUT_NOT_FOUND"
  | "E_INPUT_NOT_DIRECTORY"
  | "E_INPUT_REFUSED"
  | "E_BAD_OPTION"
  /** A source file (or folder) could not be read. */
  | "E_READ"
  /** An encoder failed on bytes that were read. */
  | "E_COMPRESS"
  /** A variant, a delta, the manifest, the lock or the cache could not be written. */
  | "E_WRITE"
  /** A source was edited or removed while the run worked on it. */
  | "E_SOURCE_CHANGED"
  | "E_MANIFEST"
  | "E_LOCKED"
  | "E_ABORTED"
  /** The Vite/Rollup plugin's build error when files failed (the CLI exits 1 and lists them instead). */
  | "E_FILES_FAILED"
  /** The partial manifests of `--shard` runs cannot be merged: one is missing, duplicated or incompatible. */
  | "E_SHARD";

/**
 * The one error class of the library: a short message for humans (naming the
 * file or flag), a machine-readable `code`, and the original error as `cause`.
 *
 * @example
 * try { await precompress({ dir: "dist" }) }
 * catch (e) { if (e instanceof PrecompressorError && e.code === "E_INPUT_NOT_FOUND") … }
 */
export class PrecompressorError extends Error {
  readonly code: ErrorCode;
  readonly path: string | undefined;

  constructor(code: ErrorCode, message: string, options: { path?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "PrecompressorError";
    this.code = code;
    this.path = options.path;
  }
}

/**
 * The system error once, without the path Node appends: "EACCES: permission denied".
 * Messages name the path themselves, so it is not repeated.
 */
export function systemReason(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  const text = String(e?.message ?? error).split("\n")[0] ?? "";
  if (e?.code && text.startsWith(`${e.code}:`)) return text.split(",")[0] as string;
  return e?.code && !text.includes(e.code) ? `${e.code}: ${text}` : text;
}
