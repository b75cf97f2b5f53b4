// The server under hostile input, load, clients that go away and redeploys, over real HTTP against
// every adapter: node:http, Express, the fetch handler (behind a node:http bridge) and startServer.
// `PRECOMPRESSOR_LOAD_SECONDS=10` runs the load at 200 clients for that long; by default 50 for 2 s.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { cp, mkdtemp, open, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join, posix } from "node:path";
import { after, before, describe, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import express from "express";
import fc from "fast-check";
import { precompress } from "../../src/build/precompress.js";
import type { Encoding, Manifest, ManifestEntry } from "../../src/manifest-format.js";
import { createFetchHandler } from "../../src/serve/fetch.js";
import { type ServeStaticOptions, serveStatic } from "../../src/serve/node.js";
import { startServer } from "../../src/serve/preview.js";
import { createResolver } from "../../src/serve/resolver.js";
import {
  type Answer,
  decode,
  entryOf,
  eventually,
  fetchBridge,
  get,
  type Listening,
  listen,
  MANIFEST,
  makeSite,
  type Site,
  sha256,
} from "../support/http.js";
import { etagOf } from "./conformance.js";

const LONG_SECONDS = Number(process.env.PRECOMPRESSOR_LOAD_SECONDS ?? 0);
const LOAD = LONG_SECONDS > 0 ? { clients: 200, ms: LONG_SECONDS * 1000 } : { clients: 50, ms: 2000 };

const closers: { close(): void }[] = [];
after(() => {
  for (const c of closers) c.close();
});

type Start = (site: Site, options?: ServeStaticOptions) => Promise<Listening>;

/** Every way we serve, each on its own listening server. */
const ADAPTERS: [string, Start][] = [
  [
    "node:http serveStatic",
    (site, options) => {
      const handler = serveStatic(site.dir, options);
      closers.push(handler);
      return listen((req, res) => handler(req, res));
    },
  ],
  [
    "Express",
    (site, options) => {
      const handler = serveStatic(site.dir, options);
      closers.push(handler);
      return listen(express().use(handler));
    },
  ],
  [
    "fetch handler",
    (site, options) => {
      const handler = createFetchHandler(site.dir, options);
      closers.push(handler);
      return listen(fetchBridge(handler));
    },
  ],
  [
    "startServer",
    async (site, options) => {
      const server = await startServer({ ...options, dir: site.dir, port: 0 });
      return {
        server: undefined as never,
        port: Number(new URL(server.url).port),
        origin: server.url,
        close: server.close,
      };
    },
  ],
];

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const openDescriptors = () => readdirSync("/proc/self/fd").length;
const hasProc = existsSync("/proc/self/fd");
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
/** After a full collection: the JS heap plus Buffer memory (a leaked body would be there), and RSS. */
function memory() {
  gc();
  gc();
  const { heapUsed, arrayBuffers, rss } = process.memoryUsage();
  return { heapUsed: heapUsed + arrayBuffers, rss };
}

/** Add a file the build does not compress (so only identity), listed in the manifest. */
async function addFile(site: Site, key: string, bytes: Buffer, type: string): Promise<void> {
  await writeFile(join(site.dir, key), bytes);
  site.manifest.files[key] = await entryOf(site.dir, key, type);
  await writeFile(join(site.dir, MANIFEST), JSON.stringify(site.manifest));
}

describe("resolver properties (fast-check)", () => {
  const ENCODINGS: Encoding[] = ["gzip", "br", "zstd"];
  // All 8 sets of variants a file may have.
  const subsets = Array.from({ length: 8 }, (_, bits) => ENCODINGS.filter((_, i) => bits & (1 << i)));
  const entry = (variants: Encoding[]): ManifestEntry => ({
    hash: sha256(Buffer.from(variants.join())),
    size: 100,
    mtimeMs: 0,
    type: "text/javascript; charset=utf-8",
    variants: Object.fromEntries(variants.map((e) => [e, { size: 10, hash: sha256(Buffer.from(e)) }])),
  });
  // One file per set of variants, so every set is a candidate list.
  const manifest: Manifest = {
    version: 1,
    generator: "test",
    settings: {},
    files: Object.fromEntries(subsets.map((s) => [`v-${s.join("-") || "none"}.js`, entry(s)])),
  };
  const orders = [
    ["br", "zstd", "gzip"],
    ["gzip", "br", "zstd"],
    ["zstd", "gzip", "br"],
  ] as Encoding[][];

  interface Member {
    coding: string;
    /** `undefined`: no q; `valid: false`: a malformed q, so the member must be ignored. */
    q?: { valid: boolean; value: number; text: string };
    space: string;
  }
  const qValue = fc.oneof(
    fc
      .integer({ min: 0, max: 1000 })
      .chain((n) =>
        fc
          .constantFrom(
            n === 1000 ? "1.000" : `0.${String(n).padStart(3, "0")}`,
            n === 1000 ? "1" : n === 0 ? "0" : `0.${String(n).padStart(3, "0").replace(/0+$/, "")}`,
          )
          .map((text) => ({ valid: true, value: n / 1000, text })),
      ),
    fc.constantFrom("1.5", "abc", "0.1234", "-1", ".5", "", "1.0001", "2", "0.5x").map((text) => ({
      valid: false,
      value: Number.NaN,
      text,
    })),
  );
  const member: fc.Arbitrary<Member> = fc.record(
    {
      coding: fc
        .constantFrom("gzip", "x-gzip", "br", "zstd", "identity", "*", "deflate", "dcz")
        .chain((c) => fc.constantFrom(c, c.toUpperCase())),
      q: qValue,
      space: fc.constantFrom("", " ", "\t"),
    },
    { requiredKeys: ["coding", "space"] },
  );
  const field = (members: Member[]) =>
    members.map((m) => `${m.space}${m.coding}${m.q ? `${m.space};q=${m.q.text}` : ""}${m.space}`);

  /** What RFC 9110 §12.5.3 gives each coding, worked out without the resolver's parser. */
  function weights(members: Member[]) {
    const q = new Map<string, number>();
    for (const m of members) {
      if (m.q && !m.q.valid) continue;
      const name = m.coding.toLowerCase() === "x-gzip" ? "gzip" : m.coding.toLowerCase();
      q.set(name, Math.min(m.q?.value ?? 1, q.get(name) ?? 1));
    }
    const star = q.get("*");
    return {
      of: (coding: Encoding) => q.get(coding) ?? star ?? 0,
      identity: q.get("identity") ?? star ?? 1,
      /** Identity's q when the field gives it one (by name or `*`). */
      identityListed: q.get("identity") ?? star,
    };
  }

  test("Accept-Encoding: never throws, never a q=0 coding, always the best acceptable one", () => {
    const resolvers = orders.map((encodings) => ({ encodings, resolver: createResolver(manifest, { encodings }) }));
    fc.assert(
      fc.property(
        fc.array(member, { maxLength: 8 }),
        fc.constantFrom(...subsets),
        fc.constantFrom(...resolvers),
        fc.boolean(),
        (members, variants, { encodings, resolver }, asLines) => {
          const lines = field(members);
          const r = resolver.resolve(`/v-${variants.join("-") || "none"}.js`, asLines ? lines : lines.join(","));
          const w = weights(members);
          const candidates = encodings.filter((e) => variants.includes(e));
          const bestQ = Math.max(0, ...candidates.map(w.of));
          assert.ok(r && (r.status === 200 || r.status === 406), JSON.stringify(r));
          if (r.status === 406) {
            assert.ok(candidates.length > 0, "a file without variants is never negotiated");
            assert.equal(bestQ, 0, "406 although a coding was acceptable");
            assert.equal(w.identity, 0, "406 although identity was acceptable");
            return;
          }
          if (r.encoding === null) {
            // Identity: acceptable, or the file has no variants; and no coding was preferred to it.
            if (candidates.length) assert.ok(w.identity > 0 && bestQ <= w.identity, `identity for ${lines}`);
            return;
          }
          const coding = r.encoding as Encoding;
          assert.ok(variants.includes(coding), "only variants of that file");
          assert.ok(w.of(coding) > 0, `selected ${coding} with q=0 in ${lines}`);
          assert.equal(w.of(coding), bestQ, `a better coding than ${coding} in ${lines}`);
          assert.ok(w.of(coding) >= (w.identityListed ?? 0), `identity was preferred to ${coding} in ${lines}`);
          // Ties go to the server's order.
          assert.equal(
            candidates.find((e) => w.of(e) === bestQ),
            coding,
          );
        },
      ),
      { numRuns: 5000 },
    );
  });

  const site = {
    "index.html": entry(["br"]),
    "docs/index.html": entry(["gzip"]),
    "docs/menu café.txt": entry(["zstd"]),
    "assets/app.3f9a1c2b.js": entry([]),
    ".well-known/security.txt": entry([]),
    "a b/%41?#.txt": entry([]),
  };
  const keys = Object.keys(site);
  const resolver = createResolver({ ...manifest, files: site }, { redirect: false });
  const keyOf = (path: string) => path.replace(/\.(gz|br|zst)$/, "");

  test("paths: any percent-encoding of a listed name resolves to that name", () => {
    // Each character as is (when it may be) or as its UTF-8 bytes in %XX, upper or lower case; `/` stays.
    const spelled = fc.constantFrom(...keys).chain((key) =>
      fc.tuple(...[...key].map((char) => fc.tuple(fc.constant(char), fc.integer({ min: 0, max: 2 })))).map((chars) => ({
        key,
        path: `/${chars
          .map(([char, how]) =>
            char === "/" || (how === 0 && !"%?# ".includes(char))
              ? char
              : [...Buffer.from(char)]
                  .map((b) => `%${b.toString(16).padStart(2, "0")}`)
                  .map((hex) => (how === 2 ? hex.toUpperCase() : hex))
                  .join(""),
          )
          .join("")}`,
      })),
    );
    fc.assert(
      fc.property(spelled, ({ key, path }) => {
        const r = resolver.resolve(path, "gzip, br, zstd");
        assert.ok(r?.status === 200, `${path}: ${JSON.stringify(r)}`);
        assert.equal(keyOf(r.path), key);
      }),
      { numRuns: 3000 },
    );
  });

  test("paths: any request target resolves to the listed name it literally spells, or to nothing", () => {
    const byte = fc.integer({ min: 0, max: 255 }).map((b) => `%${b.toString(16).padStart(2, "0")}`);
    const piece = fc.oneof(
      fc.constantFrom(...keys, "/", "..", ".", "%2e", "%2E", "%2f", "%5c", "\\", "%00", "%", "%c0%ae", "%ef%bc%8e"),
      fc.constantFrom("%e2%80%a4", "./", "../", "//", "?", "#", ";", "index.html", "docs", "%252e", "é", "\u0000"),
      fc.string({ unit: "binary", maxLength: 8 }),
      byte,
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 10 }), fc.boolean(), (pieces, rooted) => {
        const url = `${rooted ? "/" : ""}${pieces.join("")}`;
        const r = resolver.resolve(url, "br, gzip, zstd");
        if (r?.status !== 200) return;
        const raw = url.slice(0, url.includes("?") ? url.indexOf("?") : undefined);
        const named = decodeURIComponent(raw).slice(1);
        const key = keyOf(r.path);
        assert.ok(keys.includes(key), `${url} -> ${r.path}`);
        // Only percent-decoding and the directory index: no `..`, case, Unicode or slash folding.
        assert.ok(named === key || `${named}index.html` === key || `${named}/index.html` === key, `${url} -> ${key}`);
      }),
      { numRuns: 20_000 },
    );
  });
});

