// The build plugin (Vite and Rollup): precompress the final output folder once everything is written.
import { dirname, resolve } from "node:path";
import { precompress } from "../build/precompress.js";
import type { Summary } from "../build/summary.js";
import { type LoadedConfig, loadConfig, type PrecompressorConfig } from "../cli/config-file.js";
import { formatRunLine } from "../cli/report.js";
import { PrecompressorError } from "../errors.js";

export interface PrecompressorPluginOptions extends Omit<PrecompressorConfig, "dir"> {
  /** Fail the build when a file could not be compressed. Default true. */
  failOnError?: boolean;
  /** The config file to read; default: searched from the project root as the CLI does; `false`: none. */
  configFile?: string | false;
}

/** The parts of Vite's resolved config the plugin reads (a structural type, so Rollup users need no Vite). */
interface BuildConfig {
  root: string;
  build: { outDir: string };
  logger: { info(message: string): void; warn(message: string): void };
}

/** The parts of a Rollup/Vite plugin context the plugin uses. */
interface HookContext {
  environment?: { config: { root: string; build: { outDir: string } } };
  info?(message: string): void;
  warn(message: string): void;
  debug?(message: string): void;
}

/** The plugin object: assignable to Vite's `Plugin` and Rollup's `Plugin`. */
export interface PrecompressorPlugin {
  name: "precompressor";
  apply: "build";
  enforce: "post";
  configResolved(config: BuildConfig): void;
  writeBundle(output: { dir?: string; file?: string }): void;
  closeBundle(this: HookContext): Promise<void>;
}

/**
 * Writes `.gz`/`.br`/`.zst` beside the build's final output, `public/` files included, once every other
 * plugin has written: Vite's `build.outDir`, Rollup's `output.dir`. Incremental across `--watch` rebuilds.
 * Takes the library's options without `dir`; they win over the config file's.
 *
 * @example
 * // vite.config.js
 * import precompressor from "precompressor/vite";
 * export default { plugins: [precompressor({ encodings: ["br", "gzip"] })] };
 */
export default function precompressor(options: PrecompressorPluginOptions = {}): PrecompressorPlugin {
  const { failOnError = true, configFile, ...inline } = options;
  let vite: BuildConfig | undefined;
  let config: Promise<LoadedConfig | undefined> | undefined;
  // Rollup's closeBundle gets no output options: remember where writeBundle wrote.
  const written = new Set<string>();
  return {
    name: "precompressor",
    apply: "build",
    enforce: "post",
    configResolved(resolved) {
      vite = resolved;
    },
    writeBundle(output) {
      const dir = output.dir ?? (output.file === undefined ? undefined : dirname(output.file));
      if (dir !== undefined) written.add(resolve(dir));
    },
    async closeBundle() {
      // Nothing written (`build.write: false`, a failed build): nothing to compress.
      if (!written.size) return;
      const env = this.environment?.config ?? vite;
      const dirs = env ? [resolve(env.root, env.build.outDir)] : [...written];
      written.clear();
      if (configFile !== false) config ??= loadConfig({ cwd: vite?.root, file: configFile });
      const fromFile = (await config)?.config;
      // Rollup prefixes a plugin's logs with its name; Vite's logger does not.
      const info = (message: string) => (vite ? vite.logger.info(`[precompressor] ${message}`) : this.info?.(message));
      const debug = (message: string) => (vite ? viteDebug() && vite.logger.info(message) : this.debug?.(message));
      for (const dir of dirs) {
        const summary = await precompress({
          ...fromFile,
          ...inline,
          dir,
          onWarning: (message) => (vite ? vite.logger.warn(message) : this.warn(message)),
        });
        info(formatRunLine(summary));
        debug(JSON.stringify(summary));
        if (failOnError && summary.failures.length) throw failed(summary);
      }
    },
  };
}

/**
 * Vite's debug level is the DEBUG variable that `vite build --debug [feat]` sets (`vite:*`, `vite:precompressor`);
 * Rollup drops a plugin's debug logs below `--logLevel debug` on its own.
 */
function viteDebug(): boolean {
  const namespaces = (process.env.DEBUG ?? "").split(/[\s,]+/).filter(Boolean);
  const pattern = (n: string) => new RegExp(`^${n.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*")}$`);
  return namespaces.some((n) => pattern(n).test("vite:precompressor"));
}

function failed(summary: Summary): PrecompressorError {
  const list = summary.failures.map((f) => f.message).join("; ");
  return new PrecompressorError(
    "E_FILES_FAILED",
    `${summary.dir}: ${summary.failures.length} files failed (failOnError: false to go on): ${list}`,
    { path: summary.dir },
  );
}
