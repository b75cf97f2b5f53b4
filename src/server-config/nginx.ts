// `precompressor config nginx`: a server { } block for http { } that serves the variants as the
// resolver would, as far as nginx can.
import { CACHE_CONTROL, HASHED_PCRE, HIDDEN_PATH, HTML_PATH, type Listen } from "./rules.js";

// nginx unescapes \" \' \\ \t \r \n in a quoted string: double those backslashes.
const quote = (text: string) => `"${text.replace(/\\(?=["'\\trn])/g, "\\\\").replace(/"/g, '\\"')}"`;

/** The nginx server block for `root`. */
export function nginxConfig(root: string, listen: Listen): string {
  const address = listen.host ? `${listen.host}:${listen.port}` : String(listen.port);
  const cache = (value: string) => `add_header Cache-Control ${quote(value)};`;
  return `# Written by \`precompressor config nginx\` for ${root}. Include it inside http { }, which must
# include mime.types. brotli_static needs its module, loaded at the top of nginx.conf (not here):
#   load_module modules/ngx_http_brotli_static_module.so;
# (Debian's libnginx-mod-http-brotli-static does that in /etc/nginx/modules-enabled/.)
# What nginx cannot do that \`precompressor serve\` does:
# - no zstd: the .zst variants need a third-party module;
# - q-values only refuse (q=0): br beats gzip whatever their q, and * or x-gzip select no variant;
# - a Range of a coded response gets the whole variant (200), and identity;q=0 gets identity, not 406;
# - no RFC 9842 dictionaries: no dcz/dcb, no Use-As-Dictionary, so returning visitors get plain br.
server {
    listen ${address};
    root ${quote(root)};
    index index.html;
    charset utf-8;
    gzip_static on;
    brotli_static on;
    gzip_vary on;

    # Never served: the manifest (.precompressor.json lists every path, hash and size), the lock,
    # temp files, and every dotfile except .well-known/.
    location ~ ${quote(HIDDEN_PATH)} { return 404; }
    # Cache-Control by the resolver's rule: a content-hashed name never changes.
    location ~ ${quote(HASHED_PCRE)} { ${cache(CACHE_CONTROL.hashed)} }
    location ~* ${quote(HTML_PATH)} { ${cache(CACHE_CONTROL.html)} }
    location / { ${cache(CACHE_CONTROL.other)} }
}
`;
}
