// RFC 9842 on the serving side: dcz/dcb only for a client that lists them by name and holds a
// dictionary we built a delta against; Use-As-Dictionary so clients keep files as dictionaries.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { decodeDelta, deltaSupport } from "../../src/delta.js";
import { precompress } from "../../src/index.js";
import type { Manifest, ManifestEntry } from "../../src/manifest-format.js";
import { createFetchHandler } from "../../src/serve/fetch.js";
import { serveStatic } from "../../src/serve/node.js";
import { createResolver, type Resolved } from "../../src/serve/resolver.js";
import { copySite, removeDir } from "../support/helpers.js";
import { decode, get, listen } from "../support/http.js";

const OLD = Buffer.from("the previous release of app.js");
const OLD_SF = `:${createHash("sha256").update(OLD).digest("base64")}:`;
const OLD_KEY = `sha256-${createHash("sha256").update(OLD).digest("base64url")}`;
const OTHER_SF = `:${createHash("sha256").update("another file").digest("base64")}:`;

const js: ManifestEntry = {
  hash: "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
  size: 100_000,
  mtimeMs: 1_700_000_000_000,
  type: "text/javascript; charset=utf-8",
  variants: {
    gzip: { size: 30_000, hash: "sha256-gzgzgzgzgzgzgzgzgzgzgzgzgzgzgzgzgzgzgzgzgzg" },
    br: { size: 25_000, hash: "sha256-brbrbrbrbrbrbrbrbrbrbrbrbrbrbrbrbrbrbrbrbrb" },
  },
  deltas: [
    {
      dict: OLD_KEY,
      encoding: "dcz",
      size: 900,
      hash: "sha256-dczdczdczdczdczdczdczdczdczdczdczdczdczdcz",
      file: "assets/app.3f9a1c2b.js.aaaaaaaa.dcz",
    },
    {
      dict: OLD_KEY,
      encoding: "dcb",
      size: 950,
      hash: "sha256-dcbdcbdcbdcbdcbdcbdcbdcbdcbdcbdcbdcbdcbdcbd",
      file: "assets/app.3f9a1c2b.js.aaaaaaaa.dcb",
    },
  ],
};
const html: ManifestEntry = { ...js, type: "text/html; charset=utf-8", deltas: undefined };
const manifest: Manifest = {
  version: 1,
  generator: "test",
  settings: {},
  files: { "assets/app.3f9a1c2b.js": js, "index.html": html },
};
const resolver = createResolver(manifest);
const pick = (ae: string, dict?: string | null) => {
  const r = resolver.resolve("/assets/app.3f9a1c2b.js", ae, dict);
  assert.ok(r?.status === 200, JSON.stringify(r));
  return r as Resolved;
};

describe("delta negotiation (resolver)", () => {
  const ALL = "gzip, deflate, br, zstd, dcb, dcz";
  for (const [ae, dict, expected] of [
    [ALL, OLD_SF, "dcz"], // both listed: the smaller delta
    ["br, dcb", OLD_SF, "dcb"],
    ["br, dcz;q=0, dcb", OLD_SF, "dcb"],
    ["br, dcz;q=0, dcb;q=0", OLD_SF, "br"],
    ["br;q=1, dcz;q=0.5", OLD_SF, "br"], // q still rules
    [ALL, undefined, "br"], // no Available-Dictionary
    [ALL, null, "br"],
    [ALL, OTHER_SF, "br"], // a dictionary we have no delta for
    ["*", OLD_SF, "br"], // `*` never selects a dictionary encoding
    ["br, *", OLD_SF, "br"],
    [ALL, OLD_SF.slice(1), "br"], // malformed: no leading colon
    [ALL, `"${OLD_SF}"`, "br"], // malformed: a string, not a byte sequence
    [ALL, ":not base64!:", "br"],
    [ALL, `${OLD_SF}, ${OLD_SF}`, "br"], // a list is not a byte sequence
    [ALL, "", "br"],
    ["gzip, dcz", ` ${OLD_SF} `, "dcz"], // surrounding whitespace is allowed
  ] as const) {
    it(`Accept-Encoding "${ae}", Available-Dictionary ${JSON.stringify(dict)} -> ${expected}`, () => {
      const r = pick(ae, dict);
      assert.equal(r.encoding, expected);
      assert.equal(r.vary, "Accept-Encoding, Available-Dictionary");
      if (expected === "dcz" || expected === "dcb") {
        assert.equal(r.path, `assets/app.3f9a1c2b.js.aaaaaaaa.${expected}`);
        assert.match(r.etag, new RegExp(`-${expected}"$`));
      }
    });
  }

  it("Use-As-Dictionary: a relative match with the content hash as wildcard; none for HTML", () => {
    assert.equal(pick("br").useAsDictionary, 'match="app.*.js"');
    const page = resolver.resolve("/", "br");
    assert.ok(page?.status === 200);
    assert.equal(page.useAsDictionary, undefined);
  });

  it("every delta and variant has its own ETag", () => {
    const tags = [pick("dcz", OLD_SF), pick("dcb", OLD_SF), pick("br"), pick("gzip"), pick("identity")].map(
      (r) => r.etag,
    );
    assert.equal(new Set(tags).size, tags.length);
  });
});

