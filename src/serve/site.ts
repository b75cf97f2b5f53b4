import { type FSWatcher, readFileSync, unwatchFile, watch, watchFile } from "node:fs";
import { type FileHandle, readFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { PrecompressorError } from "../errors.js";
import { MANIFEST_NAME, parseManifest } from "../manifest.js";
import { createDiskReader, release, restate, SETTLE_MS } from "./disk.js";
import type { Reply } from "./http.js";
import type { LazyServeOptions } from "./lazy.js";
import { createResolver, type Resolution, type Resolved, type Resolver, type ResolverOptions } from "./resolver.js";

/** Options of {@link serveStatic} and `createFetchHandler`: the resolver's, plus where and how to load. */
export interface ServeStaticOptions extends ResolverOptions {
  /** Manifest path. Default `<dir>/.precompressor.json`. */
  manifest?: string;
  /** Reload the manifest when it changes on disk (a redeploy). Default `true`. */
  watch?: boolean;
  /** Memory for hot variants, keyed by content hash; `0` streams every body from disk. Default 32 MiB. */
  cacheBytes?: number;
  /** Larger files are streamed from disk, never cached. Default 1 MiB. */
  cacheFileBytes?: number;
  /**
   * Lazy mode: a compressible file under `dir` that the manifest does not list is compressed on its
   * first request into `lazy.cacheDir` (single flight, bounded, off the event loop) and served from there.
   */
  lazy?: LazyServeOptions;
  /** Told about each manifest entry dropped as unsafe at load. Default `process.emitWarning`. */
  onWarning?: (message: string) => void;
}

/**
 * Answers one request again against another resolver (a reloaded manifest) or a resolution (the
 * bytes really on disk); `plain` ignores Available-Dictionary, so no delta is chosen.
 */
export type Redecide = (by: Resolver | Resolution, plain?: boolean) => Reply | null;

/** A reply with its body: bytes in memory or the open file to stream `start..end` from. */
export interface Loaded {
  /** Maybe not the reply given to {@link Site.load}: a redeploy may change it; `null` is "not ours". */
  reply: Reply | null;
  /** Present when `reply.file` is. */
  body?: Buffer | FileHandle;
  /** The manifest's entry no longer matches the file on disk: `reply` describes the bytes found there. */
  restated?: boolean;
}

/** A loaded site: the current resolver, its file bodies, and the watcher that swaps it on redeploy. */
export interface Site {
  /** The resolver of the manifest now in force; read it once per request. */
  readonly resolver: Resolver;
  /** The body bytes, when they are in memory: no I/O, no await. */
  cached(file: Resolved): Buffer | undefined;
  /**
   * The body of a reply with a `file`, from memory or disk, always the bytes its headers describe;
   * while a deploy is in flight the reply may be redecided (see {@link openSite}).
   */
  load(reply: Reply, redecide: Redecide): Promise<Loaded>;
  /** Re-read the manifest now; resolves `true` when a new one took effect. */
  reload(): Promise<boolean>;
  close(): void;
}

// Debounce: an editor or rsync may fire several events for one write.
const RELOAD_DELAY_MS = 30;
// How long one request waits out a deploy in flight (disk and manifest disagree) at most.
const DEPLOY_WAIT_MS = 1000;

function readManifestAt(path: string, options: ServeStaticOptions): { text: string; resolver: Resolver } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new PrecompressorError(
      "E_MANIFEST",
      `Cannot read the manifest ${path}: run precompressor on the folder first`,
      {
        path,
        cause,
      },
    );
  }
  return { text, resolver: resolverOf(text, path, options) };
}

function resolverOf(text: string, path: string, options: ServeStaticOptions): Resolver {
  try {
    // An entry that could leave the root or break a header is dropped by parseManifest, never served.
    const warn = options.onWarning ?? ((message) => process.emitWarning(message, "PrecompressorWarning"));
    const manifest = parseManifest(text, (message) => warn(`${path}: ${message}`));
    return createResolver(manifest, options);
  } catch (cause) {
    throw new PrecompressorError("E_MANIFEST", `Invalid manifest ${path}: ${(cause as Error).message}`, {
      path,
      cause,
    });
  }
}

