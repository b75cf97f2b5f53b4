// Debian's nginx with libnginx-mod-http-brotli-static, configured by `precompressor config nginx`.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { webServerSuite, which } from "./web-servers.js";

const NGINX = which("nginx");
const BROTLI = "/usr/lib/nginx/modules/ngx_http_brotli_static_module.so";
const missing = !NGINX
  ? "nginx is not installed (apt-get install nginx libnginx-mod-http-brotli-static)"
  : !existsSync(BROTLI)
    ? `${BROTLI} is missing (apt-get install libnginx-mod-http-brotli-static)`
    : undefined;
if (missing) console.log(`skipping the nginx suite: ${missing}`);

webServerSuite(
  "nginx",
  missing,
  ["gzip", "br"],
  { gzipOverBr: "br", codedRange: 200, identityVary: true },
  async (block, _port, parent) => {
    const prefix = await mkdtemp(join(parent, "nginx-"));
    const log = join(prefix, "error.log");
    await writeFile(join(prefix, "server.conf"), block);
    // The smallest nginx.conf around the printed block: in the foreground, every path in `prefix`.
    const temps = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `${t}_temp_path ${prefix}/${t};`);
    await writeFile(
      join(prefix, "nginx.conf"),
      `load_module ${BROTLI};
daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${log};
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    ${temps.join("\n    ")}
    include ${prefix}/server.conf;
}
`,
    );
    const child = spawn(NGINX as string, ["-p", prefix, "-c", join(prefix, "nginx.conf"), "-e", log], {
      stdio: "ignore",
    });
    return { child, log };
  },
);
