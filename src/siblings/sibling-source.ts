// Where recovery looks for a credential that a sibling already obtained when a refresh token turns
// out to be spent outside the guard. A source reads; only a source that owns a file written by a
// tool that must keep working (the Codex CLI) may write a successor back to it.

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
