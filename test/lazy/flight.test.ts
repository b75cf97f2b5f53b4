import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createFlight } from "../../src/lazy/flight.js";

/** A promise and the hands that settle it, so a test decides when a run ends. */
function gate<T = void>() {
  let open!: (value: T) => void;
  let fail!: (error: Error) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

describe("lazy flight", () => {
  it("coalesces concurrent calls of one key into one run, and clears the key when it ends", async () => {
    const flight = createFlight<string>({ concurrency: 1, maxQueue: 10 });
    const done = gate<string>();
    let calls = 0;
    const work = () => {
      calls += 1;
      return done.promise;
    };
    const first = flight.run("k", work);
    const second = flight.run("k", work);
    assert.equal(first, second);
    assert.equal(flight.get("k"), first);
    assert.equal(flight.keys, 1);
    assert.equal(flight.active, 1);
    done.open("made");
    assert.deepEqual(await Promise.all([first, second]), ["made", "made"]);
    assert.equal(calls, 1);
    assert.equal(flight.get("k"), undefined);
    assert.equal(flight.keys, 0);
    assert.equal(flight.active, 0);
  });

  it("clears a key whose run failed: every waiter sees the error, the next call runs again", async () => {
    const flight = createFlight<string>({ concurrency: 1, maxQueue: 10 });
    let calls = 0;
    const failing = async () => {
      calls += 1;
      throw new Error("disk full");
    };
    const waiters = [flight.run("k", failing), flight.run("k", failing)];
    for (const w of waiters) await assert.rejects(w as Promise<string>, /disk full/);
    assert.equal(flight.get("k"), undefined);
    assert.equal(await flight.run("k", async () => `again after ${calls}`), "again after 1");
    assert.equal(flight.active, 0);
  });

  it("runs at most `concurrency` keys at once, even when they start in the same tick", async () => {
    const flight = createFlight<void>({ concurrency: 2, maxQueue: 10 });
    let running = 0;
    let most = 0;
    const work = async () => {
      running += 1;
      most = Math.max(most, running);
      await sleep(20);
      running -= 1;
    };
    const runs = ["a", "b", "c", "d", "e"].map((key) => flight.run(key, work));
    assert.equal(flight.active, 5);
    assert.equal(flight.keys, 5);
    await Promise.all(runs);
    assert.equal(most, 2);
    assert.equal(flight.active, 0);
  });

  it("refuses a new key once the queue is full, and starts it again once there is room", async () => {
    const flight = createFlight<void>({ concurrency: 1, maxQueue: 1 });
    const done = gate();
    const running = flight.run("a", () => done.promise);
    const queued = flight.run("b", async () => {});
    assert.equal(
      flight.run("c", async () => {}),
      undefined,
    );
    // A key already under way is still answered: joining costs no queue place.
    assert.equal(
      flight.run("b", async () => {}),
      queued,
    );
    done.open();
    await Promise.all([running, queued]);
    assert.ok(flight.run("c", async () => {}));
  });

  it("after forget, a run is no longer current and the key starts anew beside it", async () => {
    const flight = createFlight<boolean>({ concurrency: 2, maxQueue: 10 });
    const old = gate();
    const first = flight.run("k", async (current) => {
      await old.promise;
      return current();
    });
    await sleep(0);
    flight.forget("k");
    assert.equal(flight.get("k"), undefined);
    const second = flight.run("k", async (current) => current());
    assert.notEqual(first, second);
    assert.equal(await second, true);
    old.open();
    assert.equal(await first, false, "the forgotten run must know its result is not wanted");
    assert.equal(flight.active, 0);
  });

  it("forget() without a key forgets every key", async () => {
    const flight = createFlight<void>({ concurrency: 1, maxQueue: 10 });
    const done = gate();
    const runs = [flight.run("a", () => done.promise), flight.run("b", () => done.promise)];
    flight.forget();
    assert.equal(flight.keys, 0);
    assert.equal(flight.active, 2, "forgotten runs still hold their places");
    done.open();
    await Promise.all(runs);
    assert.equal(flight.active, 0);
  });

  it("close rejects queued runs without starting them, lets the running one finish, and ends at 0", async () => {
    const flight = createFlight<string>({ concurrency: 1, maxQueue: 10 });
    const done = gate<string>();
    let started = 0;
    const running = flight.run("a", () => {
      started += 1;
      return done.promise;
    });
    const queued = flight.run("b", async () => {
      started += 1;
      return "never";
    });
    await sleep(0);
    flight.close();
    await assert.rejects(queued as Promise<string>, /closed/);
    assert.equal(started, 1);
    done.open("finished");
    assert.equal(await running, "finished");
    assert.equal(flight.active, 0);
    await assert.rejects(flight.run("c", async () => "late") as Promise<string>, /closed/);
  });
});
