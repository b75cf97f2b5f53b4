// The ranges and defaults of the settings that shape a variant, and the rule they set, shared by
// the build and lazy mode: each is decided here once, whatever the option is called there.
import { PrecompressorError } from "./errors.js";
import type { Encoding } from "./manifest-format.js";
import { ZSTD_MAX_LEVEL } from "./zstd.js";

export const LEVEL_RANGE: Readonly<Record<Encoding, readonly [number, number]>> = {
  gzip: [1, 9],
  br: [0, 11],
  zstd: [1, ZSTD_MAX_LEVEL],
};

/** The build's levels: the highest that browsers decode (zstd 19 keeps its window at 8 MB). */
export const DEFAULT_LEVELS: Readonly<Record<Encoding, number>> = { gzip: 9, br: 11, zstd: 19 };

/** A variant must be at most this share of its source to be worth a file and a request. */
export const DEFAULT_MIN_RATIO = 0.95;
/** Below this many bytes a file gets no variants: headers outweigh what compression saves. */
export const DEFAULT_MIN_SIZE = 1024;

/** `option: message` as the one error a bad setting gets, naming the flag or field the user wrote. */
export function badOption(option: string, message: string): PrecompressorError {
  return new PrecompressorError("E_BAD_OPTION", `${option}: ${message}`);
}

/** `level` if it is a whole number in `encoding`'s range; `option` names it in the error. */
export function checkLevel(option: string, encoding: Encoding, level: number): number {
  const [min, max] = LEVEL_RANGE[encoding];
  if (!Number.isInteger(level) || level < min || level > max)
    throw badOption(option, `expected a whole number from ${min} to ${max}, got ${level}`);
  return level;
}

/** `minRatio`, or the default, if it is above 0 and at most 1. */
export function checkMinRatio(option: string, minRatio = DEFAULT_MIN_RATIO): number {
  if (!(minRatio > 0 && minRatio <= 1))
    throw badOption(option, `expected a number above 0 and at most 1, got ${minRatio}`);
  return minRatio;
}

/** The largest variant, in bytes, worth writing for a source of `size` bytes. */
export function worthItLimit(size: number, minRatio: number): number {
  return Math.floor(size * minRatio);
}