/** Send `target` byte for byte (no client-side checks or normalisation) and read the whole raw answer. */
function rawRequest(port: number, target: string): Promise<{ status: number; text: string }> {
  return new Promise((done, fail) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    // The parser may reset the connection after a 400 of its own: what came before still counts.
    socket.on("error", () => {});
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
      if (status) done({ status: Number(status), text });
      else fail(new Error(`no answer to ${JSON.stringify(target.slice(0, 80))}`));
    });
    // Not end(): a half-closed client gets no answer from node:http.
    socket.write(
      Buffer.concat([
        Buffer.from("GET "),
        Buffer.from(target, "utf8"),
        Buffer.from(" HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip, br\r\nConnection: close\r\n\r\n"),
      ]),
    );
  });
}

describe("traversal corpus against every adapter: only 400/404, never a file outside the manifest", () => {
  let site: Site;
  let outside: string;
  // What each off-limits file holds: never seen in any answer.
  const SECRETS = ["TOP-SECRET-OUTSIDE", "TOP-SECRET-UNLISTED", "root:x:0:0", '"generator"', "secret secret"];

  before(async () => {
    site = await makeSite();
    outside = `${basename(site.dir)}-outside.txt`;
    await writeFile(join(dirname(site.dir), outside), "TOP-SECRET-OUTSIDE\n");
    await writeFile(join(site.dir, "unlisted.txt"), "TOP-SECRET-UNLISTED\n");
    await symlink(join(dirname(site.dir), outside), join(site.dir, "link.txt"));
  });
  after(async () => {
    await rm(join(dirname(site.dir), outside), { force: true });
    await site.remove();
  });

  function corpus(): string[] {
    const dots = [
      "..",
      "%2e%2e",
      "%2E%2E",
      "%2e%2E",
      ".%2e",
      "%2e.",
      "%252e%252e",
      "%25%32%65%25%32%65",
      "%c0%ae%c0%ae",
      "%e0%80%ae%e0%80%ae",
      "%f0%80%80%ae%f0%80%80%ae",
      "%c0%2e%c0%2e",
      "%ef%bc%8e%ef%bc%8e",
      "%e2%80%a4%e2%80%a4",
      "．．",
      "%u002e%u002e",
      "..;",
      "..%00",
      "..%20",
      "...",
    ];
    const separators = [
      "/",
      "%2f",
      "%2F",
      "\\",
      "%5c",
      "%5C",
      "%252f",
      "%255c",
      "%c0%af",
      "%e0%80%af",
      "%c1%9c",
      "%c1%1c",
      "%ef%bc%8f",
      "%e2%88%95",
      "／",
      "//",
      "/./",
    ];
    const probes: string[] = [];
    for (const d of dots) {
      for (const s of separators) {
        probes.push(`/${d}${s}${outside}`, `/docs/${d}${s}${d}${s}${outside}`, `/${`${d}${s}`.repeat(8)}etc${s}passwd`);
      }
    }
    return [
      ...probes,
      ...["/unlisted.txt", "/UNLISTED.TXT", "/unlisted.txt%20", "/unlisted.txt.", "/unlisted.txt::$DATA"],
      ...["/unlisted.txt%00.html", "/unlisted%2etxt", "/docs/../unlisted.txt", "/link.txt", "/docs/%2e%2e/link.txt"],
      ...["/.precompressor.json", "/%2eprecompressor.json", "/%2Eprecompressor%2Ejson", "/.PRECOMPRESSOR.JSON"],
      ...["/.precompressor.json/", "/.precompressor.json%00", "/.precompressor.json.br", "/.precompressor.json;"],
      ...["/./.precompressor.json", "/docs/../.precompressor.json", "/.well-known/../.precompressor.json"],
      ...["/.well-known/%2e%2e/.precompressor.json", "/index.html/../.precompressor.json", "/.precompressor.lock"],
      ...["/.hidden.txt", "/%2ehidden.txt", "/.hidden.txt.gz", "/.well-known/../.hidden.txt"],
      ...["/.well-known%2f..%2f.hidden.txt", "/x/..%2f.hidden.txt", "/docs/.%2e/.hidden.txt"],
      ...["/unlisted.txt\u0000", "/\u0000/../unlisted.txt", "/unlisted.txt\t", "*"],
      ...[`http://127.0.0.1/../${outside}`, `http://evil.example/%2e%2e/${outside}`],
      `/${"a/".repeat(6000)}..%2f${outside}`,
      `/${"%2e%2e%2f".repeat(1500)}etc%2fpasswd`,
      `/${"..\\".repeat(4000)}etc\\passwd`,
      `/${"%c0%ae".repeat(2000)}/etc/passwd`,
    ];
  }

  test("the corpus aims at the off-limits files: a naive join would open them", () => {
    const root = "/srv/site";
    const targets = new Set(
      [`/srv/${outside}`, "/etc/passwd", `${root}/unlisted.txt`, `${root}/link.txt`, `${root}/${MANIFEST}`].concat(
        `${root}/.hidden.txt`,
      ),
    );
    let hits = 0;
    for (const probe of corpus()) {
      let path = probe;
      try {
        path = decodeURIComponent(probe.replace(/%25/g, "%"));
      } catch {}
      if (targets.has(posix.join(root, path.replace(/[\\／]/g, "/").replace(/．/g, ".")))) hits += 1;
    }
    assert.ok(hits >= 100, `only ${hits} probes would reach a target`);
  });

  for (const [name, start] of ADAPTERS) {
    test(name, async (t) => {
      const server = await start(site);
      try {
        // Control: a listed file is served, and the off-limits ones are really there.
        assert.equal((await rawRequest(server.port, "/index.html")).status, 200);
        assert.match(await readFile(join(site.dir, "link.txt"), "utf8"), /TOP-SECRET/);
        const probes = corpus();
        const statuses = new Map<number, number>();
        for (let i = 0; i < probes.length; i += 16) {
          await Promise.all(
            probes.slice(i, i + 16).map(async (probe) => {
              const { status, text } = await rawRequest(server.port, probe);
              statuses.set(status, (statuses.get(status) ?? 0) + 1);
              const shown = JSON.stringify(probe.length > 80 ? `${probe.slice(0, 60)}…` : probe);
              assert.ok(status === 400 || status === 404, `${shown}: ${status}`);
              for (const secret of SECRETS) assert.ok(!text.includes(secret), `${shown} leaked ${secret}`);
            }),
          );
        }
        t.diagnostic(`${probes.length} probes: ${JSON.stringify(Object.fromEntries(statuses))}`);
      } finally {
        await server.close();
      }
    });
  }
});

