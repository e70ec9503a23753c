// The OAuth 2.0 token endpoint's wire format, provider-neutral: refresh requests (form or JSON),
// success responses, error codes, and reading a JWT's claims. No I/O here; what a claim means for
// one provider lives in src/providers/.
import { isRecord } from "./json.ts";

export { isRecord };

/** What a redemption produced: the successor credential and the response's other fields. */
export interface TokenSet {
  accessToken: string;
  refreshToken: string;
  idToken?: string;
  /** Absolute expiry of the access token, ms since epoch. */
  expiresAt: number;
  /** False when the endpoint said nothing of the expiry (no expires_in, opaque access token): expiresAt is then "now". */
  expiryKnown?: false;
  accountId?: string;
  /** Other fields of the endpoint's JSON (token_type, scope, …), replayed as they were. */
  extra: Record<string, unknown>;
}

export interface TokenRequest {
  refreshToken: string;
  format: "form" | "json";
  /** The same request body with another refresh token in it. */
  withRefreshToken(refreshToken: string): string;
}

/** Reads a refresh-token grant from a request body; null for anything else (passed through). */
export function parseTokenRequest(body: string, contentType: string | null): TokenRequest | null {
  const trimmed = body.trimStart();
  const looksJson = (contentType ?? "").includes("json") || trimmed.startsWith("{");
  if (looksJson) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return null;
    }
    if (!isRecord(parsed) || parsed.grant_type !== "refresh_token" || typeof parsed.refresh_token !== "string") {
      return null;
    }
    const fields = parsed;
    return {
      refreshToken: parsed.refresh_token,
      format: "json",
      withRefreshToken: (token) => JSON.stringify({ ...fields, refresh_token: token }),
    };
  }
  const params = new URLSearchParams(body);
  const refreshToken = params.get("refresh_token");
  if (params.get("grant_type") !== "refresh_token" || !refreshToken) return null;
  return {
    refreshToken,
    format: "form",
    withRefreshToken: (token) => {
      const next = new URLSearchParams(body);
      next.set("refresh_token", token);
      return next.toString();
    },
  };
}

/** A complete success has an access token and a refresh token (the expiry from expires_in, else the JWT); anything less is null. */
export function parseTokenResponse(json: unknown, now: number): TokenSet | null {
  if (!isRecord(json)) return null;
  const { access_token, refresh_token, id_token, expires_in, ...extra } = json;
  if (typeof access_token !== "string" || access_token === "") return null;
  if (typeof refresh_token !== "string" || refresh_token === "") return null;
  // The access token's own lifetime bounds what expires_in claims (a huge expires_in must not keep
  // an old token "fresh" in the journal). Its lifetime is exp - iat, which no clock skew between
  // this machine and the issuer changes; without iat, exp itself.
  const exp = jwtExpiry(access_token);
  let expiresAt: number | undefined;
  if (typeof expires_in === "number" && Number.isFinite(expires_in) && expires_in >= 0) {
    const iat = jwtIssuedAt(access_token);
    const bound = exp === undefined ? Number.POSITIVE_INFINITY : iat === undefined ? exp : now + Math.max(0, exp - iat);
    expiresAt = Math.min(now + expires_in * 1000, bound);
  } else {
    expiresAt = exp;
  }
  // Expiry unknown: still a complete redemption worth journaling (copies must find the successor
  // refresh token), but its access token is never handed out from the journal.
  const set: TokenSet = { accessToken: access_token, refreshToken: refresh_token, expiresAt: expiresAt ?? now, extra };
  if (expiresAt === undefined) set.expiryKnown = false;
  if (typeof id_token === "string") set.idToken = id_token;
  return set;
}

/** The JSON body a host expects from the endpoint, with expires_in counted from `now`. */
export function tokenResponseBody(set: TokenSet, now: number): Record<string, unknown> {
  const body: Record<string, unknown> = {
    ...set.extra,
    access_token: set.accessToken,
    refresh_token: set.refreshToken,
  };
  if (set.expiryKnown !== false) body.expires_in = Math.max(0, Math.floor((set.expiresAt - now) / 1000));
  if (set.idToken !== undefined) body.id_token = set.idToken;
  return body;
}

export function tokenResponse(set: TokenSet, now: number): Response {
  return new Response(JSON.stringify(tokenResponseBody(set, now)), {
    status: 200,
    headers: { "content-type": "application/json" },
  });
}

/** The OAuth error code of an error body: `error.code`, else `error` when a string, else `code`. */
export function readErrorCode(bodyText: string): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch {
    return undefined;
  }
  if (!isRecord(json)) return undefined;
  const { error, code } = json;
  if (isRecord(error) && typeof error.code === "string") return error.code;
  if (typeof error === "string") return error;
  if (typeof code === "string") return code;
  return undefined;
}

/** The claims of a JWT (unverified: used only to read expiry and identity of a token we were handed). */
export function jwtClaims(jwt: string): Record<string, unknown> | undefined {
  const part = jwt.split(".")[1];
  if (part === undefined) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return isRecord(claims) ? claims : undefined;
  } catch {
    return undefined;
  }
}

function jwtIssuedAt(jwt: string): number | undefined {
  const iat = jwtClaims(jwt)?.iat;
  return typeof iat === "number" && Number.isFinite(iat) ? iat * 1000 : undefined;
}

export function jwtExpiry(jwt: string): number | undefined {
  const exp = jwtClaims(jwt)?.exp;
  return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
}
