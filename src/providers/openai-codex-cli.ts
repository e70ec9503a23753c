// The Codex CLI's own copy of a ChatGPT login, `$CODEX_HOME/auth.json` (default ~/.codex/auth.json):
// `{ tokens: { access_token, refresh_token, id_token, account_id }, last_refresh }`.
// Read like any sibling; and whenever the guard redeems a refresh token this file still holds, the
// successor is written here in the same critical section, so the Codex CLI never goes on with a
// spent token (whichever of the two rotates the shared login). OpenAI's own facts (the account
// claim) come in as `identityOf`, so this module and openai.ts do not import each other.
import { randomBytes } from "node:crypto";
import { constants, promises as fsp, type Stats } from "node:fs";
import { dirname, join } from "node:path";

import { isRecord } from "../oauth/json.ts";
import { jwtExpiry, type TokenSet } from "../oauth/token-wire.ts";
import { MAX_STORE_BYTES, readJsonFile } from "../siblings/read-json.ts";
import type { HandBack, SiblingCredential, SiblingSource } from "../siblings/sibling-source.ts";
import type { Identity } from "./provider.ts";

/** The Codex CLI file's name under the home directory (its default CODEX_HOME is ~/.codex). */
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
      return [credential];
    },
    handBack: (spent, successor) => writeCodexSuccessor(file, spent, successor, identityOf),
  };
}

export interface WriteBackOptions {
  now?: () => number;
  /** Test seam: runs after the new content is written to the temp file, before the re-check and rename. */
  beforeRename?: () => Promise<void> | void;
}

interface Snapshot {
  stat: Stats;
  json: unknown;
}

/** The file's regular-file stat and parsed JSON, read without blocking on a FIFO; null when absent or unusable. */
async function snapshot(path: string): Promise<Snapshot | null> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.size > MAX_STORE_BYTES) return null;
    const text = await handle.readFile("utf8");
    try {
      return { stat, json: JSON.parse(text) };
    } catch {
      return null;
    }
  } finally {
    await handle.close();
  }
}

function holds(json: unknown, spent: string): json is { tokens: Record<string, unknown> } & Record<string, unknown> {
  return isRecord(json) && isRecord(json.tokens) && json.tokens.refresh_token === spent;
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/**
 * Writes `successor` into the Codex CLI's auth.json if it still holds `spent`. Same JSON shape
 * (every other field kept), `last_refresh` now. Safe against what else touches the file:
 * - a symlinked auth.json is written through to its target (the link stays a link);
 * - the original owner and mode are kept (a write-back by root leaves the user's file the user's);
 * - right before the rename the file is checked again (same inode, size and mtime, still the spent
 *   token): a `codex login` or a Codex CLI refresh that landed meanwhile is left alone ("left").
 */
export async function writeCodexSuccessor(
  file: string,
  spent: string,
  successor: TokenSet,
  identityOf: (token: string) => Identity,
  options: WriteBackOptions = {},
): Promise<HandBack> {
  const now = options.now ?? Date.now;
  let target: string;
  try {
    target = await fsp.realpath(file);
  } catch {
    return { kind: "not-held" };
  }
  const before = await snapshot(target);
  if (before === null || !holds(before.json, spent)) return { kind: "not-held" };
  const json = before.json;
  const tokens: Record<string, unknown> = { ...json.tokens, access_token: successor.accessToken, refresh_token: successor.refreshToken };
  if (successor.idToken !== undefined) tokens.id_token = successor.idToken;
  const account = identityOf(successor.accessToken).accountId ?? successor.accountId;
  if (account !== undefined && tokens.account_id !== undefined) tokens.account_id = account;
  const next = { ...json, tokens, last_refresh: new Date(now()).toISOString() };
  const mode = before.stat.mode & 0o7777;
  const temp = join(dirname(target), `.${randomBytes(6).toString("hex")}.refresh-guard.tmp`);
  const handle = await fsp.open(temp, "wx", 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(next, null, 2)}\n`);
    // The owner's file stays the owner's (only root can give it away; for anyone else it already is).
    if (process.getuid?.() === 0 && (before.stat.uid !== 0 || before.stat.gid !== 0)) await handle.chown(before.stat.uid, before.stat.gid);
    await handle.chmod(mode);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fsp.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await options.beforeRename?.();
    const current = await snapshot(target);
    if (current === null || !sameFile(before.stat, current.stat) || !holds(current.json, spent)) {
      await fsp.rm(temp, { force: true });
      return { kind: "left", reason: `${file} changed since it was read (a codex login or refresh landed); left as it is` };
    }
    await fsp.rename(temp, target);
  } catch (error) {
    await fsp.rm(temp, { force: true });
    throw error;
  }
  return { kind: "written" };
}