interface Representation {
  key: string;
  encoding: string | undefined;
  bytes: Buffer;
}

/** Every representation the manifest of `dir` lists, by ETag, each checked: hash, and decoded to its original. */
async function representationsOf(dir: string, into = new Map<string, Representation>()) {
  const manifest = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as Manifest;
  for (const [key, entry] of Object.entries(manifest.files)) {
    const original = await readFile(join(dir, key));
    assert.equal(sha256(original), entry.hash, key);
    into.set(etagOf(entry.hash), { key, encoding: undefined, bytes: original });
    for (const [encoding, variant] of Object.entries(entry.variants)) {
      const bytes = await readFile(join(dir, key + { gzip: ".gz", br: ".br", zstd: ".zst" }[encoding]));
      assert.equal(sha256(bytes), variant.hash, `${key} ${encoding}`);
      assert.ok((await decode(bytes, encoding)).equals(original), `${key} ${encoding} decodes to its original`);
      into.set(etagOf(variant.hash, encoding), { key, encoding, bytes });
    }
  }
  return into;
}

interface Spec {
  path: string;
  key: string;
  method: "GET" | "HEAD";
  headers: Record<string, string>;
  /** The status a static site must give; unset where several are right. */
  expect?: number;
}

/** The paths under load and the file each names. */
const PATHS: [string, string][] = [
  ["/", "index.html"],
  ["/index.html", "index.html"],
  ["/docs/", "docs/index.html"],
  ["/assets/app.3f9a1c2b.js", "assets/app.3f9a1c2b.js"],
  ["/assets/vendor.77bc0e1d.js", "assets/vendor.77bc0e1d.js"],
  ["/assets/style.css", "assets/style.css"],
  ["/data/products.json", "data/products.json"],
  ["/big/large.txt", "big/large.txt"],
  ["/images/node-js.png", "images/node-js.png"],
  ["/empty.txt", "empty.txt"],
  ["/docs/menu%20caf%C3%A9.txt", "docs/menu café.txt"],
];
const ACCEPT = ["br", "gzip", "zstd", "identity", "gzip, deflate, br, zstd", "br;q=0, gzip", "*", undefined];

