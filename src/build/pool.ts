// The worker pool, and the order in which files reach it.
import { availableParallelism } from "node:os";
import { STREAM_THRESHOLD } from "../codecs.js";
import { startHost, wantsHost } from "./host-pool.js";
import type { CompressResult, CompressTask, TaskRunner } from "./tasks.js";

/** Run from TypeScript sources (tests via tsx) or from the built dist/. */
const workerUrl = new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);

export interface PoolTask {
  /** The message for the worker: read once, when the file is sent. */
  readonly task: CompressTask;
  readonly size: number;
  /** Only to be hashed and listed: no encodings, no deltas. */
  readonly hashOnly: boolean;
}

/** Tasks cut short by an abort: they may have left some variants half-replaced. */
export type Interrupted = CompressTask[];

/**
 * Compress files on `concurrency` threads, largest first, so one huge file never finishes
 * alone at the end of the run. On abort, no new file starts and running ones are stopped;
 * the stopped ones are returned so the caller can remove what they may have written.
 */
export async function runPool(
  tasks: PoolTask[],
  concurrency: number | undefined,
  onDone: (task: CompressTask, result: CompressResult) => void,
  signal?: AbortSignal,
  warm?: WarmPool,
): Promise<Interrupted> {
  // Files only to be hashed and listed cost less than a trip to a thread: run them here.
  const listOnly = tasks.filter((t) => t.hashOnly);
  const toCompress = tasks.filter((t) => !t.hashOnly);
  try {
    const [interrupted] = await Promise.all([
      runOnThreads(toCompress, concurrency, onDone, signal, warm),
      runHere(listOnly, onDone, signal),
    ]);
    return interrupted;
  } finally {
    await warm?.release();
  }
}

/** Threads started before the plan is known, so they boot while the walk runs; used once, or released. */
export interface WarmPool {
  readonly threads: number;
  /** The pool, once: whoever takes it destroys it. */
  take(): Promise<TaskRunner> | undefined;
  /** Destroy the pool if nobody took it. */
  release(): Promise<void>;
}

/**
 * Start `concurrency` compression threads now. For a cold build, where every file will need them:
 * their start-up then overlaps the walk instead of following it.
 */
export function warmPool(concurrency: number | undefined): WarmPool {
  const threads = Math.max(1, concurrency ?? availableParallelism());
  let runner: Promise<TaskRunner> | undefined = startHere(threads);
  // A pool that failed to start fails whoever takes it, not the process before anyone does.
  runner.catch(() => undefined);
  const take = () => {
    const taken = runner;
    runner = undefined;
    return taken;
  };
  return { threads, take, release: async () => (await take())?.destroy() };
}

/**
 * Hash-only tasks on this thread, one after another: their file calls are synchronous, so
 * each file yields to the event loop once, letting the pool's results in between.
 */
async function runHere(
  tasks: PoolTask[],
  onDone: (task: CompressTask, result: CompressResult) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (tasks.length === 0) return;
  const { default: compressFile } = await import("./worker.js");
  for (const { task } of tasks) {
    if (signal?.aborted) return;
    onDone(task, await compressFile(task));
    await new Promise(setImmediate);
  }
}

async function runOnThreads(
  tasks: PoolTask[],
  concurrency: number | undefined,
  onDone: (task: CompressTask, result: CompressResult) => void,
  signal: AbortSignal | undefined,
  warm: WarmPool | undefined,
): Promise<Interrupted> {
  if (tasks.length === 0) return [];
  const streamed = tasks.filter((t) => t.size > STREAM_THRESHOLD).map((t) => t.task);
  const host = wantsHost(streamed);
  const threads = Math.max(1, Math.min(warm?.threads ?? concurrency ?? availableParallelism(), tasks.length));
  // The host has threads of its own: warm ones here would only sit idle through the run.
  if (host) await warm?.release();
  const pool = host ? startHost(threads, streamed.length > 0) : await (warm?.take() ?? startHere(threads));
  const ordered = [...tasks].sort((a, b) => b.size - a.size);
  const interrupted: CompressTask[] = [];
  let next = 0;
  // Each lane takes the next largest file when its last one is done: a bounded queue that an abort empties at once.
  const lane = async () => {
    while (next < ordered.length && !signal?.aborted) {
      const { task } = ordered[next++] as PoolTask;
      try {
        onDone(task, await pool.run(task, { signal }));
      } catch (error) {
        if (!signal?.aborted) throw error;
        interrupted.push(task);
      }
    }
  };
  try {
    // Two lanes a thread keep every thread busy while results travel back.
    await Promise.all(Array.from({ length: threads * 2 }, lane));
  } finally {
    await pool.destroy();
  }
  return interrupted;
}

/** The piscina pool of compression threads, in this process (the pool host calls it too). */
export async function startHere(threads: number): Promise<TaskRunner> {
  // Loaded only when there is work: an unchanged rerun never pays for it.
  const { Piscina } = await import("piscina");
  const pool = new Piscina({ filename: workerUrl.href, minThreads: threads, maxThreads: threads, idleTimeout: 1000 });
  return {
    run: (task, options) => pool.run(task, options) as Promise<CompressResult>,
    destroy: () => pool.destroy(),
  };
}
