// `--watch`: re-run precompress when sources under dir change, debounced, blind to its own writes.
import { watch as watchFs } from "node:fs";
import { basename, join, resolve, sep } from "node:path";
import { LOCK_NAME } from "../build/lock.js";
import type { PrecompressOptions } from "../build/options.js";
import { precompress } from "../build/precompress.js";
import type { Summary } from "../build/summary.js";
import { isDeltaFileName } from "../delta.js";
import { isCompressible, variantOf } from "../formats.js";
import { MANIFEST_NAME } from "../manifest.js";
import { isOwnTemp } from "../ownership.js";

export interface WatchOptions extends PrecompressOptions {
  /** Quiet time after the last change before a re-run starts. Default 200 ms. */
  debounceMs?: number;
  /** The watcher is in place (changes from now on are seen) and the first run starts. */
  onReady?: (dir: string) => void;
  onRun: (summary: Summary, first: boolean) => void | Promise<void>;
  /** A re-run that threw (other than an abort); watching goes on. */
  onError: (error: unknown) => void;
}

/**
 * Run `precompress(options)` now, and again after each burst of changes under `dir`, one run at a time, until
 * `options.signal` aborts. Watching starts before the first run, so edits made during it are not missed.
 * Resolves once no run is in flight. The first run's error rejects, as would `precompress()`'s; a re-run's
 * goes to `onError`; an abort that cuts a run short rejects with `E_ABORTED` (the manifest is consistent).
 *
 * @example
 * const controller = new AbortController();
 * await watch({ dir: "dist", signal: controller.signal, onRun: (s) => console.log(s.states), onError: console.error });
 */
export function watch(options: WatchOptions): Promise<void> {
  const dir = resolve(options.dir ?? "dist");
  const manifest = options.manifest ? resolve(options.manifest) : join(dir, MANIFEST_NAME);
  const { signal } = options;
  return new Promise((done, fail) => {
    let timer: NodeJS.Timeout | undefined;
    let running = false;
    let pending = false;
    const finish = (error?: unknown) => {
      watcher.close();
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (error) fail(error);
      else done();
    };
    const onAbort = () => running || finish();
    const run = async (first: boolean) => {
      if (running) return; // the run in flight re-schedules when it ends
      running = true;
      pending = false;
      try {
        await options.onRun(await precompress(options), first);
      } catch (error) {
        if (first || signal?.aborted) return finish(error);
        options.onError(error);
      } finally {
        running = false;
      }
      if (signal?.aborted) finish();
      else if (pending) schedule();
    };
    const schedule = () => {
      clearTimeout(timer);
      timer = setTimeout(run, options.debounceMs ?? 200, false);
    };
    const watcher = watchFs(dir, { recursive: true }, (_event, name) => {
      // No name: something changed, the platform would not say what.
      if (name !== null && isOwnWrite(name, dir, manifest)) return;
      pending = true;
      schedule();
    });
    watcher.on("error", finish);
    if (signal?.aborted) return finish();
    signal?.addEventListener("abort", onAbort);
    options.onReady?.(dir);
    void run(true);
  });
}

/** Files precompress itself writes: variants, deltas, the manifest, temp files and the lock. */
function isOwnWrite(name: string, dir: string, manifest: string): boolean {
  const file = basename(name);
  if (file === LOCK_NAME || file === MANIFEST_NAME || isOwnTemp(file) || isDeltaFileName(file)) return true;
  if (join(dir, name) === manifest) return true;
  // `app.js.br` is ours; `notes.tar.gz`, whose base is not a type we compress, is a source.
  const variant = variantOf(name);
  return variant !== undefined && isCompressible(variant.source.split(sep).join("/"));
}