/**
 * Load `<dir>/.precompressor.json` and keep it current. The adapters are built on this; use it to
 * write one for another server.
 *
 * Atomic reloads: the resolver is immutable and swapped in one assignment, and a request reads it
 * once, so all its headers come from one manifest. Its body is always the bytes those headers
 * describe, verified by content hash: a small file when read (then kept in memory by hash), a large
 * one once per version on disk (then streamed from the descriptor it was hashed from, so a rename
 * during the stream cannot mix files). When the disk disagrees (a deploy in flight: files before
 * the manifest or the reverse) the request reloads the manifest, then waits up to 1 s for a new one
 * or for the file to settle (unchanged for 100 ms, so not half-written in place). If they still
 * disagree it is answered with the bytes really on disk, described by their own hash, size and
 * mtime with `Cache-Control: no-cache` (a delta falls back to a plain variant), or as "not ours"
 * when the file is gone: never a 5xx, never one version's bytes under another's headers. A torn or
 * invalid new manifest is ignored; the old one stays until a valid one appears.
 *
 * @example
 * const site = openSite("dist");
 * const reply = decide(site.resolver, "GET", "/app.js", (name) => headers[name]);
 */
export function openSite(dir: string, options: ServeStaticOptions = {}): Site {
  const root = resolve(dir);
  const manifestPath = resolve(options.manifest ?? join(root, MANIFEST_NAME));
  let { text, resolver } = readManifestAt(manifestPath, options);
  const { fromDisk, cache } = createDiskReader(root, options);

  // Settles when a new manifest takes effect: requests waiting out a deploy go on at once.
  let swapped = () => {};
  let nextSwap = new Promise<void>((done) => {
    swapped = done;
  });
  let pending: Promise<boolean> | undefined;
  async function readAndSwap(): Promise<boolean> {
    const next = await readFile(manifestPath, "utf8").catch(() => undefined);
    if (next === undefined || next === text) return false;
    let fresh: Resolver;
    try {
      fresh = resolverOf(next, manifestPath, options);
    } catch {
      return false; // torn or invalid: keep serving the old manifest until a valid one lands
    }
    text = next;
    resolver = fresh;
    swapped();
    nextSwap = new Promise((done) => {
      swapped = done;
    });
    return true;
  }
  function reload(): Promise<boolean> {
    pending ??= readAndSwap().finally(() => {
      pending = undefined;
    });
    return pending;
  }

  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(reload, RELOAD_DELAY_MS);
    timer.unref();
  };
  let watcher: FSWatcher | undefined;
  let polling = false;
  if (options.watch ?? true) {
    // Watch the folder, not the file: an atomic rename replaces the file a watcher would hold.
    const name = basename(manifestPath);
    try {
      watcher = watch(dirname(manifestPath), (_event, file) => {
        if (!file || file === name) schedule();
      });
      watcher.on("error", () => watcher?.close());
      watcher.unref();
    } catch {
      // No inotify (some containers, network mounts): poll the manifest's stat instead.
      watchFile(manifestPath, { interval: 1000, persistent: false }, schedule);
      polling = true;
    }
  }

  async function load(first: Reply, redecide: Redecide): Promise<Loaded> {
    const deadline = Date.now() + DEPLOY_WAIT_MS;
    let reply: Reply | null = first;
    for (let attempt = 0; ; attempt++) {
      const file = reply?.file;
      if (!reply || !file) return { reply };
      const inMemory = cache.get(file.hash);
      if (inMemory) return { reply, body: inMemory };
      const disk = await fromDisk(file.path);
      if (disk?.hash === file.hash) return { reply, body: disk.body };
      // The disk is not what this manifest describes: a deploy is in flight.
      const delta = file.encoding === "dcb" || file.encoding === "dcz";
      const late = Date.now() >= deadline;
      if (disk && !delta && (late || (attempt > 0 && disk.settled))) {
        // Still disagreeing: send the bytes really there, described by their own hash and size.
        const actual = restate(file, disk);
        const restated = redecide(actual);
        if (restated?.file) return { reply: restated, body: disk.body, restated: true };
        await release(disk);
        return { reply: restated };
      }
      await release(disk);
      if (delta) {
        // A delta is only right for the dictionary it was made from: a plain variant instead.
        reply = redecide(resolver, true);
        continue;
      }
      if (late) return { reply: null }; // listed, but not on disk
      // Reload at once (the watcher may lag, or be off), then wait for a new manifest or a settled file.
      if (attempt === 0) await reload();
      else await Promise.race([nextSwap, new Promise((done) => setTimeout(done, SETTLE_MS))]);
      reply = redecide(resolver);
    }
  }

  return {
    get resolver() {
      return resolver;
    },
    cached: (file) => cache.get(file.hash),
    load,
    reload,
    close() {
      clearTimeout(timer);
      watcher?.close();
      if (polling) unwatchFile(manifestPath, schedule);
    },
  };
}
