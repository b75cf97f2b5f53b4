// On Node < 22.15, files too big to buffer stream their zstd through @mongodb-js/zstd, whose
// encoder takes no size hint: every frame allocates its full level-19 tables and faults them in
// page by page. glibc can back such allocations with transparent huge pages
// (`glibc.malloc.hugetlb=1`), much faster zstd (README, "Large files", has the figures), but only
// from an environment variable read at process start. So where it pays, the worker pool runs in a child process started with it;
// the parent keeps the lock, the manifest and every decision.
import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { zstdBackend } from "../zstd.js";
import type { CompressResult, CompressTask, HostReply, HostRequest, TaskRunner } from "./tasks.js";

const HUGE_PAGES = "glibc.malloc.hugetlb=1";

/**
 * glibc raises its mmap threshold each time a big block is freed, after which brotli's and zstd's
 * per-block buffers come from the heap and fragment it, and a long stream's memory grows with
 * nothing live in it. A fixed threshold slows a corpus of small files, so the host takes this
 * only for runs that stream a file, where one long stream, not the small files, sets the wall
 * time. README, "Large files", has the measurements.
 */
const BOUNDED_HEAP = "glibc.malloc.trim_threshold=131072";
const hostUrl = new URL(import.meta.url.endsWith(".ts") ? "./worker-host.ts" : "./worker-host.js", import.meta.url);

/**
 * Whether the tasks of files too big to buffer (`streamed`) are worth a child process: whole
 * buffers never reach the bindings. `PRECOMPRESSOR_POOL_HOST=0` never starts one, `=1` always
 * does (the tests use both).
 */
export function wantsHost(streamed: readonly CompressTask[]): boolean {
  const forced = process.env.PRECOMPRESSOR_POOL_HOST;
  if (forced === "0" || forced === "1") return forced === "1";
  return hostHelpsZstd() && streamed.some((t) => t.jobs.some((j) => j.encoding === "zstd" && j.level > 3));
}

/** Whether this process's zstd streams would run faster in a host: the bindings, on Linux, with huge pages on offer. */
export function hostHelpsZstd(): boolean {
  if (process.platform !== "linux" || zstdBackend === "node:zlib") return false;
  // Already set for this process (by the user, or we are the child): the in-process pool has it.
  if (process.env.GLIBC_TUNABLES?.includes("glibc.malloc.hugetlb")) return false;
  try {
    return /\[(always|madvise)\]/.test(readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8"));
  } catch {
    return false;
  }
}

/**
 * Start the child process with `threads` compression threads; `streams` when some file is too
 * big to buffer, so the host keeps its heap from growing over the long stream.
 */
export function startHost(threads: number, streams: boolean): TaskRunner {
  const userSet = process.env.GLIBC_TUNABLES ?? "";
  const bounded = streams && !/glibc\.malloc\.(trim|mmap)_threshold/.test(userSet) ? BOUNDED_HEAP : "";
  const tunables = [userSet, HUGE_PAGES, bounded].filter(Boolean).join(":");
  const child: ChildProcess = fork(hostUrl, [String(threads)], {
    env: { ...process.env, GLIBC_TUNABLES: tunables },
    // Only what loads TypeScript (tests run the sources); never the parent's --test or --inspect flags.
    execArgv: hostUrl.pathname.endsWith(".ts") ? ["--import", "tsx"] : [],
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const pending = new Map<number, { resolve: (r: CompressResult) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let gone: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    const fail = (error: Error) => {
      gone ??= error;
      for (const p of pending.values()) p.reject(gone);
      pending.clear();
      resolve();
    };
    child.on("error", (error) => fail(new Error(`cannot run the compression process: ${error.message}`)));
    child.on("exit", (code, signal) => fail(new Error(`the compression process exited (${signal ?? `code ${code}`})`)));
  });
  child.on("message", (reply: HostReply) => {
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if ("result" in reply) p.resolve(reply.result);
    else p.reject(Object.assign(new Error(reply.error), { name: reply.aborted ? "AbortError" : "Error" }));
  });
  const send = (message: HostRequest) => {
    if (child.connected) child.send(message);
  };
  return {
    run(task, { signal }) {
      if (gone) return Promise.reject(gone);
      if (signal?.aborted) return Promise.reject(signal.reason);
      const id = nextId++;
      return new Promise<CompressResult>((resolve, reject) => {
        const onAbort = () => send({ type: "abort", id });
        signal?.addEventListener("abort", onAbort, { once: true });
        pending.set(id, {
          resolve: (r) => {
            signal?.removeEventListener("abort", onAbort);
            resolve(r);
          },
          reject: (e) => {
            signal?.removeEventListener("abort", onAbort);
            reject(e);
          },
        });
        send({ type: "run", id, task });
      });
    },
    async destroy() {
      if (child.connected) child.disconnect();
      await exited;
    },
  };
}
