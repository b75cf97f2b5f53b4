// The entry of the child process that host-pool.ts starts: the same piscina pool as in-process,
// in a process whose allocator was configured at its start. The parent decides everything; this
// process only runs what it is sent, and ends at once if the parent goes away.
import { startHere } from "./pool.js";
import type { HostReply, HostRequest } from "./tasks.js";

// Not awaited here: every handler below is in place before the first message can arrive.
const pool = startHere(Math.max(1, Number(process.argv[2]) || 1));
const running = new Map<number, AbortController>();

// The parent disconnects when its run is over. A parent killed outright (SIGKILL) disconnects too,
// with files still in work, and this process must not go on writing them alone: process.exit()
// would wait for encodes in flight (seconds at brotli 11), so die as abruptly as the parent did.
process.on("disconnect", () => {
  if (running.size) process.kill(process.pid, "SIGKILL");
  else process.exit(0);
});
// Ctrl-C reaches the whole process group; the parent handles it and tells this process what to stop.
process.on("SIGINT", () => {});
process.on("SIGTERM", () => {});

function reply(message: HostReply): void {
  if (process.connected) process.send?.(message);
}

process.on("message", (message: HostRequest) => {
  if (message.type === "abort") {
    running.get(message.id)?.abort();
    return;
  }
  const { id, task } = message;
  const controller = new AbortController();
  running.set(id, controller);
  pool
    .then((p) => p.run(task, { signal: controller.signal }))
    .then(
      (result) => reply({ id, result }),
      (error: unknown) =>
        reply({ id, error: (error as Error)?.message ?? String(error), aborted: controller.signal.aborted }),
    )
    .finally(() => running.delete(id));
});
