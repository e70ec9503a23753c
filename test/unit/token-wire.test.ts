import { describe, expect, it } from "vitest";
import {
  isRecord,
  jwtExpiry,
  parseTokenRequest,
  parseTokenResponse,
  readErrorCode,
  type TokenSet,
  tokenResponse,
  tokenResponseBody,
} from "../../src/oauth/token-wire.ts";
import { ACCOUNT_CLAIM, EXPIRED, INVALIDATED, openAiIdentity, REUSED } from "../../src/providers/openai.ts";

/** OpenAI's answer to a reused refresh token, as a spent marker stores it. */
const reusedBody = () =>
  JSON.stringify({
    error: {
      message: "Your refresh token has already been used to generate a new access token. Please try signing in again.",
      type: "invalid_request_error",
      param: null,
      code: REUSED,
    },
  });
const jwtAccountId = (token: string) => openAiIdentity(token).accountId;

const NOW = 1_800_000_000_000;

function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "none", typ: "JWT" })}.${part(claims)}.signature`;
}

describe("parseTokenRequest", () => {
  it("reads a refresh-token grant from a form body", () => {
    const body = "grant_type=refresh_token&refresh_token=rt_old&client_id=app_1&scope=openid+profile";
    const request = parseTokenRequest(body, "application/x-www-form-urlencoded");
    expect(request).not.toBeNull();
    expect(request?.format).toBe("form");
    expect(request?.refreshToken).toBe("rt_old");
  });

  it("reads a form body when no content-type is given", () => {
    const request = parseTokenRequest("grant_type=refresh_token&refresh_token=rt_old", null);
    expect(request?.format).toBe("form");
    expect(request?.refreshToken).toBe("rt_old");
  });

  it("reads a refresh-token grant from a JSON body", () => {
    const body = JSON.stringify({ grant_type: "refresh_token", refresh_token: "rt_old", client_id: "app_1" });
    const request = parseTokenRequest(body, "application/json");
    expect(request?.format).toBe("json");
    expect(request?.refreshToken).toBe("rt_old");
  });

  it("detects a JSON body by its opening brace even without a JSON content-type", () => {
    const body = ` ${JSON.stringify({ grant_type: "refresh_token", refresh_token: "rt_old" })}`;
    const request = parseTokenRequest(body, "text/plain");
    expect(request?.format).toBe("json");
    expect(request?.refreshToken).toBe("rt_old");
  });

  it("returns null for other grants, missing tokens and unparseable JSON", () => {
    expect(parseTokenRequest("grant_type=authorization_code&code=abc&refresh_token=rt", null)).toBeNull();
    expect(parseTokenRequest("grant_type=refresh_token", null)).toBeNull();
    expect(parseTokenRequest("grant_type=refresh_token&refresh_token=", null)).toBeNull();
    expect(parseTokenRequest(JSON.stringify({ grant_type: "client_credentials", refresh_token: "rt" }), "application/json")).toBeNull();
    expect(parseTokenRequest(JSON.stringify({ grant_type: "refresh_token", refresh_token: 42 }), "application/json")).toBeNull();
    expect(parseTokenRequest(JSON.stringify([{ grant_type: "refresh_token" }]), "application/json")).toBeNull();
    expect(parseTokenRequest("{not json", "application/json")).toBeNull();
    expect(parseTokenRequest("", null)).toBeNull();
  });

  it("withRefreshToken swaps only the refresh token in a form body", () => {
    const body = "grant_type=refresh_token&refresh_token=rt_old&client_id=app_1&scope=openid+profile";
    const request = parseTokenRequest(body, "application/x-www-form-urlencoded");
    const rewritten = new URLSearchParams(request!.withRefreshToken("rt_new"));
    expect(rewritten.get("refresh_token")).toBe("rt_new");
    expect(rewritten.get("grant_type")).toBe("refresh_token");
    expect(rewritten.get("client_id")).toBe("app_1");
    expect(rewritten.get("scope")).toBe("openid profile");
    expect([...rewritten.keys()]).toEqual(["grant_type", "refresh_token", "client_id", "scope"]);
  });

  it("withRefreshToken swaps only the refresh token in a JSON body", () => {
    const fields = { grant_type: "refresh_token", refresh_token: "rt_old", client_id: "app_1", nested: { a: 1 } };
    const request = parseTokenRequest(JSON.stringify(fields), "application/json");
    expect(JSON.parse(request!.withRefreshToken("rt_new"))).toEqual({ ...fields, refresh_token: "rt_new" });
  });

  it("withRefreshToken leaves the parsed request reusable for several tokens", () => {
    const request = parseTokenRequest("grant_type=refresh_token&refresh_token=rt_old&client_id=x", null)!;
    request.withRefreshToken("rt_a");
    expect(new URLSearchParams(request.withRefreshToken("rt_b")).get("refresh_token")).toBe("rt_b");
    expect(request.refreshToken).toBe("rt_old");
  });
});

describe("parseTokenResponse", () => {
  it("needs an access token, a refresh token and expires_in; expiry counts from now", () => {
    const set = parseTokenResponse({ access_token: "at", refresh_token: "rt", expires_in: 3600 }, NOW);
    expect(set).toEqual({ accessToken: "at", refreshToken: "rt", expiresAt: NOW + 3_600_000, extra: {} });
  });

  it("falls back to the access token's JWT exp when expires_in is missing", () => {
    const exp = Math.floor(NOW / 1000) + 900;
    const set = parseTokenResponse({ access_token: jwt({ exp }), refresh_token: "rt" }, NOW);
    expect(set?.expiresAt).toBe(exp * 1000);
  });

  it("falls back to the JWT exp when expires_in is not a usable number", () => {
    const exp = Math.floor(NOW / 1000) + 900;
    for (const expiresIn of ["3600", -5, Number.NaN, null]) {
      const set = parseTokenResponse({ access_token: jwt({ exp }), refresh_token: "rt", expires_in: expiresIn }, NOW);
      expect(set?.expiresAt).toBe(exp * 1000);
    }
  });

  it("returns null without an access token or a refresh token", () => {
    expect(parseTokenResponse({ refresh_token: "rt", expires_in: 60 }, NOW)).toBeNull();
    expect(parseTokenResponse({ access_token: "", refresh_token: "rt", expires_in: 60 }, NOW)).toBeNull();
    expect(parseTokenResponse({ access_token: "at", expires_in: 60 }, NOW)).toBeNull();
    expect(parseTokenResponse({ access_token: "at", refresh_token: "", expires_in: 60 }, NOW)).toBeNull();
    expect(parseTokenResponse({ access_token: "at", refresh_token: 7, expires_in: 60 }, NOW)).toBeNull();
  });

  it("returns null for non-objects", () => {
    for (const value of [null, undefined, "x", 42, [], [{ access_token: "at" }]]) {
      expect(parseTokenResponse(value, NOW)).toBeNull();
    }
  });

  it("keeps the id token and every other field (identity is the provider's to read)", () => {
    const access = jwt({ exp: NOW / 1000 + 3600, [ACCOUNT_CLAIM]: { chatgpt_account_id: "acct-9" } });
    const set = parseTokenResponse(
      { access_token: access, refresh_token: "rt", id_token: "idt", expires_in: 60, token_type: "Bearer", scope: "openid" },
      NOW,
    );
    expect(set).toEqual({
      accessToken: access,
      refreshToken: "rt",
      idToken: "idt",
      expiresAt: NOW + 60_000,
      extra: { token_type: "Bearer", scope: "openid" },
    });
  });

  it("bounds expires_in by the access token's own lifetime (exp - iat, whatever this machine's clock says)", () => {
    const access = jwt({ exp: NOW / 1000 + 600 });
    expect(parseTokenResponse({ access_token: access, refresh_token: "rt", expires_in: 10 ** 9 }, NOW)?.expiresAt).toBe(NOW + 600_000);
    // Issued by a clock two hours behind ours: still a 10-minute token, not an expired one.
    const skewed = jwt({ iat: NOW / 1000 - 7200, exp: NOW / 1000 - 7200 + 600 });
    expect(parseTokenResponse({ access_token: skewed, refresh_token: "rt", expires_in: 10 ** 9 }, NOW)?.expiresAt).toBe(NOW + 600_000);
    expect(parseTokenResponse({ access_token: skewed, refresh_token: "rt", expires_in: 60 }, NOW)?.expiresAt).toBe(NOW + 60_000);
  });

  it("keeps a 200 with no expiry at all (opaque access token) as a redemption whose access token is never reused", () => {
    const set = parseTokenResponse({ access_token: "opaque", refresh_token: "rt" }, NOW);
    expect(set).toMatchObject({ accessToken: "opaque", refreshToken: "rt", expiresAt: NOW, expiryKnown: false });
    expect(tokenResponseBody(set!, NOW)).not.toHaveProperty("expires_in");
  });
});

describe("tokenResponseBody", () => {
  const set: TokenSet = {
    accessToken: "at",
    refreshToken: "rt",
    idToken: "idt",
    expiresAt: NOW + 3_600_000,
    extra: { token_type: "Bearer", scope: "openid" },
  };

  it("recomputes expires_in from now", () => {
    expect(tokenResponseBody(set, NOW).expires_in).toBe(3600);
    expect(tokenResponseBody(set, NOW + 600_000).expires_in).toBe(3000);
    expect(tokenResponseBody(set, NOW + 1_500).expires_in).toBe(3598);
  });

  it("never reports a negative expires_in", () => {
    expect(tokenResponseBody(set, NOW + 7_200_000).expires_in).toBe(0);
  });

  it("replays the extra fields and the tokens", () => {
    expect(tokenResponseBody(set, NOW)).toEqual({
      token_type: "Bearer",
      scope: "openid",
      access_token: "at",
      refresh_token: "rt",
      id_token: "idt",
      expires_in: 3600,
    });
  });

  it("lets no extra field override the tokens", () => {
    const sneaky: TokenSet = { ...set, extra: { access_token: "other", refresh_token: "other", expires_in: 99999 } };
    const body = tokenResponseBody(sneaky, NOW);
    expect(body.access_token).toBe("at");
    expect(body.refresh_token).toBe("rt");
    expect(body.expires_in).toBe(3600);
  });

  it("omits id_token when the set has none", () => {
    const { idToken: _unused, ...withoutId } = set;
    expect("id_token" in tokenResponseBody(withoutId, NOW)).toBe(false);
  });

  it("tokenResponse is a 200 JSON response of that body", async () => {
    const response = tokenResponse(set, NOW);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.json()).toEqual(tokenResponseBody(set, NOW));
  });

  it("round-trips through parseTokenResponse", () => {
    const parsed = parseTokenResponse(tokenResponseBody(set, NOW), NOW);
    expect(parsed).toEqual(set);
  });
});

describe("readErrorCode", () => {
  it("reads error.code", () => {
    expect(readErrorCode(reusedBody())).toBe(REUSED);
    expect(readErrorCode(JSON.stringify({ error: { code: INVALIDATED, message: "m" }, code: "other" }))).toBe(INVALIDATED);
  });

  it("reads error when it is a string", () => {
    expect(readErrorCode(JSON.stringify({ error: "invalid_grant", error_description: "x" }))).toBe("invalid_grant");
  });

  it("reads a top-level code", () => {
    expect(readErrorCode(JSON.stringify({ code: EXPIRED }))).toBe(EXPIRED);
    expect(readErrorCode(JSON.stringify({ error: { message: "no code" }, code: EXPIRED }))).toBe(EXPIRED);
  });

  it("returns undefined for garbage", () => {
    for (const text of [
      "",
      "<html>503</html>",
      "{",
      "null",
      "42",
      '"refresh_token_reused"',
      "[]",
      '{"error":{"code":5}}',
      '{"error":7}',
      "{}",
    ]) {
      expect(readErrorCode(text)).toBeUndefined();
    }
  });
});

describe("JWT claims", () => {
  it("jwtAccountId reads the OpenAI account claim", () => {
    expect(jwtAccountId(jwt({ [ACCOUNT_CLAIM]: { chatgpt_account_id: "acct-1" } }))).toBe("acct-1");
    expect(jwtAccountId(jwt({ [ACCOUNT_CLAIM]: { chatgpt_account_id: 5 } }))).toBeUndefined();
    expect(jwtAccountId(jwt({ sub: "x" }))).toBeUndefined();
    expect(jwtAccountId("not-a-jwt")).toBeUndefined();
    expect(jwtAccountId("a.%%%.c")).toBeUndefined();
  });

  it("jwtExpiry reads exp in milliseconds", () => {
    expect(jwtExpiry(jwt({ exp: 1_700_000_000 }))).toBe(1_700_000_000_000);
    expect(jwtExpiry(jwt({ exp: "soon" }))).toBeUndefined();
    expect(jwtExpiry("opaque")).toBeUndefined();
  });

  it("isRecord accepts plain objects only", () => {
    expect(isRecord({})).toBe(true);
    expect(isRecord([])).toBe(false);
    expect(isRecord(null)).toBe(false);
    expect(isRecord("x")).toBe(false);
  });
});
