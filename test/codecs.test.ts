import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as zlib from "node:zlib";
import { decodeVariant } from "../src/cache.js";
import { BROTLI_WINDOW_LOG, createEncodeStream, encodeBuffer } from "../src/codecs.js";
import type { Encoding } from "../src/manifest-format.js";
import { BINDINGS_SMALL_FILE_BYTES, effectiveZstdLevel, zstdBackend } from "../src/zstd.js";
import { FIXTURE_SITE, ZSTD_BROWSER_WINDOW, zstdWindowSize } from "./support/helpers.js";

const ENCODINGS: Encoding[] = ["gzip", "br", "zstd"];
const LEVEL: Record<Encoding, number> = { gzip: 9, br: 11, zstd: 19 };

/** Text that compresses like real code but is not trivially repetitive. */
function pseudoText(bytes: number): Buffer {
  const words = [
    "const",
    "function",
    "return",
    "value",
    "export",
    "import",
    "=>",
    "{",
    "}",
    "(",
    ")",
    ";",
    "index",
    "items",
    "length",
  ];
  const out: string[] = [];
  let size = 0;
  let seed = 7;
  while (size < bytes) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const w = `${words[seed % words.length]}${seed % 7 === 0 ? seed % 1000 : ""} `;
    out.push(w);
    size += w.length;
  }
  return Buffer.from(out.join("").slice(0, bytes));
}

async function collect(encoding: Encoding, input: Buffer, level: number, piece = 1 << 20): Promise<Buffer> {
  const stream = createEncodeStream(encoding, { level, size: input.length, kind: "text" });
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve, reject) => {
    stream.on("end", resolve);
    stream.on("error", reject);
  });
  // Feed in 1 MiB pieces by default, as a file read stream would.
  for (let at = 0; at < input.length; at += piece) stream.write(input.subarray(at, at + piece));
  stream.end();
  await done;
  return Buffer.concat(chunks);
}

describe("codecs", () => {
  it(`zstd backend on Node ${process.version} is ${zstdBackend}`, () => {
    assert.equal(zstdBackend, "createZstdCompress" in zlib ? "node:zlib" : "@mongodb-js/zstd");
  });

  for (const encoding of ENCODINGS) {
    it(`${encoding}: round-trips a real JS file, deterministically`, async () => {
      const input = await readFile(join(FIXTURE_SITE, "assets", "app.3f9a1c2b.js"));
      const a = await encodeBuffer(encoding, input, { level: LEVEL[encoding], size: input.length, kind: "text" });
      const b = await encodeBuffer(encoding, input, { level: LEVEL[encoding], size: input.length, kind: "text" });
      assert.ok(a.length < input.length * 0.3, `${encoding} should compress JS well (${a.length})`);
      assert.deepEqual(a, b);
      assert.deepEqual(await decodeVariant(encoding, a), input);
    });

    it(`${encoding}: round-trips empty and binary input`, async () => {
      for (const input of [Buffer.alloc(0), randomBytes(5000)]) {
        const out = await encodeBuffer(encoding, input, { level: LEVEL[encoding], size: input.length, kind: "binary" });
        assert.deepEqual(await decodeVariant(encoding, out), input);
      }
    });

    it(`${encoding}: the stream encoder output decodes to the input`, async () => {
      const input = pseudoText(3 * 1024 * 1024);
      const level = encoding === "br" ? 5 : encoding === "zstd" ? 3 : 6;
      const out = await collect(encoding, input, level);
      assert.deepEqual(await decodeVariant(encoding, out), input);
    });
  }

  it("zstd: the level is honoured (level 19 differs from level 1 and is smaller)", async () => {
    // Above the bindings' small-file cap, so the requested level is the level used on every backend.
    const input = pseudoText(BINDINGS_SMALL_FILE_BYTES * 2);
    const fast = await encodeBuffer("zstd", input, { level: 1, size: input.length, kind: "text" });
    const best = await encodeBuffer("zstd", input, { level: 19, size: input.length, kind: "text" });
    assert.notDeepEqual(fast, best);
    assert.ok(best.length < fast.length, `level 19 (${best.length}) should beat level 1 (${fast.length})`);
  });

  it("zstd: small files on the bindings backend are capped at a cheap level; node:zlib keeps the level", () => {
    const small = effectiveZstdLevel(19, 1000);
    assert.equal(small, zstdBackend === "node:zlib" ? 19 : 9);
    assert.equal(effectiveZstdLevel(19, BINDINGS_SMALL_FILE_BYTES), 19);
  });

  it("zstd: the window stays within 8 MB for a 20 MB input (RFC 9659), buffer and stream", async () => {
    const input = pseudoText(20 * 1024 * 1024);
    const viaBuffer = await encodeBuffer("zstd", input, { level: 3, size: input.length, kind: "text" });
    // Pieces that straddle the bindings' 8 MiB frames: the stream must cut frames where the buffer path does.
    const viaStream = await collect("zstd", input, 3, 1_000_003);
    for (const out of [viaBuffer, viaStream]) {
      assert.ok(zstdWindowSize(out) <= ZSTD_BROWSER_WINDOW, `window ${zstdWindowSize(out)}`);
      assert.deepEqual(await decodeVariant("zstd", out), input);
    }
    if (zstdBackend === "@mongodb-js/zstd") assert.deepEqual(viaStream, viaBuffer);
  });

  it("brotli: a standard window (no large-window mode), decodable by a browser-like decoder", async () => {
    assert.equal(BROTLI_WINDOW_LOG, 22);
    const input = pseudoText(6 * 1024 * 1024);
    const out = await encodeBuffer("br", input, { level: 5, size: input.length, kind: "text" });
    // A decoder that refuses large-window streams decodes it.
    const decoded = zlib.brotliDecompressSync(out, {
      params: { [zlib.constants.BROTLI_DECODER_PARAM_LARGE_WINDOW]: 0 },
    });
    assert.deepEqual(decoded, input);
  });
});
