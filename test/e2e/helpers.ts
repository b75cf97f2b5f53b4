// Shared by the bundler and watch suites: a temp copy of the demo app that resolves precompressor,
// vite and rollup like an installed project, long-running child processes, and README snippets.
import { type ChildProcess, spawn } from "node:child_process";
import { cp, mkdir, readFile, symlink } from "node:fs/promises";
import { join } from "node:path";
import { after } from "node:test";
import { type CliResult, ROOT, removeDir, tempDir } from "../support/helpers.js";

export const FIXTURE_APP = join(ROOT, "fixtures", "app");
export const VITE = join(ROOT, "node_modules", "vite", "bin", "vite.js");
export const ROLLUP = join(ROOT, "node_modules", "rollup", "dist", "bin", "rollup");
export const CLI = join(ROOT, "bin", "precompressor.js");

/** fixtures/app in a temp folder, with node_modules/{precompressor,vite,rollup} linked to this checkout. */
export async function copyApp(): Promise<string> {
  const dir = await tempDir("app-");
  await cp(FIXTURE_APP, dir, { recursive: true });
  await mkdir(join(dir, "node_modules"));
  await symlink(ROOT, join(dir, "node_modules", "precompressor"), "dir");
  for (const name of ["vite", "rollup"]) {
    await symlink(join(ROOT, "node_modules", name), join(dir, "node_modules", name), "dir");
  }
  return dir;
}

/** A maker of fresh app copies for one test file; every copy is removed after its tests. */
export function appCopies(): () => Promise<string> {
  const dirs: string[] = [];
  after(async () => Promise.all(dirs.map(removeDir)));
  return async () => {
    const dir = await copyApp();
    dirs.push(dir);
    return dir;
  };
}

/** Run a Node script to completion. */
export function runNode(script: string, args: string[], cwd: string): Promise<CliResult> {
  const child = startNode(script, args, cwd);
  return new Promise((resolve, reject) => {
    child.process.on("error", reject);
    child.process.on("close", (code) => resolve({ code, stdout: child.stdout(), stderr: child.stderr() }));
  });
}

export interface Live {
  process: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the match once stdout+stderr has matched `pattern` `count` times; rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, count?: number, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** A long-running Node child (a watcher) whose output the test reads as it comes. */
export function startNode(script: string, args: string[], cwd: string): Live {
  const child = spawn(process.execPath, [script, ...args], {
    cwd,
    env: { ...process.env, CI: "true", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return {
    process: child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (pattern, count = 1, timeoutMs = 60_000) =>
      poll(() => {
        const matches = [...(out + err).matchAll(new RegExp(pattern.source, `${pattern.flags.replace("g", "")}g`))];
        return matches.length >= count ? matches[count - 1] : undefined;
      }, timeoutMs).catch((error: Error) => {
        throw new Error(`${error.message}: ${pattern} x${count}\n--- stdout\n${out}\n--- stderr\n${err}`);
      }),
  };
}

/** Call `check` every 50 ms until it returns a value; a loaded machine gets `timeoutMs` before it fails. */
export async function poll<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The README's code block after `<!-- snippet: <path> -->`: tests run the fixture file, so it must be this
 * text exactly, or the README shows something no test ran.
 */
export async function readmeSnippet(path: string): Promise<string> {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  const at = readme.indexOf(`<!-- snippet: ${path} -->`);
  if (at < 0) throw new Error(`README.md has no snippet marker for ${path}`);
  const block = /```\w*\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!block?.[1]) throw new Error(`README.md: no code block after the marker for ${path}`);
  return block[1];
}
