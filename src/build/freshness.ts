// Whether what the last manifest recorded for one variant still holds on disk: the one rule, asked
// by planning (from the walk's sizes, nothing read) and by the worker (from a stat, then a hash).
import type { VariantEntry } from "../manifest-format.js";

/**
 * `recorded` holds when a regular file of its size is in its place. No variant recorded (not worth
 * it) holds only while the place is free and writable: else last run's write failed, or a stray
 * file sits where nginx would serve it.
 */
export function variantHolds(
  recorded: VariantEntry | undefined,
  found: { size: number } | undefined,
  placeIsFree: () => boolean,
): boolean {
  if (!recorded) return placeIsFree();
  return found !== undefined && found.size === recorded.size;
}
