import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";

/** `sha256-<base64url>`: the content identity used in the manifest, ETags and cache keys. */
export function hashBytes(bytes: Uint8Array): string {
  return formatDigest(createHash("sha256").update(bytes));
}

const PREFIX = "sha256-";

export function formatDigest(hash: Hash): string {
  return PREFIX + hash.digest("base64url");
}

/** The base64url part of a `sha256-<base64url>` identity: a safe file name, or the digest's bytes. */
export function digestBody(identity: string): string {
  return identity.startsWith(PREFIX) ? identity.slice(PREFIX.length) : identity;
}

/** The raw bytes of a `sha256-<base64url>` identity (the SHA-256 an RFC 9842 dictionary is named by). */
export function digestBytes(identity: string): Buffer {
  return Buffer.from(digestBody(identity), "base64url");
}

/** Hash a file of any size with bounded memory. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return formatDigest(hash);
}
