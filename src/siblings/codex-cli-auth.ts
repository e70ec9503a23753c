// The Codex CLI's own copy of a ChatGPT login, ~/.codex/auth.json:
// `{ tokens: { access_token, refresh_token, id_token, account_id }, last_refresh }`.
import { isRecord } from "../oauth/json.ts";
import { jwtExpiry } from "../oauth/token-wire.ts";
import { readJsonFile } from "./read-json.ts";
import type { SiblingCredential, SiblingSource } from "./sibling-source.ts";

export function codexCliAuth(file: string): SiblingSource {
  return {
    name: "codex-cli-auth",
    async load(warn) {
      const json = await readJsonFile(file, warn);
      if (json === undefined) return [];
      const tokens = isRecord(json) && isRecord(json.tokens) ? json.tokens : null;
      if (tokens === null || typeof tokens.refresh_token !== "string" || tokens.refresh_token === "") return [];
      const credential: SiblingCredential = { source: file, refreshToken: tokens.refresh_token };
      if (typeof tokens.access_token === "string") {
        credential.accessToken = tokens.access_token;
        const expiresAt = jwtExpiry(tokens.access_token);
        if (expiresAt !== undefined) credential.expiresAt = expiresAt;
      }
      if (typeof tokens.id_token === "string") credential.idToken = tokens.id_token;
      if (typeof tokens.account_id === "string" && tokens.account_id !== "") credential.accountId = tokens.account_id;
      return [credential];
    },
  };
}
