// The package's own version, read once from package.json (one folder up from both src/ and dist/).
import { createRequire } from "node:module";

export const VERSION = (createRequire(import.meta.url)("../package.json") as { version: string }).version;
