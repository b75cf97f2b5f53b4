// How a browser applies a `Use-As-Dictionary` header (RFC 9842 §2.1): `match` is a URL pattern
// relative to the response's URL. With URLPattern (Node 24, as Chromium's) it is the real one;
// without it, the same rule for the patterns we send: literal text, `\` escapes, `*` any run.

/** The `match` value of a Use-As-Dictionary header, sf-string unescaped. */
export function matchOf(header: string | string[] | undefined): string {
  const found = /match="((?:[^"\\]|\\.)*)"/.exec(String(header));
  if (!found) throw new Error(`no match in ${String(header)}`);
  return (found[1] ?? "").replace(/\\([\\"])/g, "$1");
}

type Pattern = { test(url: string): boolean };
const URLPatternCtor = (globalThis as { URLPattern?: new (input: string, base: string) => Pattern }).URLPattern;

/** Whether `pattern`, from a response at `responseUrl`, covers a request for `nextUrl`. */
export function covers(pattern: string, responseUrl: string, nextUrl: string): boolean {
  if (URLPatternCtor) return new URLPatternCtor(pattern, responseUrl).test(nextUrl);
  const base = new URL(responseUrl).pathname.replace(/[^/]*$/, "");
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "\\") source += (pattern[++i] ?? "").replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    else source += c === "*" ? ".*" : c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}${source}$`).test(new URL(nextUrl).pathname);
}

export const hasURLPattern = URLPatternCtor !== undefined;
