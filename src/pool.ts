// The worker pool, and the order in which files reach it.
import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import type { CompressResult, CompressTask } from "./worker.js";

/** Run from TypeScript sources (tests via tsx) or from the built dist/. */
const workerUrl = new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);

export interface PoolTask {
  task: CompressTask;
  size: number;
}

/**
 * Compress files on `concurrency` threads, largest first, so one huge file
 * never finishes alone at the end of the run.
 */
export async function runPool(
  tasks: PoolTask[],
  concurrency: number | undefined,
  onDone: (task: CompressTask, result: CompressResult) => void,
): Promise<void> {
  if (tasks.length === 0) return;
  const threads = Math.max(1, Math.min(concurrency ?? availableParallelism(), tasks.length));
  const pool = new Piscina({ filename: workerUrl.href, minThreads: threads, maxThreads: threads, idleTimeout: 1000 });
  try {
    const ordered = [...tasks].sort((a, b) => b.size - a.size);
    await Promise.all(
      ordered.map(async ({ task }) => {
        const result = (await pool.run(task)) as CompressResult;
        onDone(task, result);
      }),
    );
  } finally {
    await pool.destroy();
  }
}
