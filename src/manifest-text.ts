// The manifest's canonical text: a head line, one entry a line, a closing line. It is written in
// chunks and read back a line at a time, so a million-file manifest is never one string in memory.
// Any other JSON layout of the same document is the reader's to parse whole (src/manifest.ts).
import { createReadStream } from "node:fs";
import type { Manifest } from "./manifest-format.js";

/**
 * Characters per chunk written or read: big enough for few system calls, small enough for V8's young
 * generation (a string over 128 KB is born in the old one, and only a full collection frees it).
 */
const CHUNK_CHARS = 32 * 1024;

/** The first line: every field but the entries, then the opening of `files`. */
export function headLine(m: Pick<Manifest, "version" | "generator" | "settings" | "shard">): string {
  const shard = m.shard ? `"shard":${JSON.stringify(m.shard)},` : "";
  return `{"version":${JSON.stringify(m.version)},"generator":${JSON.stringify(m.generator)},"settings":${JSON.stringify(m.settings)},${shard}"files":{`;
}

/**
 * The canonical text of `manifest`, in chunks that concatenate to exactly what one
 * `JSON.stringify` per entry, joined a line each, gives.
 */
export function* manifestChunks(manifest: Manifest): Generator<string> {
  let chunk = `${headLine(manifest)}\n`;
  let first = true;
  for (const key of Object.keys(manifest.files)) {
    chunk += `${first ? "" : ",\n"}${JSON.stringify(key)}:${JSON.stringify(manifest.files[key])}`;
    first = false;
    if (chunk.length >= CHUNK_CHARS) {
      yield chunk;
      chunk = "";
    }
  }
  yield `${chunk}\n}}\n`;
}

/** What the canonical reader hands on: the head's fields (with `files` empty), then each entry. */
export interface LineSink {
  /** False refuses the head: not ours, so the text is parsed whole. */
  head(data: Record<string, unknown>): boolean;
  /** False refuses the entry (a duplicate key): the text is parsed whole. */
  entry(key: string, value: unknown): boolean;
}

/**
 * Reads the canonical layout a line at a time. Each line is parsed as JSON on its own, and only a text
 * whose lines join into the one document (head, `"key":{…},` lines, `}}`) is accepted: whatever else
 * (other whitespace, a key on two lines, a trailing comma) makes `accepted` false, and the caller
 * parses the text whole, as any JSON reader would.
 */
export class CanonicalReader {
  private state: "head" | "entries" | "blank" | "closed" | "other" = "head";
  /** Whether the last entry line ended with a comma, so another entry must follow. */
  private comma = false;
  private entries = 0;

  constructor(private readonly sink: LineSink) {}

  /** Whether the text so far is canonical; once false it stays false. */
  get accepted(): boolean {
    return this.state !== "other";
  }

  push(line: string): void {
    if (this.state === "head") this.state = this.readHead(line) ? "entries" : "other";
    else if (this.state === "entries") this.state = this.readEntry(line);
    else if (this.state === "blank") this.state = line === "}}" ? "closed" : "other";
    // JSON allows whitespace after the document, and nothing else.
    else if (this.state === "closed" && !/^[ \t\r]*$/.test(line)) this.state = "other";
  }

  /** Whether the whole text was canonical. */
  end(): boolean {
    return this.state === "closed";
  }

  private readHead(line: string): boolean {
    if (!line.endsWith('"files":{')) return false;
    const data = parseJson(`${line}}}`);
    // Only our writer's exact head: no other field, no duplicate key, `files` last.
    if (!isRecord(data) || headLine(data as unknown as Manifest) !== line) return false;
    return this.sink.head(data);
  }

  private readEntry(line: string): typeof this.state {
    if (line === "}}") return this.comma ? "other" : "closed";
    // An empty `files`: the writer puts an empty line between its head and its close.
    if (line === "" && this.entries === 0) return "blank";
    if (this.entries > 0 && !this.comma) return "other";
    this.comma = line.endsWith(",");
    // `"key":value`, split at the key's closing quote: a key with `":` in it fails to parse here
    // and goes to the whole-text parse. One object per key would give V8 a new shape per key.
    const colon = line.indexOf('":', 1);
    const key = line.startsWith('"') && colon > 0 ? parseJson(line.slice(0, colon + 1)) : undefined;
    const value = typeof key === "string" ? parseJson(line.slice(colon + 2, this.comma ? -1 : undefined)) : undefined;
    // `__proto__` as a key behaves differently on assignment: left to the whole-text parse.
    if (typeof key !== "string" || value === undefined || key === "__proto__") return "other";
    this.entries++;
    return this.sink.entry(key, value) ? "entries" : "other";
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Feed `text` to `reader` a line at a time. */
export function pushText(reader: CanonicalReader, text: string): void {
  let start = 0;
  while (reader.accepted) {
    const end = text.indexOf("\n", start);
    reader.push(text.slice(start, end === -1 ? undefined : end));
    if (end === -1) return;
    start = end + 1;
  }
}

/** Feed the file at `path` to `reader` a line at a time, stopping as soon as it is not canonical. */
export async function pushFile(reader: CanonicalReader, path: string): Promise<void> {
  let rest = "";
  for await (const chunk of createReadStream(path, { encoding: "utf8", highWaterMark: CHUNK_CHARS })) {
    const text = rest + (chunk as string);
    const last = text.lastIndexOf("\n");
    if (last === -1) {
      rest = text;
      continue;
    }
    pushText(reader, text.slice(0, last));
    rest = text.slice(last + 1);
    if (!reader.accepted) return;
  }
  reader.push(rest);
}
