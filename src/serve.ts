// Placeholder until the node adapter lands; replaced by the real preview server.
import { PrecompressorError } from "./errors.js";

export async function startServer(_options: { dir: string; port: number; host: string }): Promise<{ url: string; close(): Promise<void> }> {
  throw new PrecompressorError("E_BAD_OPTION", "serve: not available yet");
}
