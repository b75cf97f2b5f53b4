// Which source file a request names (a regular file proven inside the root) and its content hash,
// taken once per stat signature and shared by concurrent requests.
import type { Stats } from "node:fs";
import { stat } from "node:fs/promises";
import { isCompressible } from "../formats.js";
import { isSafeRelativePath } from "../paths.js";
import { hashRegularFile, realInside } from "../serve/open.js";
import { isHidden } from "../serve/resolver.js";

/** What a source file looked like when hashed: any write changes ctime, a replace changes the inode. */
export type Signature = string;
const signatureOf = (s: Stats): Signature => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;

/** The signature `real` has now; `""` when it is gone. */
const signatureNow = (real: string): Promise<Signature> => stat(real).then(signatureOf, () => "");

export interface Source {
  signature: Signature;
  mtimeMs: number;
  /** Shared by concurrent requests; `undefined` when the file changed while it was read. */
  hash: Promise<string | undefined>;
  usedAt: number;
}

/** The real paths lazy mode works between: the root contains requests, the cache is never served. */
export interface Places {
  root: string;
  cache: string;
}

export interface SourceOptions {
  /** Rejects when the places cannot be set up; then every file is refused. */
  places: Promise<Places>;
  minSize: number;
  maxFileSize: number;
}

export interface Sources {
  /** The real path of an eligible regular file inside the root, with its stat; `undefined` otherwise. */
  locate(rel: string): Promise<{ real: string; stats: Stats } | undefined>;
  /** The source of `real` as `stats` describes it, hashed once per signature; marked used now. */
  of(real: string, stats: Stats): Source;
  /** The source last seen at `real`, without hashing anything. */
  known(real: string): Source | undefined;
  /** Whether `real` still has `signature` (it was not written or replaced meanwhile). */
  unchanged(real: string, signature: Signature): Promise<boolean>;
  /** Forget one source, or all of them: their next request hashes again. */
  forget(real?: string): void;
  /** Forget sources not used since `before` (ms since the epoch). */
  reap(before: number): void;
  /** Sources held in memory now. */
  readonly size: number;
}

/** A request path lazy mode may look at: the serving path rule, nothing hidden, compressible. */
function eligibleName(rel: string): boolean {
  return typeof rel === "string" && isSafeRelativePath(rel) && !isHidden(rel) && isCompressible(rel);
}

/**
 * Create the source table of one root.
 *
 * @example
 * const sources = createSources({ places, minSize: 1024, maxFileSize: 32 * 1024 ** 2 });
 * const found = await sources.locate("uploads/report.json");
 * const hash = found && (await sources.of(found.real, found.stats).hash);
 */
export function createSources({ places, minSize, maxFileSize }: SourceOptions): Sources {
  const sources = new Map<string, Source>();

  async function locate(rel: string): Promise<{ real: string; stats: Stats } | undefined> {
    if (!eligibleName(rel)) return undefined;
    const at = await places;
    // The serving opener's containment rule: inside the root, nothing hidden, never the cache.
    const real = await realInside(at.root, rel, { exclude: at.cache });
    if (!real) return undefined;
    const stats = await stat(real).catch(() => undefined);
    if (!stats?.isFile() || stats.size < minSize || stats.size > maxFileSize) return undefined;
    return { real, stats };
  }

  function of(real: string, stats: Stats): Source {
    const signature = signatureOf(stats);
    const known = sources.get(real);
    if (known?.signature === signature) {
      known.usedAt = Date.now();
      return known;
    }
    // Hashed without blocking: the path may have become a FIFO since it was stat'ed.
    const hash = hashRegularFile(real).then(
      // A write during the read leaves a hash of no real content: use it for nothing.
      async (h) => ((await signatureNow(real)) === signature ? h : undefined),
      () => undefined,
    );
    const source: Source = { signature, mtimeMs: stats.mtimeMs, hash, usedAt: Date.now() };
    sources.set(real, source);
    hash.then((h) => {
      // Forget a torn read, so the next request hashes again.
      if (h === undefined && sources.get(real) === source) sources.delete(real);
    });
    return source;
  }

  return {
    locate,
    of,
    known: (real) => sources.get(real),
    unchanged: async (real, signature) => (await signatureNow(real)) === signature,
    forget(real) {
      if (real === undefined) sources.clear();
      else sources.delete(real);
    },
    reap(before) {
      for (const [real, source] of sources) if (source.usedAt < before) sources.delete(real);
    },
    get size() {
      return sources.size;
    },
  };
}
