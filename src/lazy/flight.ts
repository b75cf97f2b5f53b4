// Single flight: one run per key at a time, shared by every caller of that key, and at most
// `concurrency` runs at once; the others wait for a turn in a bounded queue.

export interface FlightOptions {
  /** Runs at once; the others queue. */
  concurrency: number;
  /** Runs waiting for a turn; past this, `run` starts nothing and returns `undefined`. */
  maxQueue: number;
}

/** `current()` is false once `forget` dropped this run's key: its result must then not be recorded. */
export type Work<T> = (current: () => boolean) => Promise<T>;

export interface Flight<T> {
  /** The run of `key` under way, else a new one of `work`; `undefined` when the queue is full. */
  run(key: string, work: Work<T>): Promise<T> | undefined;
  /** The run of `key` under way, if any. */
  get(key: string): Promise<T> | undefined;
  /** Let the next `run` of `key` (or of every key) start anew; the runs under way go on. */
  forget(key?: string): void;
  /** Queued runs reject at once, and so do later ones; the runs under way go on. */
  close(): void;
  /** Keys with a run under way (not forgotten). */
  readonly keys: number;
  /** Runs running or queued, forgotten ones included. */
  readonly active: number;
}

/**
 * Create a single flight. A run that rejects is cleared like one that resolves: the next call
 * of its key starts again.
 *
 * @example
 * const flight = createFlight<Outcome>({ concurrency: 1, maxQueue: 1000 });
 * const a = flight.run(key, () => compress(task));
 * const b = flight.run(key, () => compress(task)); // a === b: one compression
 */
export function createFlight<T>({ concurrency, maxQueue }: FlightOptions): Flight<T> {
  const runs = new Map<string, Promise<T>>();
  const queue: (() => void)[] = [];
  let running = 0;
  let closed = false;

  // Counted when granted, not a tick later: two runs started in one tick must not both go.
  function turn(): Promise<void> {
    if (running < concurrency) {
      running += 1;
      return Promise.resolve();
    }
    return new Promise((go) => queue.push(go));
  }

  function release(): void {
    const next = queue.shift();
    if (next) next();
    else running -= 1;
  }

  function run(key: string, work: Work<T>): Promise<T> | undefined {
    const known = runs.get(key);
    if (known) return known;
    if (queue.length >= maxQueue) return undefined;
    const current = () => runs.get(key) === done;
    const done: Promise<T> = turn()
      .then(() => {
        if (closed) throw new Error("closed");
        return work(current);
      })
      .finally(() => {
        release();
        if (current()) runs.delete(key);
      });
    runs.set(key, done);
    return done;
  }

  return {
    run,
    get: (key) => runs.get(key),
    forget(key) {
      if (key === undefined) runs.clear();
      else runs.delete(key);
    },
    close() {
      closed = true;
      // Each queued run takes a slot and gives it back at once, so `active` ends at 0.
      for (const go of queue.splice(0)) {
        running += 1;
        go();
      }
    },
    get keys() {
      return runs.size;
    },
    get active() {
      return running + queue.length;
    },
  };
}
