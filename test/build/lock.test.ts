// The lock under races: real processes, started together, with no lock and with a stale one.
// Each holder creates an exclusive marker while it holds the lock and logs enter/leave on the
// machine's monotonic clock; the test asserts no marker clash and at most one holder at any moment.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { ROOT, removeDir, tempDir } from "../support/helpers.js";

const PROCESSES = 4;
const TRIALS = 50;

const HOLDER = `
import { acquireLock } from ${JSON.stringify(pathToFileURL(join(ROOT, "dist", "build", "lock.js")).href)};
import { appendFileSync, existsSync, openSync, closeSync, unlinkSync } from "node:fs";
const [lock, log, marker, go] = process.argv.slice(2);
process.stdout.write("ready\\n");
// Spin until the test says go, so all racers call acquireLock within microseconds of each other.
while (!existsSync(go)) {}
let release;
try {
  release = await acquireLock(lock);
} catch (error) {
  if (error.code !== "E_LOCKED") throw error;
  process.exit(0);
}
const now = () => process.hrtime.bigint().toString();
appendFileSync(log, "enter " + process.pid + " " + now() + "\\n");
let clash = false;
try { closeSync(openSync(marker, "wx")); } catch { clash = true; }
const until = Date.now() + 15;
while (Date.now() < until) {}
appendFileSync(log, "leave " + process.pid + " " + now() + "\\n");
if (!clash) unlinkSync(marker);
await release();
process.exit(clash ? 3 : 0);
`;

const dirs: string[] = [];
after(async () => Promise.all(dirs.map(removeDir)));

/** A pid no process has: one that just exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
  return Number(child.stdout.toString());
}

/** Start `n` holders, wait until each is spinning, then let them all go at once. */
async function race(dir: string, script: string, lock: string, log: string): Promise<number[]> {
  const go = join(dir, "go");
  await rm(go, { force: true });
  const children = Array.from({ length: PROCESSES }, () =>
    spawn(process.execPath, [script, lock, log, join(dir, "marker"), go], { stdio: ["ignore", "pipe", "inherit"] }),
  );
  // Listening for the exit before saying go: a quick holder can be done before writeFile returns.
  const exits = Promise.all(
    children.map((c) => new Promise<number>((done) => c.on("close", (code) => done(code ?? -1)))),
  );
  await Promise.all(children.map((c) => new Promise((ready) => c.stdout.once("data", ready))));
  await writeFile(go, "");
  return exits;
}

/** Most holders at once, from the enter/leave records (one monotonic clock for every process). */
function maxConcurrent(text: string): { max: number; holders: number } {
  const events = text
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [kind, , at] = line.split(" ");
      return { delta: kind === "enter" ? 1 : -1, at: BigInt(at as string) };
    })
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.delta - b.delta));
  let now = 0;
  let max = 0;
  for (const e of events) {
    now += e.delta;
    max = Math.max(max, now);
  }
  return { max, holders: events.filter((e) => e.delta === 1).length };
}

describe("lock race", () => {
  for (const start of ["no lock", "a stale lock"] as const) {
    it(`${PROCESSES} processes × ${TRIALS} trials from ${start}: at most one holder at any moment`, async () => {
      const dir = await tempDir("lock-race-");
      dirs.push(dir);
      const script = join(dir, "holder.mjs");
      await writeFile(script, HOLDER);
      const lock = join(dir, ".precompressor.lock");
      let peak = 0;
      let held = 0;
      for (let trial = 0; trial < TRIALS; trial++) {
        const log = join(dir, `log-${trial}`);
        await writeFile(log, "");
        await rm(lock, { force: true });
        if (start === "a stale lock") await writeFile(lock, `${deadPid()}\nstale\n`);
        const codes = await race(dir, script, lock, log);
        assert.deepEqual(codes, Array(PROCESSES).fill(0), `trial ${trial}: exit codes ${codes} (3 = marker clash)`);
        const { max, holders } = maxConcurrent(await readFile(log, "utf8"));
        assert.ok(max <= 1, `trial ${trial}: ${max} holders at once`);
        assert.ok(holders >= 1, `trial ${trial}: nobody took the lock`);
        peak = Math.max(peak, max);
        held += holders;
      }
      assert.equal(peak, 1);
      console.log(`# ${start}: ${TRIALS} trials × ${PROCESSES} processes, ${held} holds, max ${peak} at once`);
    });
  }
});
