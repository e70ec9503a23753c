// The peer: OpenClaw's own coordination, with the real host's lock code and options.
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { ensureHost } from "../test/support/install-host.ts";
import type { LockOptions, PeerConfig } from "../test/support/simulated-agent.ts";
import { progress } from "./plan.ts";

// The peer is OpenClaw's own coordination since 2026.4.20, with the real host's lock code: the
// installed host's public `openclaw/plugin-sdk/file-lock` (an O_EXCL `<file>.lock` holding pid and
// creation time; stale when that pid is dead or the lock is older than `stale`; retries with
// randomised exponential back-off). Its options are the host's (2026.5.7,
// dist/store-CSOk8Bno.js: OAUTH_REFRESH_LOCK_OPTIONS = { retries: { retries: 20, factor: 2,
// minTimeout: 100, maxTimeout: 1e4, randomize: true }, stale: 18e4 } and AUTH_STORE_LOCK_OPTIONS =
// { retries: { retries: 10, … same back-off }, stale: 3e4 }; the same values in 2026.6.6, 2026.7.35
// and 2026.9.6). dist/oauth-DoxNzd4-.js doRefreshOAuthTokenWithLock takes the refresh lock
// (`<stateDir>/locks/oauth-refresh/sha256-…`), then the store's lock, re-reads the store, returns
// the stored credential unless it expires within DEFAULT_OAUTH_REFRESH_MARGIN_MS (300 s), else
// refreshes and saves the store. Note: the host's lock is not proper-lockfile (which is installed
// but not used for it).

export const PEER_HOST_VERSION = "2026.5.7";
export const OAUTH_REFRESH_LOCK_OPTIONS: LockOptions = {
  retries: { retries: 20, factor: 2, minTimeout: 100, maxTimeout: 10_000, randomize: true },
  stale: 180_000,
};
const AUTH_STORE_LOCK_OPTIONS: LockOptions = {
  retries: { retries: 10, factor: 2, minTimeout: 100, maxTimeout: 10_000, randomize: true },
  stale: 30_000,
};
export const PEER_PROFILE_ID = "openai-codex:default";
const PEER_MARGIN_MS = 300_000;

/** The peer's paths in `stateDir`: the host's refresh lock and the shared store (auth-profiles.json). */
export async function peerConfig(stateDir: string): Promise<PeerConfig> {
  const host = await peerHost();
  return {
    lockModule: host.lockModule,
    // resolveOAuthRefreshLockPath: sha256 of provider, NUL, profile id.
    refreshLockPath: join(
      stateDir,
      "locks",
      "oauth-refresh",
      `sha256-${createHash("sha256").update(`openai-codex\0${PEER_PROFILE_ID}`).digest("hex")}`,
    ),
    refreshLock: OAUTH_REFRESH_LOCK_OPTIONS,
    storePath: join(stateDir, "agents", "main", "agent", "auth-profiles.json"),
    storeLock: AUTH_STORE_LOCK_OPTIONS,
    profileId: PEER_PROFILE_ID,
    marginMs: PEER_MARGIN_MS,
  };
}

/** The shared store holding the profile's credential, expired (a refresh is due) or not. */
export async function writeStore(storePath: string, refresh: string, expired: boolean): Promise<void> {
  const credential = {
    type: "oauth",
    provider: "openai-codex",
    access: "expired",
    refresh,
    expires: expired ? Date.now() - 1000 : Date.now() + 3600_000,
  };
  await writeFile(storePath, JSON.stringify({ version: 1, profiles: { [PEER_PROFILE_ID]: credential } }, null, 2));
}

/** The installed host whose lock module the peer uses (installed on first use, then reused). */
let peerHostInstall: Promise<{ lockModule: string }> | null = null;
export function peerHost(): Promise<{ lockModule: string }> {
  peerHostInstall ??= (async () => {
    const install = await ensureHost(PEER_HOST_VERSION, { log: progress });
    const lockModule = join(install.dir, "node_modules", "openclaw", "dist", "plugin-sdk", "file-lock.js");
    await readFile(lockModule);
    return { lockModule };
  })();
  return peerHostInstall;
}
