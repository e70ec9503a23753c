import { describe, expect, it } from "vitest";

import { type SiblingCredential, accountOf, staticSiblingSource } from "../../src/siblings/sibling-source.ts";
import { ACCOUNT_CLAIM } from "../../src/oauth/token-wire.ts";

function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "none" })}.${part(claims)}.sig`;
}

describe("accountOf", () => {
  it("prefers the credential's own accountId", () => {
    const access = jwt({ [ACCOUNT_CLAIM]: { chatgpt_account_id: "acct-claim" } });
    expect(accountOf({ source: "s", refreshToken: "rt", accountId: "acct-field", accessToken: access })).toBe("acct-field");
  });

  it("falls back to the access token's account claim", () => {
    const access = jwt({ [ACCOUNT_CLAIM]: { chatgpt_account_id: "acct-claim" } });
    expect(accountOf({ source: "s", refreshToken: "rt", accessToken: access })).toBe("acct-claim");
    expect(accountOf({ source: "s", refreshToken: "rt", accountId: "", accessToken: access })).toBe("acct-claim");
  });

  it("is undefined when neither says", () => {
    expect(accountOf({ source: "s", refreshToken: "rt" })).toBeUndefined();
    expect(accountOf({ source: "s", refreshToken: "rt", accessToken: "opaque" })).toBeUndefined();
  });
});

describe("staticSiblingSource", () => {
  it("has its name and loads what the function returns at each call", async () => {
    let credentials: SiblingCredential[] = [{ source: "a", refreshToken: "rt_1" }];
    const source = staticSiblingSource("fixed", () => credentials);
    expect(source.name).toBe("fixed");
    expect(await source.load(() => undefined)).toEqual([{ source: "a", refreshToken: "rt_1" }]);
    credentials = [{ source: "b", refreshToken: "rt_2" }];
    expect(await source.load(() => undefined)).toEqual([{ source: "b", refreshToken: "rt_2" }]);
  });
});
