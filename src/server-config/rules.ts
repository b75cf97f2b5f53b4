// What a generated nginx or Caddy config must decide the way the resolver does: which paths are never
// served, and which Cache-Control a path gets. Each rule is written once here, as regex sources both
// servers accept (PCRE and Go's RE2, which has no lookahead).
import { resolve } from "node:path";
import { PrecompressorError } from "../errors.js";
import { HASHED_NAME } from "../serve/resolver.js";

/** The Cache-Control values of the resolver's default rule, by kind of path. */
export const CACHE_CONTROL = {
  hashed: "public, max-age=31536000, immutable",
  html: "no-cache",
  // Neither server can send a delta, so no dictionary needs keeping: revalidate every time.
  other: "public, max-age=0, must-revalidate",
} as const;

/** `(?!text)` without lookahead: at the end, or a first character that differs, or it and the rest. */
function notFollowedBy(text: string): string {
  let rest = "";
  for (const char of [...text].reverse()) rest = `(?:$|[^${char}]${rest && `|${char}${rest}`})`;
  return rest;
}

/**
 * Paths never served, tested on the request path (`/` first): dotfiles except `.well-known/` itself.
 * That covers the manifest `.precompressor.json`, the lock `.precompressor.lock` and precompressor's
 * temp files, which are dotfiles by design (`.pc-<20 hex>.tmp`, src/ownership.ts), in any folder.
 */
export const HIDDEN_PATH = `/\\.${notFollowedBy("well-known/")}`;

/** The resolver's hashed-name rule as is (PCRE has lookahead). */
export const HASHED_PCRE = HASHED_NAME.source;

/**
 * The same rule for RE2: one of these alternatives holds when the path matches every `all` and no `none`.
 * The extension is the last `.` and what follows, so a fixed-width hash sits right before it, and a
 * hex run (which holds neither `.` nor `-`) runs back to the last `.` or `-`: each test below looks
 * at that same run of characters.
 */
export const HASHED_RE2: readonly { all: readonly string[]; none: readonly string[] }[] = [
  // `[name][.-]` + 8 base64url chars, with a capital or a digit, and a letter.
  {
    all: ["(?:^|/)[^/]+[.-][\\w-]{8}\\.\\w+$", "[A-Z\\d][\\w-]{0,7}\\.\\w+$", "[A-Za-z][\\w-]{0,7}\\.\\w+$"],
    none: [],
  },
  // `[name][.-]` + 9+ lowercase hex, with a digit and a letter.
  {
    all: [
      "(?:^|/)[^/]+[.-][\\da-f]{9,}\\.\\w+$",
      "[.-][\\da-f]*\\d[\\da-f]*\\.\\w+$",
      "[.-][\\da-f]*[a-f][\\da-f]*\\.\\w+$",
    ],
    none: [],
  },
  // A bare name of 16+ lowercase hex, with a digit and a letter (webpack's `[hash][ext]`).
  {
    all: [
      "(?:^|/)[\\da-f]{16,}\\.\\w+$",
      "(?:^|/)[\\da-f]*\\d[\\da-f]*\\.\\w+$",
      "(?:^|/)[\\da-f]*[a-f][\\da-f]*\\.\\w+$",
    ],
    none: [],
  },
];

/** HTML by extension (the resolver decides by type, and types come from the extension), or an index. */
export const HTML_PATH = "(?:\\.html?|/)$";

/** Where to listen: `port`, `host:port`, `:port` or `[v6]:port`. */
export interface Listen {
  host: string | undefined;
  port: number;
}

/** Parse `--listen`; `E_BAD_OPTION` for anything else. */
export function parseListen(value: string): Listen {
  const m = /^(?:(\[[\da-f:.]+\]|[\w.-]*):)?(\d{1,5})$/i.exec(value);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535)
    throw new PrecompressorError("E_BAD_OPTION", `--listen expects host:port or a port, got "${value}"`);
  return { host: m[1] || undefined, port };
}

/** The absolute root; refuses characters a config file would read as syntax (`$`, `{`, quotes, controls). */
export function absoluteRoot(dir: string): string {
  const root = resolve(dir);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused.
  if (/[\x00-\x1f\x7f"\\${}]/.test(root))
    throw new PrecompressorError("E_BAD_OPTION", `config: cannot write the path ${JSON.stringify(root)} into a config`);
  return root;
}
