// The library's one job: bring a directory's variants and manifest up to date.

import { realpath } from "node:fs/promises";
import { basename, join } from "node:path";
import { performance } from "node:perf_hooks";
import fg from "fast-glob";
import { evictCache } from "../cache.js";
import { DELTA_ENCODINGS, deltaSupport } from "../delta.js";
import { type ErrorCode, PrecompressorError } from "../errors.js";
import { ALL_ENCODINGS, brotliKindOf, contentTypeOf, isCompressible, VARIANT_SUFFIX } from "../formats.js";
import {
  MANIFEST_NAME,
  type ManifestRead,
  readManifest,
  sameManifest,
  withSharedEmpty,
  writeManifest,
} from "../manifest.js";
import type { DeltaEncoding, Encoding, Manifest, ManifestEntry } from "../manifest-format.js";
import { isOwnTemp, markCacheDir, nameFits, removeOwned, slotIsFree, TEMP_GLOB } from "../ownership.js";
import { assertDirectory } from "../paths.js";
import { VERSION } from "../version.js";
import { acquireLock, LOCK_NAME } from "./lock.js";
import { type PrecompressOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { type PoolTask, runPool } from "./pool.js";
import { indexReleases, type ReleaseIndex } from "./releases.js";
import { isListed, type ScannedFile, scan } from "./scan.js";
import { settingsDigest } from "./settings.js";
import { fileCost, type Shard, splitShards } from "./shard.js";
import type { CompressResult, CompressTask, DeltaJob, EncodingJob, EncodingOutcome } from "./tasks.js";

/**
 * What happened to one file. A real run: compressed, restored (from the cache), removed (source gone),
 * failed. `--check`/`--dry-run`: stale (would change), missing (not in the manifest), orphaned (would be removed).
 */
export type FileState =
  | "compressed"
  | "restored"
  | "unchanged"
  | "removed"
  | "failed"
  | "stale"
  | "missing"
  | "orphaned";

export interface EncodingTotals {
  /** Variants of this encoding in place after the run. */
  files: number;
  /** Bytes of every eligible file. */
  bytesBefore: number;
  /** Bytes served to a client of this encoding: the variant where there is one, else the original. */
  bytesAfter: number;
  /** Eligible files whose variant was not worth writing (`--min-ratio`). */
  notWorthIt: number;
}

export interface Summary {
  dir: string;
  manifest: string;
  dryRun: boolean;
  /** Files listed in the manifest (served), and how many of them had each state. */
  files: number;
  states: Record<"compressed" | "restored" | "unchanged" | "removed" | "failed", number>;
  /** Files not compressed (or not in every encoding), by reason. */
  skipped: {
    type: number;
    minSize: number;
    /** Files with a variant whose own name would pass the file system's 255-byte limit: listed, served identity. */
    nameTooLong: number;
  };
  encodings: Partial<Record<Encoding, EncodingTotals>>;
  /** RFC 9842 deltas in place after the run, per encoding (with `dictionaryFrom`). */
  deltas: Partial<Record<DeltaEncoding, { files: number; bytes: number }>>;
  /** Every file whose state is not `unchanged`, sorted by path. */
  changes: { path: string; state: FileState }[];
  failures: { path: string; code: ErrorCode; message: string }[];
  warnings: string[];
  durationMs: number;
}

const generator = `precompressor@${VERSION}`;

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
  try {
    const { manifest: previous, warnings: manifestWarnings } = await readPrevious(opts);
    for (const message of manifestWarnings) warn(message);
    const scanned = await scan(opts);
    for (const message of scanned.warnings) warn(message);
    if (!opts.dryRun) await remove(scanned.temps);
    const run = new Run(opts, realRoot, previous, scanned.files, options.onProgress);
    for (const folder of scanned.unreadable) run.unreadableFolder(folder);
    const releases = opts.dictionaryFrom.length ? await indexReleases(opts.dictionaryFrom) : undefined;
    const tasks = await run.plan(releases, warn);
    if (!opts.dryRun && previous && tasks.length) {
      // Until the new manifest is written, no manifest may name a variant that is about to be replaced.
      await writeManifest(opts.manifestPath, run.interimManifest(tasks));
    }
    const interrupted = await run.execute(tasks, options.signal);
    const summary = run.summarise(warnings);
    if (!opts.dryRun) {
      await remove(run.interruptedVariants(interrupted));
      // Variants are in place before the manifest names them; orphans go only once it no longer does.
      const next = run.manifest();
      // A run that had nothing to do leaves the file (and its mtime, which servers watch) alone.
      if (tasks.length || !sameManifest(next, previous)) await writeManifest(opts.manifestPath, next);
      await remove(run.orphanVariants());
      if (options.signal?.aborted) {
        await remove(await ownTemps(opts.dir));
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

/** Temp files of workers that were stopped mid-write: our exact name pattern, nothing else. */
async function ownTemps(dir: string): Promise<string[]> {
  const temps = await fg(TEMP_GLOB, { cwd: dir, dot: true, absolute: true, suppressErrors: true });
  return temps.filter((t) => isOwnTemp(basename(t)));
}

/** One run's plan and results: which files need a worker, and the manifest they add up to. */
class Run {
  private readonly digests: Partial<Record<Encoding | DeltaEncoding, string>> = {};
  private readonly entries = new Map<string, ManifestEntry>();
  private readonly changes: { path: string; state: FileState }[] = [];
  private readonly failures: Summary["failures"] = [];
  private readonly failed = new Set<string>();
  private readonly skipped = { type: 0, minSize: 0, nameTooLong: 0 };
  /** Encodings each file cannot have because the variant's own name is too long. */
  private readonly tooLong = new Map<string, Set<Encoding>>();
  private readonly served: ScannedFile[];
  /** Sizes of files sitting where a variant goes (`x.js.br` beside `x.js`), ours or not. */
  private readonly slots = new Map<string, number>();
  private readonly eligible = new Set<string>();

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly realRoot: string,
    private readonly previous: Manifest | undefined,
    files: ScannedFile[],
    private readonly onProgress: PrecompressOptions["onProgress"],
  ) {
    for (const e of opts.encodings) {
      this.digests[e] = settingsDigest({
        encoding: e,
        level: opts.levels[e],
        minSize: opts.minSize,
        minRatio: opts.minRatio,
      });
    }
    const served: ScannedFile[] = [];
    for (const f of files) {
      if (this.isVariantSlot(f.rel, files)) this.slots.set(f.rel, f.size);
      else served.push(f);
    }
    const shard = opts.shard;
    if (!shard) {
      this.served = served;
      return;
    }
    // Slots above were told apart with the whole last manifest; from here on, this shard's files only.
    const shardOf = splitShards(
      served.map((f) => ({ rel: f.rel, weight: fileCost(f.size, isCompressible(f.rel) && f.size >= opts.minSize) })),
      shard.count,
    );
    const mine = (rel: string) => shardOf(rel) === shard.index;
    this.served = served.filter((f) => mine(f.rel));
    if (previous)
      this.previous = {
        ...previous,
        files: Object.fromEntries(Object.entries(previous.files).filter(([k]) => mine(k))),
      };
  }

  /**
   * `x.js.br` beside a compressible `x.js` is a variant's place, not a file of the site; so is one
   * the last manifest recorded as a variant, whose source is now gone (an orphan to delete).
   */
  private isVariantSlot(rel: string, files: readonly ScannedFile[]): boolean {
    const match = /^(.+)(\.gz|\.br|\.zst)$/s.exec(rel);
    if (!match) return false;
    const [, base = "", suffix] = match;
    if (isCompressible(base) && isListed(files, base)) return true;
    const encoding = ALL_ENCODINGS.find((e) => VARIANT_SUFFIX[e] === suffix);
    return encoding !== undefined && this.previous?.files[base]?.variants[encoding] !== undefined;
  }

  /** Decide, for every file, whether the manifest already holds it (fast path) or a worker must look. */
  async plan(releases: ReleaseIndex | undefined, warn: (message: string) => void): Promise<PoolTask[]> {
    const deltaEncodings = releases ? this.deltaEncodings(warn) : [];
    const tasks: PoolTask[] = [];
    for (const file of this.served) {
      const jobs = this.jobsFor(file);
      const prev = this.previous?.files[file.rel];
      const dictionaries =
        jobs.length && deltaEncodings.length && releases ? await releases.dictionariesFor(file.rel) : [];
      // With dictionaries, a worker re-checks the deltas; without, last run's deltas are orphans.
      if (prev && !dictionaries.length && this.isUpToDate(file, prev, jobs)) {
        this.entries.set(file.rel, kept(prev, jobs));
        continue;
      }
      const task = this.taskFor(file, jobs, prev);
      if (dictionaries.length) task.deltas = { rel: file.rel, encodings: deltaEncodings, dictionaries };
      tasks.push({ size: file.size, task });
    }
    return tasks;
  }

  /** The delta encodings this Node can write for real; each missing one is reported once. */
  private deltaEncodings(warn: (message: string) => void): DeltaJob["encodings"] {
    const out: DeltaJob["encodings"] = [];
    for (const encoding of DELTA_ENCODINGS) {
      if (!deltaSupport[encoding]) {
        warn(
          `${encoding} deltas need ${encoding === "dcz" ? "Node >= 22.19" : "Node >= 24.15"} (this is ${process.version}); none written`,
        );
        continue;
      }
      const level = this.opts.levels[encoding === "dcz" ? "zstd" : "br"];
      const digest = settingsDigest({ encoding, level, minSize: this.opts.minSize, minRatio: this.opts.minRatio });
      this.digests[encoding] = digest;
      out.push({ encoding, level, digest });
    }
    return out;
  }

  /** Run the planned tasks; returns those an abort cut short. */
  async execute(tasks: PoolTask[], signal: AbortSignal | undefined): Promise<CompressTask[]> {
    const total = tasks.length;
    let done = 0;
    const interrupted = await runPool(
      tasks,
      this.opts.concurrency,
      (task, result) => {
        this.record(task, result);
        done += 1;
        this.onProgress?.({ done, total, path: this.relOf(task.path) });
      },
      signal,
    );
    if (signal?.aborted) this.keepUnstarted(tasks, interrupted);
    for (const rel of this.removedSources()) {
      this.changes.push({ path: rel, state: this.opts.dryRun ? "orphaned" : "removed" });
    }
    this.changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return interrupted;
  }

  /** After an abort, files no worker touched keep their last entry: their variants on disk are as it says. */
  private keepUnstarted(tasks: PoolTask[], interrupted: CompressTask[]): void {
    const cut = new Set(interrupted.map((t) => t.path));
    for (const { task } of tasks) {
      const rel = this.relOf(task.path);
      const prev = this.previous?.files[rel];
      if (prev && !cut.has(task.path) && !this.entries.has(rel) && !this.failed.has(rel)) this.entries.set(rel, prev);
    }
  }

  /** A stopped worker may have replaced some of a file's variants and not others: they all go. */
  interruptedVariants(interrupted: CompressTask[]): string[] {
    return interrupted.flatMap((t) => t.jobs.map((j) => t.path + VARIANT_SUFFIX[j.encoding]));
  }

  /** The last manifest, minus the variants of every file a worker is about to process. */
  interimManifest(tasks: PoolTask[]): Manifest {
    const files = { ...this.previous?.files };
    for (const { task } of tasks) {
      const rel = this.relOf(task.path);
      const prev = files[rel];
      if (prev) files[rel] = { hash: prev.hash, size: prev.size, mtimeMs: prev.mtimeMs, type: prev.type, variants: {} };
    }
    return { version: 1, generator, settings: { ...this.previous?.settings }, files };
  }

  /**
   * A folder the walk could not read is reported, and what the last run recorded under it is kept
   * as it was: a permission hiccup must not look like deleted files and delete their variants.
   */
  unreadableFolder(folder: string): void {
    this.fail(folder, "E_READ", `${join(this.opts.dir, folder)}: folder not readable (EACCES)`);
    const prefix = folder === "" ? "" : `${folder}/`;
    for (const [rel, entry] of Object.entries(this.previous?.files ?? {})) {
      if (rel.startsWith(prefix)) this.entries.set(rel, entry);
    }
  }

  private fail(path: string, code: ErrorCode, message: string): void {
    this.failed.add(path);
    this.failures.push({ path, code, message });
    this.changes.push({ path, state: "failed" });
  }

  private jobsFor(file: ScannedFile): EncodingJob[] {
    if (!isCompressible(file.rel)) {
      this.skipped.type += 1;
      return [];
    }
    if (file.size < this.opts.minSize) {
      this.skipped.minSize += 1;
      return [];
    }
    this.eligible.add(file.rel);
    const fits = this.opts.encodings.filter((e) => nameFits(file.path + VARIANT_SUFFIX[e]));
    for (const e of this.opts.encodings) if (!fits.includes(e)) this.skipName(file.rel, e);
    return fits.map((encoding) => ({
      encoding,
      level: this.opts.levels[encoding],
      digest: this.digests[encoding] as string,
    }));
  }

  /** A variant skipped for its name's length: the file is counted once among the skips. */
  private skipName(rel: string, encoding: Encoding): void {
    const set = this.tooLong.get(rel) ?? new Set();
    if (set.size === 0) this.skipped.nameTooLong += 1;
    this.tooLong.set(rel, set.add(encoding));
  }

  /** The fast path: same size and mtime, same settings, variants present with their recorded sizes. Nothing is read. */
  private isUpToDate(file: ScannedFile, prev: ManifestEntry, jobs: EncodingJob[]): boolean {
    if (prev.size !== file.size || prev.mtimeMs !== file.mtimeMs) return false;
    return jobs.every(({ encoding, digest }) => {
      if (this.previous?.settings[encoding] !== digest) return false;
      const onDisk = this.slots.get(file.rel + VARIANT_SUFFIX[encoding]);
      if (onDisk !== prev.variants[encoding]?.size) return false;
      // No variant recorded: not worth it, or a write that failed last time and must be retried.
      return prev.variants[encoding] !== undefined || slotIsFree(file.path + VARIANT_SUFFIX[encoding]);
    });
  }

  private taskFor(file: ScannedFile, jobs: EncodingJob[], prev: ManifestEntry | undefined): CompressTask {
    return {
      path: file.path,
      realRoot: this.realRoot,
      kind: brotliKindOf(file.rel),
      jobs,
      minRatio: this.opts.minRatio,
      previous:
        prev && this.previous
          ? { hash: prev.hash, variants: prev.variants, deltas: prev.deltas, settings: this.previous.settings }
          : undefined,
      cacheDir: this.opts.cacheDir,
      dryRun: this.opts.dryRun,
    };
  }

  private relOf(path: string): string {
    return path
      .slice(this.opts.dir.length + 1)
      .split("\\")
      .join("/");
  }

  private record(task: CompressTask, result: CompressResult): void {
    const rel = this.relOf(task.path);
    if (!result.ok) {
      this.fail(rel, result.code, result.message);
      return;
    }
    const entry: ManifestEntry = {
      hash: result.hash,
      size: result.size,
      mtimeMs: result.mtimeMs,
      type: contentTypeOf(rel),
      variants: result.variants,
      ...(result.deltas.length ? { deltas: result.deltas } : {}),
    };
    this.entries.set(rel, withSharedEmpty(entry));
    const outcomes = Object.values(result.outcomes);
    for (const [encoding, outcome] of Object.entries(result.outcomes) as [Encoding, EncodingOutcome][])
      if (outcome === "name-too-long") this.skipName(rel, encoding);
    // Listed all the same (served identity where a variant is missing), and reported.
    if (result.failures.length) {
      this.failed.add(rel);
      for (const f of result.failures) this.failures.push({ path: rel, ...f });
      this.changes.push({ path: rel, state: "failed" });
      return;
    }
    const state = this.stateOf(rel, outcomes);
    if (state) this.changes.push({ path: rel, state });
  }

  private stateOf(rel: string, outcomes: EncodingOutcome[]): FileState | undefined {
    const known = this.previous?.files[rel] !== undefined;
    if (this.opts.dryRun) {
      if (!known) return "missing";
      return outcomes.includes("would-write") ? "stale" : undefined;
    }
    if (outcomes.includes("compressed")) return "compressed";
    return outcomes.includes("restored") ? "restored" : undefined;
  }

  private removedSources(): string[] {
    const previous = Object.keys(this.previous?.files ?? {});
    return previous.filter((rel) => !this.entries.has(rel) && !isListed(this.served, rel));
  }

  manifest(): Manifest {
    const files: Record<string, ManifestEntry> = {};
    for (const rel of [...this.entries.keys()].sort()) files[rel] = this.entries.get(rel) as ManifestEntry;
    const shard = this.opts.shard && { index: this.opts.shard.index, count: this.opts.shard.count };
    return { version: 1, generator, settings: { ...this.digests }, ...(shard ? { shard } : {}), files };
  }

  /** Variant files the last manifest listed and this one does not: source gone, encoding dropped, or failed. */
  orphanVariants(): string[] {
    const paths: string[] = [];
    const previous = this.previous?.files ?? {};
    for (const rel of Object.keys(previous)) {
      const prev = previous[rel] as ManifestEntry;
      const now = this.entries.get(rel);
      for (const encoding of Object.keys(prev.variants) as Encoding[]) {
        if (!now?.variants[encoding]) paths.push(join(this.opts.dir, rel + VARIANT_SUFFIX[encoding]));
      }
      for (const delta of prev.deltas ?? []) {
        if (!now?.deltas?.some((d) => d.file === delta.file)) paths.push(join(this.opts.dir, delta.file));
      }
    }
    return paths;
  }

  summarise(warnings: string[]): Summary {
    const states = { compressed: 0, restored: 0, unchanged: 0, removed: 0, failed: 0 };
    for (const c of this.changes) if (c.state in states) states[c.state as keyof typeof states] += 1;
    // Unchanged: listed last time and nothing to do now; a new image is neither changed nor unchanged.
    const changed = new Set(this.changes.map((c) => c.path));
    states.unchanged = this.served.filter((f) => this.previous?.files[f.rel] && !changed.has(f.rel)).length;
    const encodings: Summary["encodings"] = {};
    for (const encoding of this.opts.encodings) {
      const totals: EncodingTotals = { files: 0, bytesBefore: 0, bytesAfter: 0, notWorthIt: 0 };
      for (const rel of this.eligible) {
        const entry = this.entries.get(rel);
        if (!entry) continue;
        const variant = entry.variants[encoding];
        totals.bytesBefore += entry.size;
        totals.bytesAfter += variant?.size ?? entry.size;
        if (variant) totals.files += 1;
        else if (!this.opts.dryRun && !this.tooLong.get(rel)?.has(encoding) && !this.failed.has(rel))
          totals.notWorthIt += 1;
      }
      encodings[encoding] = totals;
    }
    const deltas: Summary["deltas"] = {};
    for (const entry of this.entries.values()) {
      for (const d of entry.deltas ?? []) {
        const t = deltas[d.encoding] ?? { files: 0, bytes: 0 };
        t.files += 1;
        t.bytes += d.size;
        deltas[d.encoding] = t;
      }
    }
    return {
      dir: this.opts.dir,
      manifest: this.opts.manifestPath,
      dryRun: this.opts.dryRun,
      files: this.entries.size,
      states,
      skipped: this.skipped,
      encodings,
      deltas,
      changes: this.changes,
      failures: this.failures,
      warnings,
      durationMs: 0,
    };
  }
}

const ENTRY_KEYS = "hash,size,mtimeMs,type,variants";

/**
 * An up-to-date file's entry: its last one, shared rather than copied when the copy would be the
 * same JSON (a million-file rerun would otherwise hold every entry twice).
 */
function kept(prev: ManifestEntry, jobs: EncodingJob[]): ManifestEntry {
  const variants = pick(prev.variants, jobs);
  if (Object.keys(prev).join() === ENTRY_KEYS && Object.keys(variants).join() === Object.keys(prev.variants).join())
    return prev;
  return withSharedEmpty({ hash: prev.hash, size: prev.size, mtimeMs: prev.mtimeMs, type: prev.type, variants });
}

function pick<T>(variants: Partial<Record<Encoding, T>>, jobs: EncodingJob[]): Partial<Record<Encoding, T>> {
  const out: Partial<Record<Encoding, T>> = {};
  for (const { encoding } of jobs) if (variants[encoding]) out[encoding] = variants[encoding];
  return out;
}