/** A seeded mix of encodings, HEAD, ranges and conditional requests. */
function requestMix(seed: number, paths: [string, string][], reps: Map<string, Representation>, mtimes: Manifest) {
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)] as T;
  const tagsOf = (key: string) => [...reps].filter(([, r]) => r.key === key).map(([tag]) => tag);
  return (): Spec => {
    const [path, key] = pick(paths);
    const accept = pick(ACCEPT);
    const spec: Spec = { path, key, method: "GET", headers: accept === undefined ? {} : { "accept-encoding": accept } };
    const lastModified = new Date(mtimes.files[key]?.mtimeMs ?? 0).toUTCString();
    switch (Math.floor(random() * 9)) {
      case 0:
        spec.method = "HEAD";
        break;
      case 1:
        spec.headers.range = pick(["bytes=0-99", "bytes=-100", "bytes=7-", "bytes=1000-1999"]);
        break;
      case 2:
        spec.headers["if-none-match"] = tagsOf(key).join(", ");
        spec.expect = 304;
        break;
      case 3:
        spec.headers["if-none-match"] = '"stale"';
        spec.expect = 200;
        break;
      case 4:
        spec.headers["if-modified-since"] = lastModified;
        spec.expect = 304;
        break;
      case 5:
        spec.headers.range = "bytes=0-9";
        spec.headers["if-range"] = '"stale"';
        spec.expect = 200;
        break;
    }
    return spec;
  };
}

