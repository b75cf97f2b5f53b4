// A pass-through HTTP proxy on 127.0.0.1 that records what went over the wire: one origin for the
// browser across releases (a dictionary is kept per origin), while the server behind it changes.
import { createServer, type IncomingHttpHeaders, request } from "node:http";
import type { AddressInfo } from "node:net";

/** One response as the browser received it. */
export interface Exchange {
  path: string;
  request: IncomingHttpHeaders;
  status: number;
  headers: IncomingHttpHeaders;
  encoding: string | undefined;
  /** Body bytes as sent (still encoded). */
  bodyBytes: number;
  /** Status line and header bytes. */
  headerBytes: number;
}

export interface CountingProxy {
  origin: string;
  /** Every exchange so far, in completion order. */
  log: Exchange[];
  /** Forward to this port from now on. */
  target(port: number): void;
  close(): Promise<void>;
}

/** Start the proxy; nothing is decoded or changed on the way. */
export async function startCountingProxy(): Promise<CountingProxy> {
  const log: Exchange[] = [];
  let upstreamPort = 0;
  const server = createServer((req, res) => {
    const path = req.url ?? "/";
    const upstream = request(
      { host: "127.0.0.1", port: upstreamPort, path, method: req.method, headers: req.headers, agent: false },
      (answer) => {
        let bodyBytes = 0;
        answer.on("data", (chunk: Buffer) => {
          bodyBytes += chunk.length;
        });
        answer.on("end", () => {
          const raw = answer.rawHeaders;
          let headerBytes = `HTTP/1.1 ${answer.statusCode} ${answer.statusMessage}\r\n\r\n`.length;
          for (let i = 0; i < raw.length; i += 2) headerBytes += `${raw[i]}: ${raw[i + 1]}\r\n`.length;
          const encoding = answer.headers["content-encoding"];
          const status = answer.statusCode ?? 0;
          log.push({ path, request: req.headers, status, headers: answer.headers, encoding, bodyBytes, headerBytes });
        });
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    log,
    target: (next) => {
      upstreamPort = next;
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
