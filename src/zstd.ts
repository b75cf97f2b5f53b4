// zstd has two backends: node:zlib where the running Node has it (>= 22.15),
// otherwise @mongodb-js/zstd@1.2.2, whose bindings honour the level (its
// `compress()` wrapper silently uses level 3).
import { createRequire } from "node:module";
import { Transform } from "node:stream";
import * as zlib from "node:zlib";

/** Browsers decode zstd only with a window <= 8 MB (RFC 9659). */
export const ZSTD_MAX_WINDOW_LOG = 23;

/**
 * The bindings take no size hint, so at high levels every call pays for
 * tables sized for an unbounded input: ~50 ms at level 19 even for 1 KB
 * (level 9: ~1 ms). Below this size the bindings backend caps the level,
 * so a site of 2,000 small files takes seconds, not minutes.
 */
export const BINDINGS_SMALL_FILE_BYTES = 128 * 1024;
export const BINDINGS_SMALL_FILE_MAX_LEVEL = 9;

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

const nodeZstd: NodeZstd | undefined =
  typeof (zlib as Partial<NodeZstd>).createZstdCompress === "function" ? (zlib as NodeZstd) : undefined;
let bindings: Bindings | undefined;
function loadBindings(): Bindings {
  bindings ??= createRequire(import.meta.url)("@mongodb-js/zstd/bindings.js") as Bindings;
  return bindings;
}

/** Which zstd implementation this process uses; part of the settings digest, since bytes differ. */
export const zstdBackend: "node:zlib" | "@mongodb-js/zstd" = nodeZstd ? "node:zlib" : "@mongodb-js/zstd";

/** The highest level that keeps the window within 8 MB on this backend. */
export const ZSTD_MAX_LEVEL = nodeZstd ? 22 : 19;

/** The level actually used for a file of `size` bytes on this backend. */
export function effectiveZstdLevel(level: number, size: number): number {
  if (nodeZstd || size >= BINDINGS_SMALL_FILE_BYTES) return level;
  return Math.min(level, BINDINGS_SMALL_FILE_MAX_LEVEL);
}

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
  const b = loadBindings();
  const lvl = effectiveZstdLevel(level, input.length);
  if (input.length <= BINDINGS_FRAME_BYTES) return b.compress(input, lvl);
  // One frame per window: concatenated frames are one valid zstd stream (RFC 8878 §3.1).
  const frames: Buffer[] = [];
  for (let at = 0; at < input.length; at += BINDINGS_FRAME_BYTES) {
    frames.push(await b.compress(input.subarray(at, at + BINDINGS_FRAME_BYTES), lvl));
  }
  return Buffer.concat(frames);
}

/** zstd-compress a whole buffer on this thread; undefined on the bindings backend, which is async only. */
export function zstdCompressBufferSync(input: Buffer, level: number): Buffer | undefined {
  return nodeZstd?.zstdCompressSync(input, nodeZstdOptions(level, input.length));
}

/** A streaming zstd encoder for files too large to hold in memory. */
export function createZstdCompressStream(level: number, size: number): Transform {
  if (nodeZstd) return nodeZstd.createZstdCompress(nodeZstdOptions(level, size));
  return createFramingStream(loadBindings(), effectiveZstdLevel(level, size));
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