/** Why an answer is wrong for its request, or `undefined`: its body must be exactly what its headers say. */
function fault(
  spec: Spec,
  answer: Answer,
  reps: Map<string, Representation>,
  mayBeMissing = false,
): string | undefined {
  const { status, headers, body } = answer;
  if (status === 404 && mayBeMissing) return undefined;
  if (spec.expect && status !== spec.expect) return `status ${status}, expected ${spec.expect}`;
  const rep = reps.get(String(headers.etag));
  if (!rep) return `status ${status} with unknown ETag ${headers.etag}`;
  if (rep.key !== spec.key) return `the ETag of ${rep.key}`;
  // A 304 and a 416 carry the ETag of what the client has or asked for, and no Content-Encoding.
  if (status === 304) return body.length ? "a 304 with a body" : undefined;
  if (status === 416) {
    const [, from = ""] = /^bytes=(\d*)-/.exec(spec.headers.range ?? "") ?? [];
    const unsatisfiable = from === "" ? rep.bytes.length === 0 : Number(from) >= rep.bytes.length;
    return unsatisfiable && headers["content-range"] === `bytes */${rep.bytes.length}` ? undefined : "a wrong 416";
  }
  if (headers["content-encoding"] !== rep.encoding) return `Content-Encoding ${headers["content-encoding"]}`;
  const length = Number(headers["content-length"] ?? body.length);
  if (status === 200) {
    if (spec.method === "HEAD") return body.length || length !== rep.bytes.length ? "HEAD length" : undefined;
    return length === body.length && body.equals(rep.bytes) ? undefined : "200 body differs from its ETag's bytes";
  }
  if (status === 206) {
    const [, from, to, size] = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(headers["content-range"])) ?? [];
    if (Number(size) !== rep.bytes.length) return `Content-Range ${headers["content-range"]}`;
    const slice = rep.bytes.subarray(Number(from), Number(to) + 1);
    return length === body.length && body.equals(slice) ? undefined : "206 body differs from its ETag's bytes";
  }
  return `status ${status}`;
}

