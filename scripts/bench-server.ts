// Issue 4 benchmark: server CPU per 1,000 requests for a precompressed 100 KB .js served as br over
// loopback, for serveStatic and the usual alternatives, against a bare in-memory node:http floor.
// Each server runs in its own child process and reports its own process.cpuUsage() for the measured
// window; autocannon runs in another process. Run: node --import tsx scripts/bench-server.ts
import { execFile, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, request } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Manifest } from "../src/manifest-format.js";

const ROOT = resolve(import.meta.dirname, "..");
const FILE = "app.3f9a1c2b.js";
const SERVERS = ["floor", "floor-stream", "serveStatic", "fastify-static", "sirv", "express-static-gzip"] as const;
type ServerKind = (typeof SERVERS)[number];
const requireCjs = createRequire(import.meta.url);

/** Measured load per server, in seconds; short and bounded, loopback only. */
const DURATION_S = Number(process.env.BENCH_SECONDS ?? 4);
const CONNECTIONS = 16;

// ---- child side: one server, reporting its own CPU for the window the parent asks for ----

async function runServer(kind: ServerKind, dir: string): Promise<void> {
  const port = await listenAs(kind, dir);
  let since = process.cpuUsage();
  process.on("message", (message: string) => {
    if (message === "start") since = process.cpuUsage();
    if (message === "stop") {
      const used = process.cpuUsage(since);
      process.send?.({ cpuMicros: used.user + used.system });
    }
    if (message === "exit") process.exit(0);
  });
  process.send?.({ port });
}

async function listenAs(kind: ServerKind, dir: string): Promise<number> {
  if (kind === "fastify-static") {
    const { default: fastify } = await import("fastify");
    const { default: fastifyStatic } = await import("@fastify/static");
    const app = fastify({ logger: false });
    await app.register(fastifyStatic, { root: dir, preCompressed: true });
    await app.listen({ port: 0, host: "127.0.0.1" });
    return (app.server.address() as AddressInfo).port;
  }
  const handler = await handlerFor(kind, dir);
  const server = createServer(handler);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return (server.address() as AddressInfo).port;
}

type Handler = Parameters<typeof createServer>[1] & {};

async function handlerFor(kind: Exclude<ServerKind, "fastify-static">, dir: string): Promise<Handler> {
  switch (kind) {
    case "serveStatic": {
      const { serveStatic } = await import("../src/serve/node.js");
      return serveStatic(dir);
    }
    case "sirv": {
      const { default: sirv } = await import("sirv");
      return sirv(dir, { brotli: true, gzip: true, etag: true, dev: false }) as Handler;
    }
    case "express-static-gzip": {
      const express = requireCjs("express") as () => { use(h: unknown): unknown } & Handler;
      const expressStaticGzip = requireCjs("express-static-gzip") as (d: string, o: object) => unknown;
      const app = express();
      app.use(expressStaticGzip(dir, { enableBrotli: true, orderPreference: ["br"] }));
      return app;
    }
    default: {
      // The floor: the same headers and bytes, no negotiation, no lookup.
      const manifest = JSON.parse(readFileSync(join(dir, ".precompressor.json"), "utf8")) as Manifest;
      const entry = manifest.files[FILE];
      const variant = entry?.variants.br;
      if (!entry || !variant) throw new Error("bench fixture lacks its br variant");
      const path = join(dir, `${FILE}.br`);
      const body = readFileSync(path);
      const headers = {
        "Content-Type": entry.type,
        "Content-Length": String(variant.size),
        ETag: `"${variant.hash.slice(7, 34)}-br"`,
        "Last-Modified": new Date(entry.mtimeMs).toUTCString(),
        "Accept-Ranges": "bytes",
        "Content-Encoding": "br",
        Vary: "Accept-Encoding",
        "Cache-Control": "public, max-age=31536000, immutable",
      };
      if (kind === "floor") return (_req, res) => res.writeHead(200, headers).end(body);
      const { createReadStream } = await import("node:fs");
      return (_req, res) => {
        res.writeHead(200, headers);
        createReadStream(path).pipe(res);
      };
    }
  }
}

// ---- parent side ----

interface Run {
  kind: ServerKind;
  requests: number;
  perSecond: number;
  cpuMsPer1000: number;
}

async function makeFixture(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "precompressor-bench-server-"));
  const assets = join(ROOT, "fixtures/site/assets");
  const js = Buffer.concat([
    await readFile(join(assets, "app.3f9a1c2b.js")),
    await readFile(join(assets, "vendor.77bc0e1d.js")),
  ]).subarray(0, 100 * 1024);
  await writeFile(join(dir, FILE), js);
  const { precompress } = await import("../src/build/precompress.js");
  await precompress({ dir, cache: false });
  return dir;
}

