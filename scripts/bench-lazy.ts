// Issue 7's benchmark: server CPU time to serve 1,000 requests for a 1 MB JavaScript file as br,
// with `compression` middleware vs lazy mode vs a prebuilt .br. Each server runs in its own child
// process and reports its own process.cpuUsage() (all threads, so lazy mode's worker counts);
// autocannon runs in another process; loopback only, a fixed number of requests.
//   node --import tsx scripts/bench-lazy.ts [--requests=1000] [--connections=10]
import { execFileSync, spawn } from "node:child_process";
import { createReadStream, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import compression from "compression";
import { encodeBuffer } from "../src/codecs.js";
import { createLazyCompressor, LAZY_LEVELS } from "../src/lazy/compressor.js";

const ROOT = join(fileURLToPath(import.meta.url), "..", "..");
const FILE = "app.js";
const TYPE = "text/javascript; charset=utf-8";

type Mode = "compression" | "lazy" | "lazy-br11" | "precompressed";
const MODES: Mode[] = ["compression", "lazy", "lazy-br11", "precompressed"];

interface ServerStats {
  cpuMs: number;
  br: number;
  identity: number;
  bytes: number;
}

/** Child side: one server, `/__stats` reports CPU used so far and what it sent. */
async function serve(mode: Mode, dir: string, cacheDir: string): Promise<void> {
  const path = join(dir, FILE);
  const source = readFileSync(path);
  const brSize = readFileSync(`${path}.br`).length;
  const stats = { br: 0, identity: 0, bytes: 0 };
  const sent = (res: ServerResponse, encoding: "br" | "identity", size: number) => {
    stats[encoding] += 1;
    stats.bytes += size;
    res.setHeader("Content-Type", TYPE);
    res.setHeader("Vary", "Accept-Encoding");
  };
  const lazy = mode.startsWith("lazy")
    ? createLazyCompressor({ root: dir, cacheDir, levels: { br: mode === "lazy-br11" ? 11 : LAZY_LEVELS.br } })
    : undefined;
  const middleware = compression();

  const handlers: Record<Mode, (req: IncomingMessage, res: ServerResponse) => void | Promise<void>> = {
    compression: (req, res) => {
      // Body size is what the middleware compresses; count responses by their final encoding.
      middleware(req as never, res as never, () => {
        res.setHeader("Content-Type", TYPE);
        res.end(source);
        const br = res.getHeader("Content-Encoding") === "br";
        stats[br ? "br" : "identity"] += 1;
      });
    },
    lazy: async (_req, res) => {
      const controller = new AbortController();
      res.on("close", () => controller.abort());
      const v = await lazy?.variant(FILE, "br", controller.signal);
      if (v) {
        sent(res, "br", v.size);
        res.writeHead(200, { "Content-Encoding": "br", "Content-Length": v.size, ETag: `"${v.sourceHash}-br"` });
        // The adapter falls back to identity when the entry was evicted between variant() and open.
        createReadStream(v.path).pipe(res);
        return;
      }
      sent(res, "identity", source.length);
      res.writeHead(200, { "Content-Length": source.length });
      createReadStream(path).pipe(res);
    },
    "lazy-br11": (req, res) => handlers.lazy(req, res),
    precompressed: (_req, res) => {
      sent(res, "br", brSize);
      res.writeHead(200, { "Content-Encoding": "br", "Content-Length": brSize });
      createReadStream(`${path}.br`).pipe(res);
    },
  };

  const server = createServer(async (req, res) => {
    if (req.url === "/__stats") {
      // Lazy work still running in the background is part of the cost: wait for it.
      await lazy?.idle();
      const cpu = process.cpuUsage();
      res.end(JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, ...stats }));
      return;
    }
    await handlers[mode](req, res);
  });
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
  });
  process.on("SIGTERM", () => {
    server.close();
    lazy?.close().then(() => process.exit(0));
    if (!lazy) process.exit(0);
  });
}

