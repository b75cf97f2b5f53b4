// What a run must do, decided from data alone: the walk's files, the last manifest and the settings
// in; the files of the site, the tasks for the workers (each with its reason) and the entries
// kept as they were out. No disk, no threads: the one question only the disk can answer (is a
// variant's place free?) is asked through `slotIsFree`, so tests can answer it themselves.
import { brotliKindOf, isCompressible, VARIANT_SUFFIX, variantOf } from "../formats.js";
import { withSharedEmpty } from "../manifest.js";
import type { DeltaEncoding, Encoding, Manifest, ManifestEntry } from "../manifest-format.js";
import { nameFits } from "../ownership.js";
import { variantHolds } from "./freshness.js";
import type { ResolvedOptions } from "./options.js";
import type { PoolTask } from "./pool.js";
import type { Dictionary } from "./releases.js";
import { listed, type ScannedFile } from "./scan.js";
import { settingsDigest } from "./settings.js";
import { fileCost, splitShards } from "./shard.js";
import type { CompressTask, DeltaJob, EncodingJob } from "./tasks.js";

/** The settings digest of each encoding this run writes: the manifest's `settings`. */
export type Digests = Partial<Record<Encoding | DeltaEncoding, string>>;

/** The site's files, told apart from the variants beside them, for this run (or this shard). */
export interface Sorted {
  /** Files of the site this run is responsible for, in key order (the ledger searches them). */
  served: ScannedFile[];
  /** Sizes of files sitting where a variant goes (`x.js.br` beside `x.js`), ours or not. */
  slots: Map<string, number>;
  /** The last manifest, restricted to this shard's files when sharded. */
  previous: Manifest | undefined;
}

/** Why a file goes to a worker rather than keeping its last entry. */
export type TaskReason =
  /** Not in the last manifest. */
  | "new"
  /** Its size or mtime differ from the last manifest's. */
  | "changed"
  /** An encoding's settings changed, or an encoding was added. */
  | "settings"
  /** A variant is missing, or is not the size the last manifest recorded. */
  | "variant"
  /** Previous releases give it dictionaries: a worker re-checks its deltas. */
  | "deltas";

/**
 * One file a worker must look at, kept small: its task message is made when the file is sent, not
 * held for every file from the plan to the end of the run (a million of them were 250 MB).
 */
export class PlannedTask implements PoolTask {
  /** Previous releases give it dictionaries: the deltas to write against them. */
  deltas?: DeltaJob;

  constructor(
    readonly file: ScannedFile,
    readonly reason: TaskReason,
    readonly jobs: EncodingJob[],
    private readonly prev: ManifestEntry | undefined,
    private readonly run: TaskContext,
  ) {}

  get size(): number {
    return this.file.size;
  }

  get hashOnly(): boolean {
    return this.jobs.length === 0 && !this.deltas;
  }

  /** The message for the worker, made anew on each read. */
  get task(): CompressTask {
    const { prev, run } = this;
    return {
      path: this.file.path,
      realRoot: run.realRoot,
      kind: brotliKindOf(this.file.rel),
      jobs: this.jobs,
      minRatio: run.minRatio,
      previous:
        prev && run.settings
          ? { hash: prev.hash, variants: prev.variants, deltas: prev.deltas, settings: run.settings }
          : undefined,
      ...(this.deltas ? { deltas: this.deltas } : {}),
      cacheDir: run.cacheDir,
      dryRun: run.dryRun,
    };
  }
}

/** What every task of one run shares. */
interface TaskContext {
  realRoot: string;
  minRatio: number;
  cacheDir: string | undefined;
  dryRun: boolean;
  /** The last manifest's settings, with which a worker judges its recorded variants. */
  settings: Manifest["settings"] | undefined;
}

