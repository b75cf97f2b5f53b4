// Debian's Caddy 2.6, configured by `precompressor config caddy`.
import { spawn } from "node:child_process";
import { mkdtemp, open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { webServerSuite, which } from "./web-servers.js";

const CADDY = which("caddy");
const missing = CADDY ? undefined : "caddy is not installed (apt-get install caddy)";
if (missing) console.log(`skipping the Caddy suite: ${missing}`);

webServerSuite(
  "caddy",
  missing,
  ["gzip", "br", "zstd"],
  { gzipOverBr: "gzip", codedRange: 206, identityVary: false },
  async (block, _port, parent) => {
    const home = await mkdtemp(join(parent, "caddy-"));
    const log = join(home, "caddy.log");
    // No admin endpoint, and HOME/XDG in the temp folder: nothing outside it is read or written.
    await writeFile(join(home, "Caddyfile"), `{\n\tadmin off\n}\n\n${block}`);
    const out = await open(log, "w");
    const env = { ...process.env, HOME: home, XDG_DATA_HOME: home, XDG_CONFIG_HOME: home };
    const child = spawn(CADDY as string, ["run", "--config", join(home, "Caddyfile"), "--adapter", "caddyfile"], {
      env,
      stdio: ["ignore", out.fd, out.fd],
    });
    child.once("exit", () => void out.close());
    return { child, log };
  },
);
