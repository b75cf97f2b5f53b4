// `precompressor config caddy`: a Caddyfile site block that serves the variants as the resolver
// would, as far as Caddy can.
import { CACHE_CONTROL, HASHED_RE2, HIDDEN_PATH, HTML_PATH, type Listen } from "./rules.js";

// In a Caddyfile string only \" is an escape; other backslashes stay as written.
const quote = (text: string) => `"${text.replace(/"/g, '\\"')}"`;

// RE2 has no lookahead: the hashed rule is a CEL expression over several regexes.
function hashedExpression(): string {
  // A CEL raw string: backslashes as written.
  const test = (pattern: string) => `{path}.matches(r'${pattern}')`;
  return HASHED_RE2.map(
    ({ all, none }) => `(${[...all.map(test), ...none.map((p) => `!${test(p)}`)].join(" && ")})`,
  ).join(" || ");
}

/** The Caddyfile site block for `root`. */
export function caddyConfig(root: string, listen: Listen): string {
  // http:// keeps automatic HTTPS off; no host in the address, so any Host header is served.
  const bind = listen.host ? `\n\tbind ${listen.host.replace(/^\[(.*)\]$/, "$1")}` : "";
  return `# Written by \`precompressor config caddy\` for ${root}.
# file_server picks the .zst, .br or .gz variant by the client's q-values, ties broken br > zstd > gzip
# as precompressor does. What Caddy cannot do that \`precompressor serve\` does:
# - no Vary on an uncompressed response, so a shared cache may hand the identity body to everyone;
# - * and x-gzip select no variant, and identity;q=0 gets identity, not 406;
# - no RFC 9842 dictionaries: no dcz/dcb, no Use-As-Dictionary, so returning visitors get plain br.
http://:${listen.port} {${bind}
	root * ${quote(root)}
	# Never served: the manifest (.precompressor.json lists every path, hash and size), the lock,
	# temp files, and every dotfile except .well-known/.
	@hidden path_regexp ${quote(HIDDEN_PATH)}
	@hashed expression \`${hashedExpression()}\`
	@html path_regexp ${quote(`(?i)${HTML_PATH}`)}
	# In a route, directives run in the order written: the last Cache-Control that applies wins.
	route {
		respond @hidden 404
		header Cache-Control ${quote(CACHE_CONTROL.other)}
		header @html Cache-Control ${quote(CACHE_CONTROL.html)}
		header @hashed Cache-Control ${quote(CACHE_CONTROL.hashed)}
		file_server {
			precompressed br zstd gzip
		}
	}
}
`;
}
