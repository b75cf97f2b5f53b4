export { decodeVariant } from "./cache.js";
export type { CleanOptions, CleanSummary } from "./clean.js";
export { clean } from "./clean.js";
export type { ErrorCode } from "./errors.js";
export { PrecompressorError } from "./errors.js";
export { MANIFEST_NAME, parseManifest, readManifest } from "./manifest.js";
export type { DeltaEntry, Encoding, Manifest, ManifestEntry, VariantEntry } from "./manifest-format.js";
export type { EncodingTotals, FileState, PrecompressOptions, Progress, Summary } from "./precompress.js";
export { precompress } from "./precompress.js";
