// Keys and sealing for journal entries. The coordination key of a credential is the SHA-256 of the
// refresh token being redeemed, so copies of one credential in many stores share it. An entry is
// sealed with AES-256-GCM under a key derived (HKDF-SHA256) from that spent refresh token: only
// someone who already holds the token can read what it was exchanged for.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";

const INFO = Buffer.from("refresh-guard journal v1");

export function tokenKey(refreshToken: string): string {
  return createHash("sha256").update(refreshToken, "utf8").digest("hex");
}

/** A short, non-reversible label for logs: the first 8 hex digits of the key. */
export function keyLabel(key: string): string {
  return key.slice(0, 8);
}

export interface Sealed {
  salt: string;
  iv: string;
  tag: string;
  ct: string;
}

function deriveKey(refreshToken: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", Buffer.from(refreshToken, "utf8"), salt, INFO, 32));
}

export function seal(refreshToken: string, aad: string, plaintext: string): Sealed {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", deriveKey(refreshToken, salt), iv);
  cipher.setAAD(Buffer.from(aad, "utf8"));
  const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return {
    salt: salt.toString("base64"),
    iv: iv.toString("base64"),
    tag: cipher.getAuthTag().toString("base64"),
    ct: ct.toString("base64"),
  };
}

/** Throws when the entry was sealed under another token, for another key, or was altered. */
export function open(refreshToken: string, aad: string, sealed: Sealed): string {
  const salt = Buffer.from(sealed.salt, "base64");
  const iv = Buffer.from(sealed.iv, "base64");
  const tag = Buffer.from(sealed.tag, "base64");
  if (salt.length !== 16 || iv.length !== 12 || tag.length !== 16) throw new Error("bad sealing parameters");
  const decipher = createDecipheriv("aes-256-gcm", deriveKey(refreshToken, salt), iv);
  decipher.setAAD(Buffer.from(aad, "utf8"));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(Buffer.from(sealed.ct, "base64")), decipher.final()]).toString("utf8");
}