export interface Plan {
  tasks: PlannedTask[];
  /** Entries carried over unchanged from the last manifest (the fast path: nothing is read). */
  kept: Map<string, ManifestEntry>;
  /** Files that get variants: compressible and at least `minSize` bytes. */
  eligible: Set<string>;
  skipped: { type: number; minSize: number; nameTooLong: number };
  /** Encodings each file cannot have because the variant's own name would be too long. */
  tooLong: Map<string, Set<Encoding>>;
}

export interface PlanInput {
  opts: ResolvedOptions;
  /** The root with symlinks resolved, handed to every task. */
  realRoot: string;
  sorted: Sorted;
  digests: Digests;
  /** The delta encodings this Node can write (empty without `dictionaryFrom`). */
  deltaEncodings: DeltaJob["encodings"];
  /** Previous releases' dictionaries of each eligible file; missing means none. */
  dictionaries: ReadonlyMap<string, Dictionary[]>;
  /** Nothing is at `path` and its folder is writable (a failed write of last run is retried). */
  slotIsFree: (path: string) => boolean;
}

/** The settings digests of the encodings `opts` asks for (deltas add theirs in `deltaJobs`). */
export function digestsOf(opts: ResolvedOptions): Digests {
  const digests: Digests = {};
  const { minSize, minRatio } = opts;
  for (const encoding of opts.encodings)
    digests[encoding] = settingsDigest({ encoding, level: opts.levels[encoding], minSize, minRatio });
  return digests;
}

/** The delta jobs for `encodings` (those this Node can write), their digests added to `digests`. */
export function deltaJobs(opts: ResolvedOptions, encodings: DeltaEncoding[], digests: Digests): DeltaJob["encodings"] {
  return encodings.map((encoding) => {
    const level = opts.levels[encoding === "dcz" ? "zstd" : "br"];
    const digest = settingsDigest({ encoding, level, minSize: opts.minSize, minRatio: opts.minRatio });
    digests[encoding] = digest;
    return { encoding, level, digest };
  });
}

/** Whether a file gets variants at all, before its names are checked. */
export function isEligible(file: ScannedFile, opts: Pick<ResolvedOptions, "minSize">): boolean {
  return isCompressible(file.rel) && file.size >= opts.minSize;
}

/** Tell the site's files from the variants beside them, and keep this shard's share. */
export function sortFiles(walked: ScannedFile[], previous: Manifest | undefined, opts: ResolvedOptions): Sorted {
  // The walk lists them in key order, which the searches here and in the ledger rely on; any other list is sorted.
  const files = isSorted(walked) ? walked : [...walked].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const slots = new Map<string, number>();
  const served: ScannedFile[] = [];
  for (const f of files) {
    if (isVariantSlot(f.rel, files, previous)) slots.set(f.rel, f.size);
    else served.push(f);
  }
  const shard = opts.shard;
  if (!shard) return { served, slots, previous };
  // Slots above were told apart with the whole last manifest; from here on, this shard's files only.
  const shardOf = splitShards(served, shard.count, (f) => fileCost(f.size, isEligible(f, opts)));
  const mine = (rel: string) => shardOf(rel) === shard.index;
  return { served: served.filter((f) => mine(f.rel)), slots, previous: previous && onlyMine(previous, mine) };
}

/** The last manifest with only this shard's entries: key by key, not a million [key, entry] pairs. */
function onlyMine(previous: Manifest, mine: (rel: string) => boolean): Manifest {
  const files: Manifest["files"] = {};
  for (const rel of Object.keys(previous.files)) if (mine(rel)) files[rel] = previous.files[rel] as ManifestEntry;
  return { ...previous, files };
}

function isSorted(files: readonly ScannedFile[]): boolean {
  for (let i = 1; i < files.length; i++)
    if ((files[i - 1] as ScannedFile).rel > (files[i] as ScannedFile).rel) return false;
  return true;
}

/**
 * `x.js.br` beside a compressible `x.js` is a variant's place, not a file of the site; so is one
 * the last manifest recorded as a variant, whose source is now gone (an orphan to delete).
 */
