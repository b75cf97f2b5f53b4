// A run's books: what each worker reported, turned into the next manifest, the files whose state
// changed, the failures, and the variants that are no longer anyone's (orphans to delete).
import { join } from "node:path";
import type { ErrorCode } from "../errors.js";
import { contentTypeOf, VARIANT_SUFFIX } from "../formats.js";
import { withSharedEmpty } from "../manifest.js";
import type { Encoding, Manifest, ManifestEntry } from "../manifest-format.js";
import { VERSION } from "../version.js";
import type { ResolvedOptions } from "./options.js";
import { type Digests, type Plan, type PlannedTask, type Sorted, skipName } from "./plan.js";
import { listed } from "./scan.js";
import type { CompressResult, CompressTask, EncodingOutcome } from "./tasks.js";

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

export interface FileFailure {
  path: string;
  code: ErrorCode;
  message: string;
}

const generator = `precompressor@${VERSION}`;

export class Ledger {
  /** The next manifest's entries: the plan's kept ones, then each worker's result. */
  readonly entries: Map<string, ManifestEntry>;
  readonly changes: { path: string; state: FileState }[] = [];
  readonly failures: FileFailure[] = [];
  readonly failed = new Set<string>();
  /** The plan's skip counts, plus the names found too long by workers. */
  readonly skipped: Plan["skipped"];
  readonly tooLong: Plan["tooLong"];

  constructor(
    readonly opts: ResolvedOptions,
    readonly sorted: Sorted,
    readonly plan: Plan,
    private readonly digests: Digests,
  ) {
    // The books start from the plan's kept entries, taken over rather than copied (a million of them).
    this.entries = plan.kept;
    this.skipped = { ...plan.skipped };
    this.tooLong = new Map(plan.tooLong);
  }

  private get previous(): Manifest | undefined {
    return this.sorted.previous;
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

  /** The walk's own string for a task's key: a million entries keyed by fresh copies would hold each key twice. */
  private keyOf(path: string): string {
    const rel = this.relOf(path);
    return listed(this.sorted.served, rel)?.rel ?? rel;
  }

  relOf(path: string): string {
    return path
      .slice(this.opts.dir.length + 1)
      .split("\\")
      .join("/");
  }

  /** One worker's result: its entry, its state, its failures. */
  record(task: CompressTask, result: CompressResult): void {
    const rel = this.keyOf(task.path);
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
      if (outcome === "name-too-long") skipName(this, rel, encoding);
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

  /** After the pool: files no worker touched keep their entry (after an abort), sources gone are listed. */
  close(interrupted: CompressTask[], aborted: boolean): void {
    if (aborted) this.keepUnstarted(interrupted);
    for (const rel of this.removedSources()) {
      this.changes.push({ path: rel, state: this.opts.dryRun ? "orphaned" : "removed" });
    }
    this.changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** After an abort, files no worker touched keep their last entry: their variants on disk are as it says. */
  private keepUnstarted(interrupted: CompressTask[]): void {
    const cut = new Set(interrupted.map((t) => t.path));
    for (const { file } of this.plan.tasks) {
      const prev = this.previous?.files[file.rel];
      const untouched = !cut.has(file.path) && !this.entries.has(file.rel) && !this.failed.has(file.rel);
      if (prev && untouched) this.entries.set(file.rel, prev);
    }
  }

  private removedSources(): string[] {
    const previous = Object.keys(this.previous?.files ?? {});
    return previous.filter((rel) => !this.entries.has(rel) && !listed(this.sorted.served, rel));
  }

  /** A stopped worker may have replaced some of a file's variants and not others: they all go. */
  interruptedVariants(interrupted: CompressTask[]): string[] {
    return interrupted.flatMap((t) => t.jobs.map((j) => t.path + VARIANT_SUFFIX[j.encoding]));
  }

  /** The last manifest, minus the variants of every file a worker is about to process. */
  interimManifest(tasks: PlannedTask[]): Manifest {
    const files = { ...this.previous?.files };
    for (const { file } of tasks) {
      const rel = file.rel;
      const prev = files[rel];
      if (prev) files[rel] = { hash: prev.hash, size: prev.size, mtimeMs: prev.mtimeMs, type: prev.type, variants: {} };
    }
    return { version: 1, generator, settings: { ...this.previous?.settings }, files };
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
}
