// The compression threads: one task in, one outcome out, within the time limit. Lazy work runs
// off the event loop, on at most `concurrency` threads that exit when idle.
import { Piscina } from "piscina";
import type { LazySettings } from "./options.js";
import type { LazyOutcome, LazyTask } from "./worker.js";

/** Run from TypeScript sources (tests via tsx) or from the built dist/. */
const workerUrl = new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);

/**
 * The threads of one compressor, started on the first task.
 *
 * @example
 * const pool = threads({ concurrency: 1, timeoutMs: 30_000 });
 * const outcome = await pool.compress(task); // never rejects: a failure is { kind: "error" }
 * await pool.destroy();
 */
export function threads({ concurrency, timeoutMs }: Pick<LazySettings, "concurrency" | "timeoutMs">) {
  let pool: Piscina | undefined;
  return {
    async compress(task: LazyTask): Promise<LazyOutcome> {
      try {
        pool ??= new Piscina({ filename: workerUrl.href, minThreads: 0, maxThreads: concurrency, idleTimeout: 30_000 });
        // The limit counts from when the work starts, not from when it was queued.
        return (await pool.run(task, { signal: AbortSignal.timeout(timeoutMs) })) as LazyOutcome;
      } catch (error) {
        const { name, message } = error as Error;
        return {
          kind: "error",
          code: "E_COMPRESS",
          message: name === "AbortError" ? `took longer than ${timeoutMs} ms` : message,
        };
      }
    },
    destroy: () => pool?.destroy(),
  };
}
