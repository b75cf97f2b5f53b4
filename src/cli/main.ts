// Flags in, library call, output out. Nothing here that the library should know.
import { resolve } from "node:path";
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { clean } from "../build/clean.js";
import type { PrecompressOptions, Progress } from "../build/options.js";
import { precompress } from "../build/precompress.js";
import type { Summary } from "../build/summary.js";
import { PrecompressorError } from "../errors.js";
import { DEFAULT_LEVELS, DEFAULT_MIN_RATIO, DEFAULT_MIN_SIZE } from "../limits.js";
import { readManifest } from "../manifest.js";
import type { Encoding } from "../manifest-format.js";
import { markCacheDir } from "../ownership.js";
import { VERSION } from "../version.js";
import { loadConfig } from "./config-file.js";
import { formatChanges, formatRunLine, formatSummary } from "./report.js";
import { watch } from "./watch.js";

const EXIT_FAILED = 1;
const DEFAULT_LAZY_CACHE = "node_modules/.cache/precompressor/lazy";
const EXIT_USAGE = 2;

function integer(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${flag} expects a whole number, got "${value}"`);
    return Number(value);
  };
}

function ratio(value: string): number {
  const n = Number(value);
  if (!/^\d*\.?\d+$/.test(value) || !(n > 0 && n <= 1))
    throw new InvalidArgumentError(`--min-ratio expects a number above 0 and at most 1, got "${value}"`);
  return n;
}

function byteSize(value: string): number {
  const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`--cache-max-size expects bytes like 1073741824, 500M or 1G, got "${value}"`);
  const unit = (m[2] ?? "").charAt(0).toLowerCase();
  return Number(m[1]) * (unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1);
}

function encodingList(value: string): Encoding[] {
  const list = value.split(",").map((s) => s.trim().toLowerCase());
  for (const e of list) {
    if (e !== "gzip" && e !== "br" && e !== "zstd")
      throw new InvalidArgumentError(`--encodings: unknown encoding "${e}" (use gzip, br, zstd)`);
  }
  return list as Encoding[];
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface ServeFlags {
  port: number;
  host: string;
  lazy?: boolean;
  lazyCacheDir: string;
  staleWhileRevalidate?: number;
}

/** Parse `argv` and run; resolves to the exit code. */
export async function main(argv: string[] = process.argv): Promise<number> {
  const program = compressCommand();
  addClean(program);
  addMerge(program);
  addServe(program);
  addConfig(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    return handleError(error);
  }
}

/** `precompressor [dir]`: the program itself, whose default action compresses. */
function compressCommand(): Command {
  return new Command("precompressor")
    .description("Compress a static site once, at build time, to .gz, .br and .zst beside each file.")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) })
    .argument("[dir]", "folder to compress", "dist")
    .option("--encodings <list>", "comma-separated: gzip,br,zstd", encodingList)
    .option("--gzip-level <n>", "gzip level 1-9", integer("--gzip-level"), DEFAULT_LEVELS.gzip)
    .option("--brotli-level <n>", "brotli quality 0-11", integer("--brotli-level"), DEFAULT_LEVELS.br)
    .option("--zstd-level <n>", "zstd level (19 max on Node < 22.15)", integer("--zstd-level"), DEFAULT_LEVELS.zstd)
    .option("--min-size <bytes>", "files smaller than this get no variants", integer("--min-size"), DEFAULT_MIN_SIZE)
    .option("--min-ratio <ratio>", "keep a variant only if compressed <= ratio * original", ratio, DEFAULT_MIN_RATIO)
    .option("--include <glob>", "only files matching (repeatable)", collect)
    .option("--exclude <glob>", "skip files matching (repeatable)", collect)
    .option("--follow-symlinks", "follow symlinks that stay inside dir")
    .option("--concurrency <n>", "worker threads (default: available parallelism)", integer("--concurrency"))
    .option("--manifest <path>", "manifest location (default <dir>/.precompressor.json)")
    .option("--cache-dir <path>", "persistent cache (default node_modules/.cache/precompressor)")
    .option("--no-cache", "do not read or write the persistent cache")
    .addOption(new Option("--cache-max-size <size>", "cache bound, e.g. 500M, 1G (default 1G)").argParser(byteSize))
    .option(
      "--dictionary-from <dir>",
      "previous release: write RFC 9842 dcz/dcb deltas against it (repeatable)",
      collect,
    )
    .option("--check", "write nothing; exit 1 if anything is stale, missing or orphaned")
    .option("--dry-run", "show what would change; write nothing")
    .option("--json", "print one JSON summary object instead of text")
    .option("-q, --quiet", "print nothing but errors")
    .option("--force", "allow a root or home folder as dir")
    .option("--shard <k/n>", "compress only job k's share of n; `merge` joins the n outputs")
    .option("--config <path>", "config file (default: precompressor.config.* or package.json, searched upwards)")
    .option("--verbose", "one line per changed file: state, path, bytes per encoding")
    .option("--watch", "after the first run, re-run when files under dir change")
    .action(async (dir: string, flags: Record<string, unknown>, cmd: Command) => {
      process.exitCode = await runCompress(dir, flags, cmd);
    });
}

function addClean(program: Command): void {
  program
    .command("clean")
    .description("remove every variant the manifest lists, and the manifest")
    .argument("[dir]", "folder", "dist")
    .option("--manifest <path>", "manifest location")
    .option("--lazy-cache-dir <path>", "lazy mode's cache to empty too", DEFAULT_LAZY_CACHE)
    .action(async (dir: string, flags: { manifest?: string; lazyCacheDir: string }) => {
      const result = await clean({ dir, manifest: flags.manifest, lazyCacheDir: flags.lazyCacheDir });
      for (const w of result.warnings) console.error(`warning: ${w}`);
      console.log(`removed ${result.removed} variants and the manifest`);
    });
}

function addMerge(program: Command): void {
  program
    .command("merge")
    .description("join the partial manifests of --shard k/n runs into the manifest")
    .argument("[dir]", "folder the shards' outputs were copied into", "dist")
    .action(async (dir: string) => {
      const { merge } = await import("../build/merge.js");
      const result = await merge({ dir });
      for (const w of result.warnings) console.error(`warning: ${w}`);
      console.log(`merged ${result.shards} shards: ${result.files} files in ${result.manifest}`);
    });
}

function addServe(program: Command): void {
  program
    .command("serve")
    .description("preview server for a precompressed folder")
    .argument("[dir]", "folder", "dist")
    .option("--port <n>", "port", integer("--port"), 8080)
    .option("--host <host>", "host", "127.0.0.1")
    .option("--lazy", "compress on first request what the manifest does not list")
    .option("--lazy-cache-dir <path>", "where lazy mode keeps its variants", DEFAULT_LAZY_CACHE)
    .option(
      "--stale-while-revalidate <seconds>",
      "how long an unhashed script or style stays a dictionary; 0 sends must-revalidate (default 86400)",
      integer("--stale-while-revalidate"),
    )
    .action(async (dir: string, flags: ServeFlags) => {
      const { startServer } = await import("../serve/preview.js");
      // Refused before listening: a folder with someone else's files is never a lazy cache.
      if (flags.lazy) await markCacheDir(resolve(flags.lazyCacheDir), "--lazy-cache-dir");
      const lazy = flags.lazy ? { cacheDir: flags.lazyCacheDir } : undefined;
      const { port, host, staleWhileRevalidate } = flags;
      const server = await startServer({ dir, port, host, lazy, staleWhileRevalidate });
      console.log(`serving ${dir} at ${server.url}`);
    });
}

function addConfig(program: Command): void {
  program
    .command("config")
    .description("print an nginx server block or a Caddyfile site block that serves dir's variants")
    .addArgument(new Argument("<server>", "nginx or caddy").choices(["nginx", "caddy"]))
    .argument("[dir]", "folder", "dist")
    .option("--listen <host:port>", "address to listen on, e.g. 127.0.0.1:8080 or 80", "80")
    .action(async (server: "nginx" | "caddy", dir: string, flags: { listen: string }) => {
      const { serverConfig } = await import("../server-config/index.js");
      process.stdout.write(serverConfig(server, { dir, listen: flags.listen }));
    });
}

async function runCompress(dir: string, flags: Record<string, unknown>, cmd: Command): Promise<number> {
  const json = flags.json === true;
  const quiet = flags.quiet === true || json;
  const verbose = flags.verbose === true && !quiet;
  const file = await loadConfig({ file: flags.config as string | undefined });
  // The file's keys are the flags' names; a flag wins only if typed: commander's defaults are no one's choice.
  for (const [key, value] of Object.entries(file?.config ?? {})) {
    if (cmd.getOptionValueSource(key) !== "cli") flags[key] = value;
  }
  const options: PrecompressOptions = {
    dir: cmd.args.length > 0 ? dir : (file?.config.dir ?? dir),
    encodings: flags.encodings as Encoding[] | undefined,
    gzipLevel: flags.gzipLevel as number,
    brotliLevel: flags.brotliLevel as number,
    zstdLevel: flags.zstdLevel as number,
    minSize: flags.minSize as number,
    minRatio: flags.minRatio as number,
    include: flags.include as string[] | undefined,
    exclude: flags.exclude as string[] | undefined,
    followSymlinks: flags.followSymlinks === true,
    concurrency: flags.concurrency as number | undefined,
    manifest: flags.manifest as string | undefined,
    cache: flags.cache !== false,
    cacheDir: flags.cacheDir as string | undefined,
    cacheMaxSize: flags.cacheMaxSize as number | undefined,
    check: flags.check === true,
    dryRun: flags.dryRun === true,
    force: flags.force === true,
    dictionaryFrom: flags.dictionaryFrom as string[] | undefined,
    shard: flags.shard as string | undefined,
    onWarning: (message) => console.error(`warning: ${message}`),
  };
  if (flags.watch === true && (options.check || options.dryRun))
    throw new PrecompressorError("E_BAD_OPTION", "--watch: cannot be combined with --check or --dry-run");
  const output = { json, quiet, verbose };
  const interrupt = listenForSignals();
  options.signal = interrupt.signal;
  try {
    const progress = quiet ? undefined : await createProgress();
    options.onProgress = progress?.update;
    if (flags.watch === true) {
      await runWatch(options, progress, output);
      return interrupt.exitCode();
    }
    const summary = await precompress(options).finally(() => progress?.stop());
    return await report(summary, options, output);
  } catch (error) {
    if (error instanceof PrecompressorError && error.code === "E_ABORTED") {
      console.error(`error: ${error.message}`);
      return interrupt.exitCode();
    }
    throw error;
  } finally {
    interrupt.dispose();
  }
}

type Output = { json: boolean; quiet: boolean; verbose: boolean };

/** `--watch`: the first run reported in full, then one line per re-run, until a signal aborts `options.signal`. */
async function runWatch(options: PrecompressOptions, progress: ProgressOutput | undefined, output: Output) {
  let firstRun = true;
  await watch({
    ...options,
    // A bar or 10% lines per re-run would drown the one summary line each prints.
    onProgress: (p) => firstRun && progress?.update(p),
    onReady: (dir) => output.quiet || console.error(`watching ${dir} for changes (Ctrl-C stops)`),
    onRun: async (summary, first) => {
      if (!first) return reportRerun(summary, output);
      firstRun = false;
      progress?.stop();
      await report(summary, options, output);
    },
    // A failed re-run (a locked or vanished dir) is reported; the next change tries again.
    onError: (error) => console.error(error instanceof PrecompressorError ? `error: ${error.message}` : error),
  }).finally(() => progress?.stop());
}

/** `--verbose`'s lines; the bytes are the manifest's, read back once the run wrote it. */
async function printChanges(summary: Summary): Promise<void> {
  const { manifest } = await readManifest(summary.manifest);
  for (const line of formatChanges(summary, manifest)) console.log(line);
}

/** The first run's output and exit code. */
async function report(summary: Summary, options: PrecompressOptions, output: Output): Promise<number> {
  const { json, quiet, verbose } = output;
  if (json) console.log(JSON.stringify(summary, null, 2));
  if (verbose) await printChanges(summary);
  if (!quiet) console.log(formatSummary(summary));
  if (options.check || options.dryRun) {
    const pending = summary.changes.filter((c) => c.state !== "unchanged");
    if (!json) for (const c of pending) console.log(`${c.state}: ${c.path}`);
    if (options.check) {
      if (!json) console.log(pending.length ? `${pending.length} paths out of date` : "up to date");
      return pending.length ? EXIT_FAILED : 0;
    }
  }
  for (const f of summary.failures) console.error(`error: ${f.message}`);
  return summary.failures.length ? EXIT_FAILED : 0;
}

/** A `--watch` re-run: one line (one JSON line with `--json`), its files with `--verbose`, its failures. */
async function reportRerun(summary: Summary, { json, quiet, verbose }: Output): Promise<void> {
  if (json) console.log(JSON.stringify(summary));
  if (verbose) await printChanges(summary);
  if (!quiet) console.log(formatRunLine(summary));
  for (const f of summary.failures) console.error(`error: ${f.message}`);
}

/**
 * SIGINT/SIGTERM stop the run cleanly (workers stopped, temp files removed, manifest consistent)
 * and exit 130/143 like a shell; a second signal exits at once.
 */
function listenForSignals() {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) process.exit(signal === "SIGINT" ? 130 : 143);
    received = signal;
    controller.abort(new Error(`received ${signal}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    exitCode: () => (received === "SIGTERM" ? 143 : 130),
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/** A bar on a terminal; plain lines every 10% elsewhere (CI logs). */
type ProgressOutput = { update: (p: Progress) => void; stop: () => void };

async function createProgress(): Promise<ProgressOutput> {
  if (!process.stderr.isTTY) {
    let lastTenth = -1;
    return {
      update: ({ done, total }) => {
        const tenth = Math.floor((done / total) * 10);
        if (tenth !== lastTenth) {
          lastTenth = tenth;
          console.error(`processed ${done}/${total} files`);
        }
      },
      stop: () => {},
    };
  }
  const { SingleBar, Presets } = (await import("cli-progress")).default;
  const bar = new SingleBar(
    { format: "{bar} {value}/{total} {path}", stream: process.stderr, hideCursor: true, clearOnComplete: true },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update: ({ done, total, path }) => {
      if (!started) bar.start(total, 0, { path: "" });
      started = true;
      bar.update(done, { path });
    },
    stop: () => {
      if (started) bar.stop();
      started = false;
    },
  };
}

/** A known error prints its one-line message; an unknown one its stack. Usage errors exit 2. */
function handleError(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander already printed the message; help and version are not failures.
    return error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  if (error instanceof PrecompressorError) {
    console.error(`error: ${error.message}`);
    return error.code === "E_BAD_OPTION" ? EXIT_USAGE : EXIT_FAILED;
  }
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return EXIT_FAILED;
}