interface LoadResult {
  requests: number;
  errors: string[];
  statuses: Record<number, number>;
}

/** `clients` loops, each one request at a time on a keep-alive agent, until `until()` is true. */
async function runLoad(
  port: number,
  clients: number,
  until: () => boolean,
  next: () => Spec,
  check: (spec: Spec, answer: Answer) => string | undefined,
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const result: LoadResult = { requests: 0, errors: [], statuses: {} };
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (!until()) {
        const spec = next();
        try {
          const answer = await get(port, spec.path, spec.headers, spec.method, agent);
          result.statuses[answer.status] = (result.statuses[answer.status] ?? 0) + 1;
          const wrong = check(spec, answer);
          if (wrong) result.errors.push(`${spec.method} ${spec.path} ${JSON.stringify(spec.headers)}: ${wrong}`);
        } catch (error) {
          result.errors.push(`${spec.method} ${spec.path}: ${(error as Error).message}`);
        }
        result.requests += 1;
      }
    }),
  );
  agent.destroy();
  return result;
}

describe(`load: ${LOAD.clients} clients for ${LOAD.ms / 1000} s per adapter, memory and descriptors flat`, () => {
  let site: Site;
  let reps: Map<string, Representation>;
  const paths: [string, string][] = [...PATHS, ["/big/blob.bin", "big/blob.bin"]];

  before(async () => {
    site = await makeSite();
    // Over the 1 MiB in-memory limit: streamed from disk on every request.
    await addFile(site, "big/blob.bin", randomBytes(1536 * 1024), "application/octet-stream");
    reps = await representationsOf(site.dir);
  });
  after(() => site.remove());

  const variants: [string, Start, ServeStaticOptions?][] = [
    ...ADAPTERS.map(([name, start]): [string, Start] => [name, start]),
    ["node:http serveStatic, every body from disk", ADAPTERS[0]?.[1] as Start, { cacheBytes: 0 }],
  ];
  for (const [name, start, options] of variants) {
    test(name, async (t) => {
      const server = await start(site, options);
      try {
        const next = requestMix(7, paths, reps, site.manifest);
        const check = (spec: Spec, answer: Answer) => fault(spec, answer, reps);
        // Warm up: hot variants in memory, code compiled; then measure from there.
        const warm = Date.now() + (LONG_SECONDS > 0 ? 1000 : 300);
        await runLoad(server.port, LOAD.clients, () => Date.now() > warm, next, check);
        await sleep(100);
        const fds = hasProc ? openDescriptors() : 0;
        const before = memory();
        const end = Date.now() + LOAD.ms;
        const result = await runLoad(server.port, LOAD.clients, () => Date.now() > end, next, check);
        if (hasProc) await eventually(async () => openDescriptors() <= fds);
        const afterwards = memory();
        t.diagnostic(
          `${result.requests} requests (${JSON.stringify(result.statuses)}), ${result.errors.length} errors; ` +
            `heap+buffers ${mb(before.heapUsed)} -> ${mb(afterwards.heapUsed)}, rss ${mb(before.rss)} -> ${mb(afterwards.rss)}; ` +
            `descriptors ${fds} -> ${hasProc ? openDescriptors() : "n/a"}`,
        );
        assert.deepEqual(result.errors.slice(0, 5), []);
        assert.ok(result.requests >= LOAD.clients * 5, `only ${result.requests} requests`);
        assert.ok((result.statuses[304] ?? 0) > 0 && (result.statuses[206] ?? 0) > 0, "the mix has 304s and 206s");
        assert.ok(afterwards.heapUsed - before.heapUsed < 32 * 1024 * 1024, "heap and buffers grew by 32 MB or more");
        // RSS also holds the clients and the allocator's warm-up: only a gross leak shows there.
        assert.ok(afterwards.rss - before.rss < 256 * 1024 * 1024, "RSS grew by 256 MB or more");
      } finally {
        await server.close();
      }
    });
  }
});