describe("deltas over HTTP", () => {
  const dirs: string[] = [];
  after(async () => Promise.all(dirs.map(removeDir)));

  it("node adapter and fetch handler serve dcz/dcb that decode to the new file", async (t) => {
    if (!deltaSupport.dcz || !deltaSupport.dcb)
      return t.skip(`Node ${process.version} writes no deltas (CI runs this under Node 24)`);
    const previous = await copySite();
    const current = await copySite();
    dirs.push(previous, current);
    const app = await readFile(join(current, "assets/app.3f9a1c2b.js"), "utf8");
    await writeFile(join(current, "assets/app.3f9a1c2b.js"), `${app}\n// release 2\n`);
    await rename(join(current, "assets/app.3f9a1c2b.js"), join(current, "assets/app.9d1e4f27.js"));
    await precompress({ dir: current, cache: false, dictionaryFrom: [previous] });
    const dictionary = await readFile(join(previous, "assets/app.3f9a1c2b.js"));
    const source = await readFile(join(current, "assets/app.9d1e4f27.js"));
    const available = `:${createHash("sha256").update(dictionary).digest("base64")}:`;

    const node = serveStatic(current);
    const fetchHandler = createFetchHandler(current);
    const viaFetch = async (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
      const response = await fetchHandler(new Request(`http://x${req.url}`, { method: req.method, headers }));
      if (!response) return res.writeHead(404).end();
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(req.method === "HEAD" ? undefined : Buffer.from(await response.arrayBuffer()));
    };
    for (const handler of [node, viaFetch]) {
      const server = await listen((req, res) => void handler(req, res));
      try {
        for (const encoding of ["dcz", "dcb"]) {
          const r = await get(server.port, "/assets/app.9d1e4f27.js", {
            "accept-encoding": `gzip, br, zstd, ${encoding}`,
            "available-dictionary": available,
          });
          assert.equal(r.status, 200);
          assert.equal(r.headers["content-encoding"], encoding);
          assert.equal(r.headers.vary, "Accept-Encoding, Available-Dictionary");
          assert.equal(Number(r.headers["content-length"]), r.body.length);
          assert.deepEqual(decodeDelta(encoding as "dcz" | "dcb", r.body, dictionary), source);
          assert.ok(
            r.body.length * 20 < (await readFile(join(current, "assets/app.9d1e4f27.js.br"))).length,
            "a delta is far smaller than br",
          );
          const head = await get(
            server.port,
            "/assets/app.9d1e4f27.js",
            { "accept-encoding": encoding, "available-dictionary": available },
            "HEAD",
          );
          assert.equal(head.headers["content-encoding"], encoding);
          assert.equal(head.body.length, 0);
        }
        const wrong = await get(server.port, "/assets/app.9d1e4f27.js", {
          "accept-encoding": "br, dcz, dcb",
          "available-dictionary": `:${createHash("sha256").update("x").digest("base64")}:`,
        });
        assert.equal(wrong.headers["content-encoding"], "br");
        assert.deepEqual(await decode(wrong.body, "br"), source);
        assert.equal(wrong.headers["use-as-dictionary"], 'match="app.*.js"');
      } finally {
        await server.close();
      }
    }
    node.close();
    fetchHandler.close();
  });
});
