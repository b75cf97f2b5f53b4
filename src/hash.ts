import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";

/** `sha256-<base64url>`: the content identity used in the manifest, ETags and cache keys. */
export function hashBytes(bytes: Uint8Array): string {
  return formatDigest(createHash("sha256").update(bytes));
}

export function formatDigest(hash: Hash): string {
  return `sha256-${hash.digest("base64url")}`;
}

/** Hash a file of any size with bounded memory. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return formatDigest(hash);
}
