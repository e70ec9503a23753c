// Where recovery looks for a credential that a sibling already obtained when a refresh token turns
// out to be spent outside the guard. A source reads; only a source that owns a file written by a
// tool that must keep working (the Codex CLI) may write a successor back to it (handBack).
import type { TokenSet } from "../oauth/token-wire.ts";

export interface SiblingCredential {
  /** Where it came from, for logs: a path or a name, never a token. */
  source: string;
  /** The account the store declares (its tokens' claims take precedence). */
  accountId?: string;
  /** The email the store records. */
  email?: string;
  accessToken?: string;
  refreshToken: string;
  idToken?: string;
  /** Access-token expiry, ms since epoch. */
  expiresAt?: number;
  /**
   * Set on a copy the host has fenced while refreshing it (2026.6+ write a digest of the refresh
   * token in its place): never usable, but when it says it was made from the token being refreshed
   * it tells whose token that is (its account and email), which the token itself does not.
   * `refreshToken` then holds the fence value, not a token.
   */
  fencedFrom?: (refreshToken: string) => boolean;
}

/** What a hand-back did: wrote the successor, found the spent token not held, or left a changed file alone. */
export type HandBack = { kind: "written" } | { kind: "not-held" } | { kind: "left"; reason: string };

export interface SiblingSource {
  readonly name: string;
  /** Every credential it holds now. Unreadable parts are skipped, reported through `warn`. */
  load(warn: (message: string) => void): Promise<SiblingCredential[]>;
  /**
   * Called in the critical section of every redemption the guard makes (still holding the lock):
   * if this source's file still holds `spent`, it writes `successor` in its place, so a tool that
   * owns a copy of the login (the Codex CLI) never goes on with a spent token. Only sources of
   * files another tool owns and expects refreshed set it; OpenClaw's own stores are never written.
   */
  handBack?(spent: string, successor: TokenSet): Promise<HandBack>;
}

/** A fixed list, for tests and embedders. */
export function staticSiblingSource(name: string, credentials: () => SiblingCredential[]): SiblingSource {
  return { name, load: async () => credentials() };
}