describe("a client that goes away mid-body leaks no file descriptor", { skip: !hasProc && "no /proc" }, () => {
  let site: Site;
  const SIZE = 8 * 1024 * 1024;
  let blob: Buffer;

  before(async () => {
    site = await makeSite();
    blob = randomBytes(SIZE);
    await addFile(site, "big/video.bin", blob, "application/octet-stream");
  });
  after(() => site.remove());

  /** Read a little of the body (or none), then drop the connection. */
  function abandon(port: number, headers: Record<string, string>, read: boolean): Promise<number> {
    return new Promise((done, fail) => {
      const req = request({ host: "127.0.0.1", port, path: "/big/video.bin", headers, agent: false }, (res) => {
        if (!read) {
          req.destroy();
          return done(0);
        }
        res.once("data", (chunk: Buffer) => {
          req.destroy();
          done(chunk.length);
        });
      });
      req.on("error", (error) => (req.destroyed ? undefined : fail(error)));
      req.end();
    });
  }

  for (const [name, start] of ADAPTERS) {
    test(name, async (t) => {
      const server = await start(site);
      try {
        // The first request hashes the file once; count from there.
        assert.ok((await get(server.port, "/big/video.bin")).body.equals(blob));
        await sleep(50);
        const fds = openDescriptors();
        let received = 0;
        for (let wave = 0; wave < 10; wave++) {
          const sizes = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              abandon(server.port, i % 3 === 2 ? { range: "bytes=1000000-" } : {}, i % 4 !== 3),
            ),
          );
          for (const size of sizes) assert.ok(size < SIZE - 1_000_000, "the client stopped mid-body");
          received += sizes.reduce((a, b) => a + b, 0);
        }
        await eventually(async () => openDescriptors() <= fds, 5000).catch(() => {});
        const left = openDescriptors();
        t.diagnostic(`200 aborted requests (${mb(received)} read of ${mb(200 * SIZE)}); descriptors ${fds} -> ${left}`);
        assert.ok(left <= fds, `${left - fds} descriptors leaked`);
        // And the server still serves the whole file.
        assert.ok((await get(server.port, "/big/video.bin")).body.equals(blob));
      } finally {
        await server.close();
      }
    });
  }
});

