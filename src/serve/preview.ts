// The preview server behind `precompressor serve`: node:http on the node adapter, with no `next`, so
// the adapter itself answers 404, 400 (malformed path) and 405 `Allow: GET, HEAD`.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { PrecompressorError } from "../errors.js";
import { serveStatic } from "./node.js";
import type { ServeStaticOptions } from "./site.js";

/** Options of {@link startServer}. */
export interface StartServerOptions extends ServeStaticOptions {
  /** The precompressed folder. */
  dir: string;
  /** `0` picks a free port. Default 8080. */
  port?: number;
  /** Default `127.0.0.1`: a preview is not published on the network unless asked. */
  host?: string;
}

/** A running preview server. */
export interface RunningServer {
  /** e.g. `http://127.0.0.1:8080/`. */
  url: string;
  /** Stop listening, drop open connections and stop watching the manifest. */
  close(): Promise<void>;
}

/**
 * Serve a precompressed folder over HTTP for a local preview. Rejects with `E_MANIFEST` when the
 * folder has no readable manifest, and `E_BAD_OPTION` when the port is taken or the host invalid.
 *
 * @example
 * const server = await startServer({ dir: "dist", port: 8080 });
 * console.log(`serving at ${server.url}`);
 * await server.close();
 */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const { dir, port = 8080, host = "127.0.0.1", ...serveOptions } = options;
  const handler = serveStatic(dir, serveOptions);
  const server = createServer((req, res) => {
    // No `Keep-Alive: timeout=5` (REDbot flags it; HTTP/1.1 persists anyway): Node sends no Connection
    // header of its own once it is removed, and still keeps the connection as the request asked.
    res.removeHeader("Connection");
    handler(req, res);
  });
  try {
    await new Promise<void>((done, fail) => {
      server.once("error", fail);
      server.listen(port, host, done);
    });
  } catch (cause) {
    handler.close();
    const code = (cause as NodeJS.ErrnoException).code;
    const reason =
      code === "EADDRINUSE" ? `port ${port} is already in use` : `cannot listen on ${host}:${port} (${code})`;
    throw new PrecompressorError("E_BAD_OPTION", `serve: ${reason}`, { cause });
  }
  const address = server.address() as AddressInfo;
  // An IPv6 literal needs brackets in a URL.
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/`,
    close: () =>
      new Promise<void>((done) => {
        handler.close();
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}
