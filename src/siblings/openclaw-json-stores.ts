// Sibling sources on an OpenClaw machine, read-only: every agent's auth-profiles.json under the
// state dir (plus OPENCLAW_AGENT_DIR's), and the Codex CLI's ~/.codex/auth.json. Torn, corrupt,
// oversized or special files are skipped with a warning that names the file, never its content.
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import { dirname, join } from "node:path";

import type { SiblingCredential, SiblingSource } from "./sibling-source.ts";
import { type TokenSet, isRecord, jwtAccountId, jwtExpiry } from "../oauth/token-wire.ts";

const MAX_STORE_BYTES = 4 * 1024 * 1024;

export interface OpenClawStoreOptions {
  stateDir: string;
  /** Extra agent dirs (e.g. OPENCLAW_AGENT_DIR) outside <stateDir>/agents. */
  agentDirs?: readonly string[];
  /** Provider ids whose OAuth profiles count as siblings. */
  providers: readonly string[];
}

/** Every agent's auth-profiles.json: `{ profiles: { id: { type: "oauth", provider, access, refresh, expires, accountId } } }`. */
export function openClawAgentStores(options: OpenClawStoreOptions): SiblingSource {
  return {
    name: "openclaw-agent-stores",
    async load(warn) {
      const files = new Set<string>();
      const agentsDir = join(options.stateDir, "agents");
      let agents: string[] = [];
      try {
        agents = await fsp.readdir(agentsDir);
      } catch {
        // No agents yet.
      }
      for (const agent of agents) files.add(join(agentsDir, agent, "agent", "auth-profiles.json"));
      for (const dir of options.agentDirs ?? []) files.add(join(dir, "auth-profiles.json"));
      const credentials: SiblingCredential[] = [];
      for (const file of files) {
        const json = await readJsonFile(file, warn);
        if (json === undefined) continue;
        const profiles = isRecord(json) && isRecord(json.profiles) ? json.profiles : null;
        if (profiles === null) {
          warn(`skipped ${file}: no "profiles" object`);
          continue;
        }
        for (const [id, profile] of Object.entries(profiles)) {
          if (!isRecord(profile) || profile.type !== "oauth") continue;
          if (typeof profile.provider !== "string" || !options.providers.includes(profile.provider)) continue;
          if (typeof profile.refresh !== "string" || profile.refresh === "") continue;
          const credential: SiblingCredential = { source: `${file}#${id}`, refreshToken: profile.refresh };
          if (typeof profile.access === "string") credential.accessToken = profile.access;
          if (typeof profile.expires === "number") credential.expiresAt = profile.expires;
          if (typeof profile.accountId === "string") credential.accountId = profile.accountId;
          credentials.push(credential);
        }
      }
      return credentials;
    },
  };
}

/** The Codex CLI's auth.json: `{ tokens: { access_token, refresh_token, id_token, account_id } }`. */
export function codexCliAuth(file: string): SiblingSource {
  return {
    name: "codex-cli-auth",
    async load(warn) {
      const json = await readJsonFile(file, warn, true);
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
      const accountId = typeof tokens.account_id === "string" ? tokens.account_id : credential.accessToken && jwtAccountId(credential.accessToken);
      if (accountId) credential.accountId = accountId;
      const spent = tokens.refresh_token;
      credential.onRedeemed = (successor) => writeCodexSuccessor(file, spent, successor);
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
export async function writeCodexSuccessor(file: string, spent: string, successor: TokenSet, now: () => number = Date.now): Promise<void> {
  const json = await readJsonFile(file, () => undefined, false);
  if (!isRecord(json) || !isRecord(json.tokens) || json.tokens.refresh_token !== spent) return;
  const tokens: Record<string, unknown> = { ...json.tokens, access_token: successor.accessToken, refresh_token: successor.refreshToken };
  if (successor.idToken !== undefined) tokens.id_token = successor.idToken;
  const account = successor.accountId ?? jwtAccountId(successor.accessToken);
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

/** Parsed JSON, or undefined (with a warning unless the file is simply absent). */
async function readJsonFile(file: string, warn: (message: string) => void, quietIfMissing = true): Promise<unknown> {
  let text: string;
  try {
    // Stores may be symlinks (shared setups); they are only read. Check before opening so a FIFO
    // or device cannot block or flood the reader.
    const stat = await fsp.stat(file);
    if (!stat.isFile()) {
      warn(`skipped ${file}: not a regular file`);
      return undefined;
    }
    if (stat.size > MAX_STORE_BYTES) {
      warn(`skipped ${file}: ${stat.size} bytes is larger than ${MAX_STORE_BYTES}`);
      return undefined;
    }
    text = await fsp.readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && quietIfMissing) return undefined;
    warn(`skipped ${file}: ${code ?? "unreadable"}`);
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    warn(`skipped ${file}: not valid JSON (torn or corrupt)`);
    return undefined;
  }
}