describe("a redeploy under load: no 5xx, no answer mixing releases", () => {
  const NEW_ASSET = "assets/app.9d8e7f6a.js";
  const GONE_ASSET = "assets/vendor.77bc0e1d.js";

  /**
   * In place in two halves, as a build that rewrites index.html may do (readers can see it half-written),
   * or to a temp name renamed over it.
   */
  async function write(path: string, bytes: Buffer, inPlace: boolean) {
    if (!inPlace) {
      await writeFile(`${path}.sync`, bytes);
      return rename(`${path}.sync`, path);
    }
    const handle = await open(path, "w");
    try {
      const half = bytes.length >> 1;
      await handle.write(bytes, 0, half, 0);
      await sleep(20);
      await handle.write(bytes, half, bytes.length - half, half);
    } finally {
      await handle.close();
    }
  }
  const release = async (dir: string, n: number, inPlace: boolean) => {
    const page = await readFile(join(dir, "index.html"), "utf8");
    const next = `${page}\n<!-- release ${n} -->${"<p>new</p>".repeat(n * 50)}`;
    await write(join(dir, "index.html"), Buffer.from(next), inPlace);
    await write(join(dir, "docs/index.html"), Buffer.from(`<h1>docs ${n}</h1>${"<p>docs</p>".repeat(300)}`), inPlace);
    const products = JSON.stringify({ release: n, items: Array(400).fill(n) });
    await write(join(dir, "data/products.json"), Buffer.from(products), inPlace);
  };

  /** Release 2: built in the served folder (sources rewritten, then `precompress` writes variants and manifest). */
  async function buildHere(dir: string, inPlace: boolean) {
    await release(dir, 2, inPlace);
    await writeFile(join(dir, NEW_ASSET), `export const release = 2;\n${"console.log(release);\n".repeat(200)}`);
    await rm(join(dir, GONE_ASSET));
    await precompress({ dir, cache: false });
  }

  /** Release 3: built elsewhere, then synced file by file (index.html maybe in place) with the manifest last. */
  async function buildAndSync(dir: string, inPlace: boolean) {
    const staging = await mkdtemp(join(tmpdir(), "precompressor-staging-"));
    try {
      await cp(dir, staging, { recursive: true, preserveTimestamps: true });
      await release(staging, 3, false);
      await precompress({ dir: staging, cache: false });
      const files = readdirSync(staging, { recursive: true, withFileTypes: true })
        .filter((f) => f.isFile() && f.name !== MANIFEST && !f.name.startsWith(".precompressor"))
        .map((f) => join(f.parentPath ?? f.path, f.name).slice(staging.length + 1));
      for (const file of files) {
        const bytes = await readFile(join(staging, file));
        const current = await readFile(join(dir, file)).catch(() => undefined);
        if (!current?.equals(bytes)) await write(join(dir, file), bytes, inPlace && file === "index.html");
      }
      await write(join(dir, MANIFEST), await readFile(join(staging, MANIFEST)), false);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  test("a page rewritten in place is never served half-written", async () => {
    const site = await makeSite();
    const server = await ADAPTERS[0]?.[1](site);
    assert.ok(server);
    try {
      const key = "docs/index.html";
      const v2 = Buffer.from(`<h1>v2</h1>${"<p>rewritten in place</p>".repeat(2000)}`);
      // Not requested before, so not in memory: only the disk can answer, and it is mid-write.
      const writing = write(join(site.dir, key), v2, true);
      await sleep(5);
      const answers = await Promise.all([0, 5, 10, 15].map((ms) => sleep(ms).then(() => get(server.port, `/${key}`))));
      await writing;
      for (const answer of answers) {
        assert.equal(answer.status, 200);
        assert.ok(answer.body.equals(v2), `${answer.body.length} bytes, not the ${v2.length} written`);
        assert.equal(answer.headers.etag, etagOf(sha256(v2)));
        assert.equal(answer.headers["cache-control"], "no-cache");
      }
    } finally {
      await server.close();
      await site.remove();
    }
  });

  // A body streamed from disk is safe from files replaced by rename, not from a file rewritten under
  // the stream: pages are rewritten in place only where they are read whole (under cacheFileBytes).
  const servers: [string, Start, ServeStaticOptions, boolean][] = [
    ["node:http serveStatic, pages rewritten in place", ADAPTERS[0]?.[1] as Start, {}, true],
    ["node:http serveStatic, every body from disk", ADAPTERS[0]?.[1] as Start, { cacheBytes: 0 }, false],
    ["fetch handler, pages rewritten in place", ADAPTERS[2]?.[1] as Start, {}, true],
    ["fetch handler, every body from disk", ADAPTERS[2]?.[1] as Start, { cacheBytes: 0 }, false],
  ];
  for (const [name, start, options, inPlace] of servers) {
    test(name, async (t) => {
      const site = await makeSite();
      const server = await start(site, options);
      try {
        const reps = await representationsOf(site.dir);
        const releaseOf = new Map([...reps.keys()].map((tag) => [tag, 1]));
        const listed = [new Set(Object.keys(site.manifest.files))];
        const manifestKeys = async () =>
          new Set(Object.keys((JSON.parse(await readFile(join(site.dir, MANIFEST), "utf8")) as Manifest).files));
        const paths: [string, string][] = [...PATHS, [`/${NEW_ASSET}`, NEW_ASSET]];
        const next = requestMix(11, paths, reps, site.manifest);
        const answers: [Spec, Answer][] = [];
        let deployed = false;
        const load = runLoad(
          server.port,
          Math.min(LOAD.clients, 50),
          () => deployed,
          next,
          (spec, answer) => {
            answers.push([spec, answer]);
            return answer.status >= 500 ? `status ${answer.status}` : undefined;
          },
        );
        await sleep(300);
        await buildHere(site.dir, inPlace);
        for (const tag of (await representationsOf(site.dir, reps)).keys())
          if (!releaseOf.has(tag)) releaseOf.set(tag, 2);
        listed.push(await manifestKeys());
        await sleep(300);
        await buildAndSync(site.dir, inPlace);
        for (const tag of (await representationsOf(site.dir, reps)).keys())
          if (!releaseOf.has(tag)) releaseOf.set(tag, 3);
        listed.push(await manifestKeys());
        await sleep(400);
        deployed = true;
        const result = await load;

        const faults: string[] = [];
        const seen = new Map<number | string, number>();
        let restated = 0;
        for (const [spec, answer] of answers) {
          // A file some release does not list (the new asset, the one removed) may rightly be a 404.
          const wrong = fault(
            { ...spec, expect: undefined },
            answer,
            reps,
            !listed.every((keys) => keys.has(spec.key)),
          );
          if (wrong) faults.push(`${spec.method} ${spec.path} ${JSON.stringify(spec.headers)}: ${wrong}`);
          const version = answer.status === 404 ? 404 : (releaseOf.get(String(answer.headers.etag)) ?? "?");
          seen.set(version, (seen.get(version) ?? 0) + 1);
          if (answer.headers["cache-control"] === "no-cache" && !spec.key.endsWith(".html")) restated += 1;
        }
        t.diagnostic(
          `${result.requests} requests (${JSON.stringify(result.statuses)}), answers by release ` +
            `${JSON.stringify(Object.fromEntries(seen))}, ${restated} restated from disk mid-deploy`,
        );
        assert.deepEqual(result.errors.slice(0, 5), []);
        assert.deepEqual(faults.slice(0, 5), []);
        assert.ok((seen.get(1) ?? 0) > 0 && (seen.get(3) ?? 0) > 0, "the load spanned the redeploy");
        // Once settled, the last release is served.
        const index = await get(server.port, "/", { "accept-encoding": "br" });
        assert.ok((await decode(index.body, "br")).includes("release 3"));
      } finally {
        await server.close();
        await site.remove();
      }
    });
  }
});