async function getStats(port: number): Promise<ServerStats> {
  const res = await fetch(`http://127.0.0.1:${port}/__stats`);
  return (await res.json()) as ServerStats;
}

interface Row {
  mode: Mode;
  cpuMs: number;
  stats: ServerStats;
  seconds: number;
  p99: number;
}

/** Parent side: one mode end to end, in a fresh server process with an empty lazy cache. */
async function measure(mode: Mode, dir: string, requests: number, connections: number): Promise<Row> {
  const cacheDir = await mkdtemp(join(tmpdir(), "bench-lazy-cache-"));
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(import.meta.url), "--server", mode, dir, cacheDir],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once("exit", (code) => reject(new Error(`${mode} server exited with ${code}`)));
    });
    // Start-up (module loading, tsx) is not serving: count from here.
    const before = await getStats(port);
    const startedAt = performance.now();
    const out = execFileSync(
      join(ROOT, "node_modules", ".bin", "autocannon"),
      ["--json", "-a", String(requests), "-c", String(connections), "-t", "30", "-H", "accept-encoding=br"].concat(
        `http://127.0.0.1:${port}/${FILE}`,
      ),
      { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 600_000, stdio: ["ignore", "pipe", "ignore"] },
    );
    const seconds = (performance.now() - startedAt) / 1000;
    const result = JSON.parse(out) as { latency: { p99: number }; errors: number; non2xx: number };
    if (result.errors || result.non2xx) throw new Error(`${mode}: ${result.errors} errors, ${result.non2xx} non-2xx`);
    const after = await getStats(port);
    const stats = {
      cpuMs: after.cpuMs - before.cpuMs,
      br: after.br - before.br,
      identity: after.identity - before.identity,
      bytes: after.bytes - before.bytes,
    };
    return { mode, cpuMs: stats.cpuMs, stats, seconds, p99: result.latency.p99 };
  } finally {
    child.kill("SIGTERM");
    await rm(cacheDir, { recursive: true, force: true });
  }
}

function arg(name: string, fallback: number): number {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`));
  return found ? Number(found.slice(name.length + 3)) : fallback;
}

async function main(): Promise<void> {
  const requests = arg("requests", 1000);
  const connections = arg("connections", 10);
  const dir = await mkdtemp(join(tmpdir(), "bench-lazy-site-"));
  try {
    // 1 MiB of real JavaScript; the prebuilt .br is what `precompressor` writes by default (br 11).
    const source = readFileSync(join(ROOT, "node_modules", "typescript", "lib", "typescript.js")).subarray(0, 1 << 20);
    await writeFile(join(dir, FILE), source);
    const br = await encodeBuffer("br", source, { level: 11, size: source.length, kind: "text" });
    await writeFile(join(dir, `${FILE}.br`), br);
    console.log(
      `## Lazy mode: server CPU for ${requests} requests of a ${source.length} B js file as br (-c ${connections})\n`,
    );
    const rows: Row[] = [];
    for (const mode of MODES) rows.push(await measure(mode, dir, requests, connections));
    const base = rows.find((r) => r.mode === "precompressed")?.cpuMs ?? 1;
    console.log("| server | CPU ms | × precompressed | br / identity responses | MB sent | wall s | p99 ms |");
    console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const r of rows) {
      const mb = r.stats.bytes ? (r.stats.bytes / 1e6).toFixed(1) : "—";
      console.log(
        `| ${r.mode} | ${r.cpuMs.toFixed(0)} | ${(r.cpuMs / base).toFixed(1)} | ${r.stats.br} / ${r.stats.identity} | ${mb} | ${r.seconds.toFixed(1)} | ${r.p99} |`,
      );
    }
    console.log(`\nbr 11 (prebuilt) ${br.length} B; lazy default br ${LAZY_LEVELS.br}; compression middleware br 4.`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--server") {
  await serve(process.argv[3] as Mode, process.argv[4] as string, process.argv[5] as string);
} else {
  await main();
}
