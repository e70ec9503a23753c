// Anthropic (Claude Pro/Max OAuth), provider id `anthropic`. OpenClaw 2026.4.x/5.x refresh it
// through pi-ai's refreshAnthropicToken: a bare globalThis.fetch POST of a JSON body
// { grant_type: "refresh_token", client_id, refresh_token } to https://platform.claude.com/v1/oauth/token
// (older builds: https://console.anthropic.com/v1/oauth/token). 2026.9.6 offers no new Anthropic
// OAuth login but keeps the same refresh for profiles that exist. Refresh tokens are single use; a
// reuse revokes the chain, and the answer is 400 {"error":"invalid_grant","error_description":
// "Refresh token not found or invalid"} — the same as for an expired token, so no distinct "reused"
// code exists. The tokens are opaque (sk-ant-oat01-…): nothing in them names the user, so recovery
// could never prove a sibling is the same login, and with the family revoked there is nothing to
// recover anyway. The Claude CLI's own file (~/.claude/.credentials.json) is only read by OpenClaw
// (an externally managed profile it never refreshes): not a sibling the guard writes to.
// An answer without refresh_token passes through unjournaled (the hosts then fail on it themselves).
import type { Provider } from "./provider.ts";

export const ANTHROPIC_TOKEN_URL = "https://platform.claude.com/v1/oauth/token";
export const ANTHROPIC_CONSOLE_TOKEN_URL = "https://console.anthropic.com/v1/oauth/token";
export const INVALID_GRANT = "invalid_grant";

export const anthropic: Provider = {
  id: "anthropic",
  aliases: [],
  tokenUrl: ANTHROPIC_TOKEN_URL,
  alsoTokenUrls: [ANTHROPIC_CONSOLE_TOKEN_URL],
  spentStatus: 400,
  spentCodes: [INVALID_GRANT],
  reusedCode: INVALID_GRANT,
  reuseRecoverable: false,
  // Opaque tokens: no identity, so recovery adopts nothing.
  identityOf: () => ({}),
  loginCommand: (providerId) => `openclaw models auth login --provider ${providerId}`,
  files: [],
  extraSiblingSources: () => [],
};
