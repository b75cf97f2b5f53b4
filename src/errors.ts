/** Every failure precompressor reports on purpose carries one of these codes. */
export type ErrorCode =
  | "E_INPUT_NOT_FOUND"
  | "E_INPUT_NOT_DIRECTORY"
  | "E_INPUT_REFUSED"
  | "E_BAD_OPTION"
  | "E_READ"
  | "E_WRITE"
  | "E_COMPRESS"
  | "E_MANIFEST"
  | "E_LOCKED"
  | "E_ABORTED"
  | "E_FILES_FAILED"
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