function isVariantSlot(rel: string, files: readonly ScannedFile[], previous: Manifest | undefined): boolean {
  const variant = variantOf(rel);
  if (!variant) return false;
  if (isCompressible(variant.source) && listed(files, variant.source)) return true;
  return previous?.files[variant.source]?.variants[variant.encoding] !== undefined;
}

/** Decide, for every served file, whether the last manifest already holds it or a worker must look. */
export function plan(input: PlanInput): Plan {
  const { opts, sorted, digests } = input;
  const out: Plan = {
    tasks: [],
    kept: new Map(),
    eligible: new Set(),
    skipped: { type: 0, minSize: 0, nameTooLong: 0 },
    tooLong: new Map(),
  };
  const run: TaskContext = {
    realRoot: input.realRoot,
    minRatio: opts.minRatio,
    cacheDir: opts.cacheDir,
    dryRun: opts.dryRun,
    settings: sorted.previous?.settings,
  };
  for (const file of sorted.served) {
    const jobs = jobsFor(file, opts, digests, out);
    const prev = sorted.previous?.files[file.rel];
    const dictionaries = jobs.length && input.deltaEncodings.length ? (input.dictionaries.get(file.rel) ?? []) : [];
    // With dictionaries, a worker re-checks the deltas; without, last run's deltas are orphans.
    const reason = dictionaries.length ? "deltas" : staleReason(file, prev, jobs, input);
    if (!reason && prev) {
      out.kept.set(file.rel, kept(prev, jobs));
      continue;
    }
    const task = new PlannedTask(file, reason ?? "new", jobs, prev, run);
    if (dictionaries.length) task.deltas = { rel: file.rel, encodings: input.deltaEncodings, dictionaries };
    out.tasks.push(task);
  }
  return out;
}

/** Most files get no variants: one frozen empty list for all of them (a million empty arrays would be tens of megabytes). */
const NO_JOBS = Object.freeze([]) as unknown as EncodingJob[];

function jobsFor(file: ScannedFile, opts: ResolvedOptions, digests: Digests, out: Plan): EncodingJob[] {
  if (!isCompressible(file.rel)) {
    out.skipped.type += 1;
    return NO_JOBS;
  }
  if (file.size < opts.minSize) {
    out.skipped.minSize += 1;
    return NO_JOBS;
  }
  out.eligible.add(file.rel);
  const fits = opts.encodings.filter((e) => nameFits(file.path + VARIANT_SUFFIX[e]));
  for (const e of opts.encodings) if (!fits.includes(e)) skipName(out, file.rel, e);
  return fits.map((encoding) => ({ encoding, level: opts.levels[encoding], digest: digests[encoding] as string }));
}

/** A variant skipped for its name's length: the file is counted once among the skips. */
export function skipName(counts: Pick<Plan, "skipped" | "tooLong">, rel: string, encoding: Encoding): void {
  const set = counts.tooLong.get(rel) ?? new Set();
  if (set.size === 0) counts.skipped.nameTooLong += 1;
  counts.tooLong.set(rel, set.add(encoding));
}

/**
 * The fast path's test: same size and mtime, same settings, variants present with their recorded
 * sizes (nothing is read). `undefined` when the last entry still holds.
 */
function staleReason(
  file: ScannedFile,
  prev: ManifestEntry | undefined,
  jobs: EncodingJob[],
  { sorted, slotIsFree }: PlanInput,
): TaskReason | undefined {
  if (!prev) return "new";
  if (prev.size !== file.size || prev.mtimeMs !== file.mtimeMs) return "changed";
  for (const { encoding, digest } of jobs) {
    if (sorted.previous?.settings[encoding] !== digest) return "settings";
    const size = sorted.slots.get(file.rel + VARIANT_SUFFIX[encoding]);
    const found = size === undefined ? undefined : { size };
    if (!variantHolds(prev.variants[encoding], found, () => slotIsFree(file.path + VARIANT_SUFFIX[encoding])))
      return "variant";
  }
  return undefined;
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
