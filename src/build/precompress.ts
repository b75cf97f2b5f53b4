// The library's one job: bring a directory's variants and manifest up to date. This file orders the
// steps (lock, read, walk, plan, interim manifest, pool, manifest, orphans); each step is its own module.

import { realpath } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { evictCache } from "../cache.js";
import { DELTA_ENCODINGS, deltaSupport } from "../delta.js";
import { PrecompressorError } from "../errors.js";
import { MANIFEST_NAME, type ManifestRead, readManifest, sameManifest, writeManifest } from "../manifest.js";
import type { DeltaEncoding } from "../manifest-format.js";
import { findOwnTemps, markCacheDir, removeOwned, slotIsFree } from "../ownership.js";
import { assertDirectory } from "../paths.js";
import { Ledger } from "./ledger.js";
import { acquireLock, LOCK_NAME } from "./lock.js";
import { type PrecompressOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { deltaJobs, digestsOf, isEligible, plan, type Sorted, sortFiles } from "./plan.js";
import { runPool, type WarmPool, warmPool } from "./pool.js";
import { type Dictionary, indexReleases } from "./releases.js";
import { scan } from "./scan.js";
import { type Summary, summarise } from "./summary.js";
import type { CompressTask } from "./tasks.js";

/**
 * Compress every eligible file under `dir` to gzip, brotli and zstd variants beside it, and
 * write the manifest. Reruns touch only what changed. Failures of single files are listed in
 * `summary.failures` (the rest is still done); bad options or a bad `dir` throw `PrecompressorError`.
 *
 * @example
 * const summary = await precompress({ dir: "dist", onProgress: (p) => console.log(p.done, p.total) });
 * if (summary.failures.length) process.exitCode = 1;
 */
export async function precompress(options: PrecompressOptions = {}): Promise<Summary> {
  const started = performance.now();
  const opts = resolveOptions(options);
  await assertDirectory(opts.dir);
  for (const dir of opts.dictionaryFrom) await assertDirectory(dir, "--dictionary-from ");
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    options.onWarning?.(message);
  };
  // A cache folder that is not ours is refused before anything is written.
  if (opts.cacheDir && !opts.dryRun) await markCacheDir(opts.cacheDir, "--cache-dir");
  const realRoot = await realpath(opts.dir);
  const release = opts.dryRun ? undefined : await acquireLock(join(opts.dir, LOCK_NAME));
  // Removing is always of our own files, proven inside the root; what cannot go is a warning.
  const remove = async (paths: string[]) => {
    for (const problem of await Promise.all(paths.map((p) => removeOwned(realRoot, p)))) if (problem) warn(problem);
  };
  let warm: WarmPool | undefined;
  try {
    const { manifest: previous, warnings: manifestWarnings } = await readPrevious(opts);
    for (const message of manifestWarnings) warn(message);
    // A cold build will need the threads: they start now, while the walk runs.
    warm = previous || opts.dryRun ? undefined : warmPool(opts.concurrency);
    const scanned = await scan(opts);
    for (const message of scanned.warnings) warn(message);
    if (!opts.dryRun) await remove(scanned.temps);
    const sorted = sortFiles(scanned.files, previous, opts);
    const digests = digestsOf(opts);
    const deltaEncodings = deltaJobs(opts, opts.dictionaryFrom.length ? writableDeltas(warn) : [], digests);
    const dictionaries = deltaEncodings.length ? await dictionariesOf(sorted, opts) : new Map();
    const planned = plan({ opts, realRoot, sorted, digests, deltaEncodings, dictionaries, slotIsFree });
    const ledger = new Ledger(opts, sorted, planned, digests);
    for (const folder of scanned.unreadable) ledger.unreadableFolder(folder);
    const hadTasks = planned.tasks.length > 0;
    if (!opts.dryRun && previous && hadTasks) {
      // Until the new manifest is written, no manifest may name a variant that is about to be replaced.
      await writeManifest(opts.manifestPath, ledger.interimManifest(planned.tasks));
    }
    const interrupted = await execute(ledger, options, warm);
    // Done with: a million finished tasks would otherwise stay alive while the manifest is built.
    planned.tasks = [];
    const summary = summarise(ledger, warnings);
    if (!opts.dryRun) {
      await remove(ledger.interruptedVariants(interrupted));
      // Variants are in place before the manifest names them; orphans go only once it no longer does.
      const next = ledger.manifest();
      // A run that had nothing to do leaves the file (and its mtime, which servers watch) alone.
      if (hadTasks || !sameManifest(next, previous)) await writeManifest(opts.manifestPath, next);
      await remove(ledger.orphanVariants());
      if (options.signal?.aborted) {
        await remove(await findOwnTemps(opts.dir));
        throw new PrecompressorError(
          "E_ABORTED",
          `${opts.dir}: interrupted; finished files are in the manifest, the rest is redone next run`,
          {
            path: opts.dir,
            cause: options.signal.reason,
          },
        );
      }
      // Only new entries can push the cache over its bound.
      if (opts.cacheDir && summary.states.compressed) await evictCache(opts.cacheDir, opts.cacheMaxSize);
    }
    summary.durationMs = Math.round(performance.now() - started);
    return summary;
  } finally {
    await warm?.release();
    await release?.();
  }
}

/** The last run's manifest; a shard's first run starts from the whole tree's, if there is one. */
async function readPrevious(opts: ResolvedOptions): Promise<ManifestRead> {
  const read = await readManifest(opts.manifestPath);
  if (read.manifest || !opts.shard) return read;
  const whole = await readManifest(join(opts.dir, MANIFEST_NAME));
  return { manifest: whole.manifest, warnings: [...read.warnings, ...whole.warnings] };
}

/** The delta encodings this Node can write for real; each missing one is reported once. */
function writableDeltas(warn: (message: string) => void): DeltaEncoding[] {
  return DELTA_ENCODINGS.filter((encoding) => {
    if (deltaSupport[encoding]) return true;
    warn(
      `${encoding} deltas need ${encoding === "dcz" ? "Node >= 22.19" : "Node >= 24.15"} (this is ${process.version}); none written`,
    );
    return false;
  });
}

/** Previous releases' dictionaries of every eligible file, looked up (and hashed) before planning. */
async function dictionariesOf(sorted: Sorted, opts: ResolvedOptions): Promise<Map<string, Dictionary[]>> {
  const releases = await indexReleases(opts.dictionaryFrom);
  const out = new Map<string, Dictionary[]>();
  for (const file of sorted.served) {
    if (!isEligible(file, opts)) continue;
    const found = await releases.dictionariesFor(file.rel);
    if (found.length) out.set(file.rel, found);
  }
  return out;
}

/** Run the planned tasks into the ledger; returns those an abort cut short. */
async function execute(ledger: Ledger, options: PrecompressOptions, warm?: WarmPool): Promise<CompressTask[]> {
  const { tasks } = ledger.plan;
  let done = 0;
  const interrupted = await runPool(
    tasks,
    ledger.opts.concurrency,
    (task, result) => {
      ledger.record(task, result);
      done += 1;
      options.onProgress?.({ done, total: tasks.length, path: ledger.relOf(task.path) });
    },
    options.signal,
    warm,
  );
  ledger.close(interrupted, options.signal?.aborted === true);
  return interrupted;
}
