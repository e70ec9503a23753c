// The Codex CLI's own copy of a ChatGPT login, ~/.codex/auth.json:
// `{ tokens: { access_token, refresh_token, id_token, account_id }, last_refresh }`.
// Read like any sibling; and when the guard redeems the refresh token it found here, the successor
// is written back, so the Codex CLI does not go on with a spent token. OpenAI's own facts (the
// account claim) come in as `identityOf`, so this module and openai.ts do not import each other.
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import { dirname, join } from "node:path";

import { isRecord } from "../oauth/json.ts";
import { jwtExpiry, type TokenSet } from "../oauth/token-wire.ts";
import { readJsonFile } from "../siblings/read-json.ts";
import type { SiblingCredential, SiblingSource } from "../siblings/sibling-source.ts";
import type { Identity } from "./provider.ts";

/** The Codex CLI file's name under the home directory. */
export const CODEX_AUTH_FILE = ".codex/auth.json";

export function codexCliAuth(file: string, identityOf: (token: string) => Identity): SiblingSource {
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
      const spent = tokens.refresh_token;
      credential.onRedeemed = (successor) => writeCodexSuccessor(file, spent, successor, identityOf);
      return [credential];
    },
  };
}

/**
 * The guard redeemed the refresh token it read from the Codex CLI's auth.json: write the successor
 * back so the Codex CLI does not go on with a spent token. Same JSON shape (every other field kept),
 * `last_refresh` now, mode 0600, atomic replace (temp file in the same directory, then rename).
 * Left alone when the file no longer holds `spent` (the Codex CLI rotated it meanwhile).
 */
export async function writeCodexSuccessor(
  file: string,
  spent: string,
  successor: TokenSet,
  identityOf: (token: string) => Identity,
  now: () => number = Date.now,
): Promise<void> {
  const json = await readJsonFile(file, () => undefined);
  if (!isRecord(json) || !isRecord(json.tokens) || json.tokens.refresh_token !== spent) return;
  const tokens: Record<string, unknown> = { ...json.tokens, access_token: successor.accessToken, refresh_token: successor.refreshToken };
  if (successor.idToken !== undefined) tokens.id_token = successor.idToken;
  const account = identityOf(successor.accessToken).accountId ?? successor.accountId;
  if (account !== undefined && tokens.account_id !== undefined) tokens.account_id = account;
  const next = { ...json, tokens, last_refresh: new Date(now()).toISOString() };
  const temp = join(dirname(file), `.${randomBytes(6).toString("hex")}.refresh-guard.tmp`);
  const handle = await fsp.open(temp, "wx", 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(next, null, 2)}\n`);
    await handle.chmod(0o600);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fsp.rename(temp, file);
  } catch (error) {
    await fsp.rm(temp, { force: true });
    throw error;
  }
}