function check(port: number): Promise<{ status: number; encoding: string | undefined; length: number }> {
  return new Promise((done, fail) => {
    const req = request({ host: "127.0.0.1", port, path: `/${FILE}`, headers: { "accept-encoding": "br" } }, (res) => {
      let length = 0;
      res.on("data", (chunk: Buffer) => {
        length += chunk.length;
      });
      res.on("end", () => done({ status: res.statusCode ?? 0, encoding: res.headers["content-encoding"], length }));
    });
    req.on("error", fail);
    req.end();
  });
}

function autocannon(port: number, seconds: number): Promise<{ total: number; errors: number; non2xx: number }> {
  const bin = join(ROOT, "node_modules/autocannon/autocannon.js");
  const args = [bin, "-c", String(CONNECTIONS), "-d", String(seconds), "-H", "accept-encoding=br", "--json"];
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      [...args, `http://127.0.0.1:${port}/${FILE}`],
      { maxBuffer: 1 << 24 },
      (error, stdout) => {
        if (error) return fail(error);
        const result = JSON.parse(stdout) as { requests: { total: number }; errors: number; non2xx: number };
        done({ total: result.requests.total, errors: result.errors, non2xx: result.non2xx });
      },
    );
  });
}

async function measure(kind: ServerKind, dir: string): Promise<Run> {
  const child = fork(fileURLToPath(import.meta.url), ["--server", kind, dir], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const nextMessage = () =>
    new Promise<{ port?: number; cpuMicros?: number }>((done, fail) => {
      child.once("message", done);
      child.once("exit", (code) => fail(new Error(`${kind} server exited with ${code}`)));
    });
  try {
    const { port } = await nextMessage();
    if (!port) throw new Error(`${kind}: no port`);
    const sample = await check(port);
    if (sample.status !== 200 || sample.encoding !== "br") {
      throw new Error(`${kind} does not serve br: ${JSON.stringify(sample)}`);
    }
    await autocannon(port, 1); // warm-up: JIT, caches, connection setup
    child.send("start");
    const load = await autocannon(port, DURATION_S);
    child.send("stop");
    const { cpuMicros = 0 } = await nextMessage();
    if (load.errors || load.non2xx) throw new Error(`${kind}: ${load.errors} errors, ${load.non2xx} non-2xx`);
    return {
      kind,
      requests: load.total,
      perSecond: Math.round(load.total / DURATION_S),
      cpuMsPer1000: cpuMicros / 1000 / (load.total / 1000),
    };
  } finally {
    child.send("exit");
  }
}

/** The resolver's own cost per call, in ns, for a repeated field (the common case) and unique ones. */
async function resolverCost(dir: string): Promise<{ repeated: number; unique: number }> {
  const { createResolver } = await import("../src/serve/resolver.js");
  const manifest = JSON.parse(await readFile(join(dir, ".precompressor.json"), "utf8")) as Manifest;
  const resolver = createResolver(manifest);
  const time = (calls: number, field: (i: number) => string) => {
    for (let i = 0; i < 100_000; i++) resolver.resolve(`/${FILE}`, field(i));
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) resolver.resolve(`/${FILE}`, field(i));
    return Number(process.hrtime.bigint() - start) / calls;
  };
  const uniqueFields = Array.from({ length: 1000 }, (_, i) => `gzip;q=0.${i % 1000}, br, zstd;q=0.${(i * 7) % 1000}`);
  return {
    repeated: time(2_000_000, () => "gzip, deflate, br, zstd"),
    unique: time(500_000, (i) => uniqueFields[i % 1000] ?? ""),
  };
}

/**
 * Run every server in turn and print CPU per 1,000 requests and its ratio to the in-memory floor.
 *
 * @example
 * node --import tsx scripts/bench-server.ts   // BENCH_SECONDS=4 by default
 */
export async function main(): Promise<Run[]> {
  const dir = await makeFixture();
  try {
    const runs: Run[] = [];
    for (const kind of SERVERS) runs.push(await measure(kind, dir));
    const floor = runs.find((r) => r.kind === "floor")?.cpuMsPer1000 ?? Number.NaN;
    console.log(
      `\nserver CPU per 1,000 requests, 100 KB .js as br, ${CONNECTIONS} connections, ${DURATION_S} s each\n`,
    );
    console.log(
      `${"server".padEnd(22)}${"requests".padStart(10)}${"req/s".padStart(9)}${"CPU ms/1k".padStart(11)}${"× floor".padStart(9)}`,
    );
    for (const r of runs) {
      console.log(
        `${r.kind.padEnd(22)}${String(r.requests).padStart(10)}${String(r.perSecond).padStart(9)}${r.cpuMsPer1000.toFixed(1).padStart(11)}${(r.cpuMsPer1000 / floor).toFixed(2).padStart(9)}`,
      );
    }
    const cost = await resolverCost(dir);
    console.log(
      `\nresolver.resolve(): ${cost.repeated.toFixed(0)} ns/call (repeated Accept-Encoding), ${cost.unique.toFixed(0)} ns/call (1,000 distinct fields)`,
    );
    return runs;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const [flag, kind, dir] = process.argv.slice(2);
if (flag === "--server" && kind && dir) await runServer(kind as ServerKind, dir);
else if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
