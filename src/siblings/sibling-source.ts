// Where recovery looks for a credential that a sibling already obtained when a refresh token turns
// out to be spent outside the guard. A source reads; only a source that owns a file written by a
// tool that must keep working (the Codex CLI) may write a successor back to it.
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
   * Called once the guard has redeemed this credential's refresh token (or found its successor in
   * the journal): the source may hand the successor back to the tool it belongs to, which would
   * otherwise hold a spent token. Only sources of files another tool owns and expects refreshed
   * (the Codex CLI's auth.json) set it; OpenClaw's own stores are never written.
   */
  onRedeemed?: (successor: TokenSet) => Promise<void>;
  /**
   * Set on a copy the host has fenced while refreshing it (2026.6+ write a digest of the refresh
   * token in its place): never usable, but when it says it was made from the token being refreshed
   * it tells whose token that is (its account and email), which the token itself does not.
   * `refreshToken` then holds the fence value, not a token.
   */
  fencedFrom?: (refreshToken: string) => boolean;
}

export interface SiblingSource {
  readonly name: string;
  /** Every credential it holds now. Unreadable parts are skipped, reported through `warn`. */
  load(warn: (message: string) => void): Promise<SiblingCredential[]>;
}

/** A fixed list, for tests and embedders. */
export function staticSiblingSource(name: string, credentials: () => SiblingCredential[]): SiblingSource {
  return { name, load: async () => credentials() };
}
