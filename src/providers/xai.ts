// xAI (Grok subscription OAuth, OpenClaw 2026.9.6's bundled `xai` provider, auth choice `xai-oauth`).
// The host finds the token endpoint through https://auth.x.ai/.well-known/openid-configuration
// (today https://auth.x.ai/oauth2/token; a stored legacy /oauth/token is rediscovered) and accepts
// only https endpoints on x.ai or *.x.ai, so the guard matches the refresh POST to any of them and
// lets the discovery GET through untouched. Form body, client id shared with the Grok CLI. Every
// refresh rotates; a reused refresh token answers 400 {"error":"invalid_grant"} and revokes the
// grant, i.e. every token of the login: no sibling can recover it, only prevention helps.
// An answer without refresh_token (not rotated) keeps the old one on the host's side; the guard
// passes it through unjournaled, so the next refresh sends the same token again, as the host would.
// The Grok CLI keeps its own login; OpenClaw neither reads nor writes it (no sibling file).
import { jwtClaims } from "../oauth/token-wire.ts";
import type { Identity, Provider } from "./provider.ts";

export const XAI_TOKEN_URL = "https://auth.x.ai/oauth2/token";
export const INVALID_GRANT = "invalid_grant";

export const xai: Provider = {
  id: "xai",
  aliases: [],
  tokenUrl: XAI_TOKEN_URL,
  // Wherever discovery points (the host refuses anything but https on x.ai / *.x.ai).
  alsoTokenUrls: ["https://x.ai/*", "https://*.x.ai/*"],
  spentStatus: 400,
  spentCodes: [INVALID_GRANT],
  reusedCode: INVALID_GRANT,
  reuseRecoverable: false,
  identityOf: xaiIdentity,
  loginCommand: (providerId) => `openclaw models auth login --provider ${providerId}`,
  files: [],
  extraSiblingSources: () => [],
};

/** xAI's JWTs name the user in `sub` (the host stores it as accountId) and carry `email`. */
export function xaiIdentity(token: string): Identity {
  const claims = jwtClaims(token);
  if (claims === undefined) return {};
  const identity: Identity = {};
  if (typeof claims.sub === "string" && claims.sub !== "") {
    identity.accountId = claims.sub;
    identity.userId = claims.sub;
  }
  if (typeof claims.email === "string" && claims.email !== "") identity.email = claims.email.toLowerCase();
  return identity;
}
