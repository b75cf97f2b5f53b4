// Flags in, library call, output out. Nothing here that the library should know.
import { createRequire } from "node:module";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { clean } from "./clean.js";
import { PrecompressorError } from "./errors.js";
import type { Encoding } from "./manifest-format.js";
import { type PrecompressOptions, type Progress, precompress, type Summary } from "./precompress.js";
import { formatSummary } from "./report.js";

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

/** Parse `argv` and run; resolves to the exit code. */
export async function main(argv: string[] = process.argv): Promise<number> {
  const program = new Command("precompressor")
    .description("Compress a static site once, at build time, to .gz, .br and .zst beside each file.")
    .version((createRequire(import.meta.url)("../package.json") as { version: string }).version)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) })
    .argument("[dir]", "folder to compress", "dist")
    .option("--encodings <list>", "comma-separated: gzip,br,zstd", encodingList)
    .option("--gzip-level <n>", "gzip level 1-9", integer("--gzip-level"), 9)
    .option("--brotli-level <n>", "brotli quality 0-11", integer("--brotli-level"), 11)
    .option("--zstd-level <n>", "zstd level (19 max on Node < 22.15)", integer("--zstd-level"), 19)
    .option("--min-size <bytes>", "files smaller than this get no variants", integer("--min-size"), 1024)
    .option("--min-ratio <ratio>", "keep a variant only if compressed <= ratio * original", ratio, 0.95)
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
    .action(async (dir: string, flags: Record<string, unknown>) => {
      process.exitCode = await runCompress(dir, flags);
    });

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

  program
    .command("serve")
    .description("preview server for a precompressed folder")
    .argument("[dir]", "folder", "dist")
    .option("--port <n>", "port", integer("--port"), 8080)
    .option("--host <host>", "host", "127.0.0.1")
    .option("--lazy", "compress on first request what the manifest does not list")
    .option("--lazy-cache-dir <path>", "where lazy mode keeps its variants", DEFAULT_LAZY_CACHE)
    .action(async (dir: string, flags: { port: number; host: string; lazy?: boolean; lazyCacheDir: string }) => {
      const { startServer } = await import("./serve/preview.js");
      const lazy = flags.lazy ? { cacheDir: flags.lazyCacheDir } : undefined;
      const server = await startServer({ dir, port: flags.port, host: flags.host, lazy });
      console.log(`serving ${dir} at ${server.url}`);
    });

  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    return handleError(error);
  }
}

async function runCompress(dir: string, flags: Record<string, unknown>): Promise<number> {
  const json = flags.json === true;
  const quiet = flags.quiet === true || json;
  const options: PrecompressOptions = {
    dir,
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
    onWarning: (message) => console.error(`warning: ${message}`),
  };
  const progress = quiet ? undefined : await createProgress();
  options.onProgress = progress?.update;
  const interrupt = listenForSignals();
  options.signal = interrupt.signal;
  let summary: Summary;
  try {
    summary = await precompress(options);
  } catch (error) {
    if (error instanceof PrecompressorError && error.code === "E_ABORTED") {
      console.error(`error: ${error.message}`);
      return interrupt.exitCode();
    }
    throw error;
  } finally {
    interrupt.dispose();
    progress?.stop();
  }
  if (json) console.log(JSON.stringify(summary, null, 2));
  else if (!quiet) console.log(formatSummary(summary));
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
async function createProgress(): Promise<{ update: (p: Progress) => void; stop: () => void }> {
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
    stop: () => started && bar.stop(),
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
