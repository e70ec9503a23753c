// OpenAI (ChatGPT / Codex login): the token endpoint, its single-use refresh tokens and reuse
// answers, the account claim in its JWTs, and the Codex CLI's own copy in ~/.codex/auth.json.
// Everything refresh-guard knows about OpenAI lives here.

import { isRecord } from "../oauth/json.ts";
import { jwtClaims } from "../oauth/token-wire.ts";
import { CODEX_AUTH_FILE, codexCliAuth } from "./openai-codex-cli.ts";
import type { Identity, Provider } from "./provider.ts";

const OPENAI_TOKEN_URL = "https://auth.openai.com/oauth/token";
/** JWT claim holding `chatgpt_account_id` (and, in newer tokens, `chatgpt_user_id`). */
export const ACCOUNT_CLAIM = "https://api.openai.com/auth";
/** JWT claim holding the profile's email. */
const PROFILE_CLAIM = "https://api.openai.com/profile";

export const REUSED = "refresh_token_reused";
export const INVALIDATED = "refresh_token_invalidated";
export const EXPIRED = "refresh_token_expired";

export const openai: Provider = {
  id: "openai-codex",
  aliases: ["openai"],
  tokenUrl: OPENAI_TOKEN_URL,
  alsoTokenUrls: [],
  // 401 { error: { code: "refresh_token_reused" | … } }; a reuse kills only the token presented
  // (nothing public says the family goes too), so a sibling of the same identity can take over.
  spentStatus: 401,
  spentCodes: [REUSED, INVALIDATED, EXPIRED],
  reusedCode: REUSED,
  reuseRecoverable: true,
  identityOf: openAiIdentity,
  loginCommand: (providerId) => `openclaw models auth login --provider ${providerId}`,
  files: [
    {
      key: "codexAuthFile",
      homePath: CODEX_AUTH_FILE,
      // The Codex CLI keeps its login in $CODEX_HOME (default ~/.codex).
      envDir: { variable: "CODEX_HOME", file: "auth.json" },
      label: "codex cli auth",
      description:
        "The Codex CLI's credentials, read when looking for a sibling, and given the successor whenever the guard redeems a token this file holds; false to skip.",
    },
  ],
  extraSiblingSources: (context) => {
    const file = context.providerFiles.codexAuthFile;
    return file === null || file === undefined ? [] : [codexCliAuth(file, openAiIdentity)];
  },
};

export function openAiIdentity(token: string): Identity {
  const claims = jwtClaims(token);
  if (claims === undefined) return {};
  const identity: Identity = {};
  const auth = claims[ACCOUNT_CLAIM];
  if (isRecord(auth)) {
    if (typeof auth.chatgpt_account_id === "string" && auth.chatgpt_account_id !== "") identity.accountId = auth.chatgpt_account_id;
    const user = auth.chatgpt_user_id ?? auth.user_id;
    if (typeof user === "string" && user !== "") identity.userId = user;
  }
  if (identity.userId === undefined && typeof claims.sub === "string" && claims.sub !== "") identity.userId = claims.sub;
  const profile = claims[PROFILE_CLAIM];
  const email = isRecord(profile) ? profile.email : claims.email;
  if (typeof email === "string" && email !== "") identity.email = email.toLowerCase();
  return identity;
}
