import { createHash } from "node:crypto";

import { describe, expect, it } from "vitest";

import { keyLabel, open, type Sealed, seal, tokenKey } from "../../src/store/token-crypto.ts";

const TOKEN = "rt_first-token-value";
const OTHER_TOKEN = "rt_second-token-value";
const AAD = "refresh-guard/v1/abc";
const PLAINTEXT = JSON.stringify({ access_token: "at", refresh_token: "rt_next" });

function flipByte(base64: string, index: number): string {
  const bytes = Buffer.from(base64, "base64");
  bytes[index] = (bytes[index] ?? 0) ^ 0x01;
  return bytes.toString("base64");
}

describe("seal / open", () => {
  it("opens what it sealed with the same token and aad", () => {
    const sealed = seal(TOKEN, AAD, PLAINTEXT);
    expect(open(TOKEN, AAD, sealed)).toBe(PLAINTEXT);
  });

  it("does not store the plaintext or the token in the sealed fields", () => {
    const sealed = seal(TOKEN, AAD, PLAINTEXT);
    const text = JSON.stringify(sealed);
    expect(text.includes("rt_next")).toBe(false);
    expect(text.includes(TOKEN)).toBe(false);
  });

  it("uses a fresh salt and iv for every seal", () => {
    const a = seal(TOKEN, AAD, PLAINTEXT);
    const b = seal(TOKEN, AAD, PLAINTEXT);
    expect(a.salt).not.toBe(b.salt);
    expect(a.iv).not.toBe(b.iv);
    expect(a.ct).not.toBe(b.ct);
  });

  it("fails to open with another token", () => {
    const sealed = seal(TOKEN, AAD, PLAINTEXT);
    expect(() => open(OTHER_TOKEN, AAD, sealed)).toThrow();
  });

  it("fails to open with another aad", () => {
    const sealed = seal(TOKEN, AAD, PLAINTEXT);
    expect(() => open(TOKEN, `${AAD}x`, sealed)).toThrow();
  });

  it("fails to open when one ciphertext byte is flipped", () => {
    const sealed = seal(TOKEN, AAD, PLAINTEXT);
    for (const index of [0, Buffer.from(sealed.ct, "base64").length - 1]) {
      expect(() => open(TOKEN, AAD, { ...sealed, ct: flipByte(sealed.ct, index) })).toThrow();
    }
  });

  it("fails to open when the tag, iv or salt is altered", () => {
    const sealed = seal(TOKEN, AAD, PLAINTEXT);
    const altered: Sealed[] = [
      { ...sealed, tag: flipByte(sealed.tag, 3) },
      { ...sealed, iv: flipByte(sealed.iv, 3) },
      { ...sealed, salt: flipByte(sealed.salt, 3) },
    ];
    for (const entry of altered) expect(() => open(TOKEN, AAD, entry)).toThrow();
  });

  it("rejects sealing parameters of the wrong length before decrypting", () => {
    const sealed = seal(TOKEN, AAD, PLAINTEXT);
    const short = Buffer.alloc(4).toString("base64");
    expect(() => open(TOKEN, AAD, { ...sealed, tag: short })).toThrow("bad sealing parameters");
    expect(() => open(TOKEN, AAD, { ...sealed, iv: short })).toThrow("bad sealing parameters");
    expect(() => open(TOKEN, AAD, { ...sealed, salt: short })).toThrow("bad sealing parameters");
  });
});

describe("tokenKey", () => {
  it("is the sha256 hex digest of the token", () => {
    expect(tokenKey(TOKEN)).toBe(createHash("sha256").update(TOKEN, "utf8").digest("hex"));
    expect(tokenKey(TOKEN)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("is equal for equal tokens and differs for different ones", () => {
    expect(tokenKey(["rt_", "first-token-value"].join(""))).toBe(tokenKey(TOKEN));
    expect(tokenKey(OTHER_TOKEN)).not.toBe(tokenKey(TOKEN));
  });

  it("keyLabel is the first 8 hex digits of the key", () => {
    const key = tokenKey(TOKEN);
    expect(keyLabel(key)).toBe(key.slice(0, 8));
    expect(keyLabel(key)).toHaveLength(8);
  });
});
