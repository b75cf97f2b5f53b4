// `precompressor config nginx|caddy <dir>`: a block to paste into a server's config.
import { caddyConfig } from "./caddy.js";
import { nginxConfig } from "./nginx.js";
import { absoluteRoot, parseListen } from "./rules.js";

/** Options of {@link serverConfig}. */
export interface ServerConfigOptions {
  /** The precompressed folder; the config's root is its absolute path. */
  dir: string;
  /** `port`, `host:port`, `:port` or `[v6]:port`. Default `"80"`. */
  listen?: string;
}

/**
 * The config text: for `nginx` a `server { }` block to include inside `http { }`, for `caddy` a
 * Caddyfile site block. Throws `E_BAD_OPTION` for a bad `listen` or a root a config cannot hold.
 *
 * @example
 * process.stdout.write(serverConfig("nginx", { dir: "dist", listen: "127.0.0.1:8080" }));
 */
export function serverConfig(server: "nginx" | "caddy", options: ServerConfigOptions): string {
  const root = absoluteRoot(options.dir);
  const listen = parseListen(options.listen ?? "80");
  return server === "nginx" ? nginxConfig(root, listen) : caddyConfig(root, listen);
}
