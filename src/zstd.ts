// zstd has two backends: node:zlib where the running Node has it (>= 22.15), otherwise zstd
// compiled to WebAssembly (@bokuweb/zstd-wasm) for whole buffers and @mongodb-js/zstd@1.2.2's
// bindings for streams (its `compress()` wrapper silently uses level 3: the bindings are called).
import { createRequire } from "node:module";
import { Transform } from "node:stream";
import * as zlib from "node:zlib";

/** Browsers decode zstd only with a window <= 8 MB (RFC 9659). */
export const ZSTD_MAX_WINDOW_LOG = 23;

/** Frames of at most the window size keep memory bounded on the bindings path for large files. */
const BINDINGS_FRAME_BYTES = 1 << ZSTD_MAX_WINDOW_LOG;

type NodeZstd = typeof zlib & {
  zstdCompress: (buf: Buffer, options: object, cb: (err: Error | null, out: Buffer) => void) => void;
  zstdCompressSync: (buf: Buffer, options: object) => Buffer;
  createZstdCompress: (options: object) => Transform;
};
interface Bindings {
  compress(buf: Buffer, level: number): Promise<Buffer>;
  decompress(buf: Buffer): Promise<Buffer>;
}
interface Wasm {
  init(): Promise<void>;
  compress(buf: Uint8Array, level: number): Uint8Array;
}

const nodeZstd: NodeZstd | undefined =
  typeof (zlib as Partial<NodeZstd>).createZstdCompress === "function" ? (zlib as NodeZstd) : undefined;
const requireCjs = createRequire(import.meta.url);
let bindings: Bindings | undefined;
function loadBindings(): Bindings {
  bindings ??= requireCjs("@mongodb-js/zstd/bindings.js") as Bindings;
  return bindings;
}

/**
 * The bindings take no size hint: every call allocates and faults in tables sized for an unbounded
 * input, even for 1 KB (README, "zstd on Node 20"). The WebAssembly build calls ZSTD_compress, which sizes
 * them to the input, and keeps its heap between calls, so whole buffers go there at the full level.
 */
let wasm: Promise<Wasm> | undefined;
function loadWasm(): Promise<Wasm> {
  wasm ??= (async () => {
    const w = requireCjs("@bokuweb/zstd-wasm") as Wasm;
    await w.init();
    return w;
  })();
  return wasm;
}

/** Which zstd implementation this process uses for whole buffers; part of the settings digest, since bytes differ. */
export const zstdBackend: "node:zlib" | "@bokuweb/zstd-wasm" = nodeZstd ? "node:zlib" : "@bokuweb/zstd-wasm";

/** The highest level that keeps the window within 8 MB on this backend. */
export const ZSTD_MAX_LEVEL = nodeZstd ? 22 : 19;

function nodeZstdOptions(level: number, size: number): object {
  const c = zlib.constants as unknown as Record<string, number>;
  return {
    params: { [c.ZSTD_c_compressionLevel as number]: level, [c.ZSTD_c_windowLog as number]: ZSTD_MAX_WINDOW_LOG },
    pledgedSrcSize: size,
  };
}

/** zstd-compress a whole buffer. */
export async function zstdCompressBuffer(input: Buffer, level: number): Promise<Buffer> {
  if (nodeZstd) {
    const z = nodeZstd;
    return new Promise((resolve, reject) =>
      z.zstdCompress(input, nodeZstdOptions(level, input.length), (err, out) => (err ? reject(err) : resolve(out))),
    );
  }
  // One frame whatever the size: ZSTD_compress keeps level <= 19's window within 8 MB itself.
  const out = (await loadWasm()).compress(input, level);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/** zstd-compress a whole buffer on this thread; undefined where the WebAssembly build, loaded asynchronously, encodes. */
export function zstdCompressBufferSync(input: Buffer, level: number): Buffer | undefined {
  return nodeZstd?.zstdCompressSync(input, nodeZstdOptions(level, input.length));
}

/** A streaming zstd encoder for files too large to hold in memory. */
export function createZstdCompressStream(level: number, size: number): Transform {
  if (nodeZstd) return nodeZstd.createZstdCompress(nodeZstdOptions(level, size));
  return createFramingStream(loadBindings(), level);
}

/**
 * The bindings cannot stream: cut the input into window-sized frames, each compressed alone.
 * One frame buffer is filled and reused: no concatenation, and no copy beyond the one into it.
 */
function createFramingStream(b: Bindings, level: number): Transform {
  let frame: Buffer | undefined;
  let filled = 0;
  const take = async (stream: Transform, chunk: Buffer) => {
    for (let at = 0; at < chunk.length; ) {
      frame ??= Buffer.allocUnsafe(BINDINGS_FRAME_BYTES);
      const copied = chunk.copy(frame, filled, at);
      filled += copied;
      at += copied;
      // Awaited before the next copy: the bindings read the frame on libuv's pool meanwhile.
      if (filled === BINDINGS_FRAME_BYTES) {
        stream.push(await b.compress(frame, level));
        filled = 0;
      }
    }
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      take(this, chunk).then(() => done(), done);
    },
    flush(done) {
      if (!frame || filled === 0) return done();
      b.compress(frame.subarray(0, filled), level).then((out) => done(null, out), done);
    },
  });
}

/** zstd-decompress (tests, benchmarks and cache verification use it). */
export async function zstdDecompressBuffer(input: Buffer): Promise<Buffer> {
  const z = zlib as Partial<{ zstdDecompressSync: (b: Buffer) => Buffer }>;
  if (z.zstdDecompressSync) return z.zstdDecompressSync(input);
  return loadBindings().decompress(input);
}
