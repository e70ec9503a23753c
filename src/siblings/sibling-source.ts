// Where recovery looks for a credential that a sibling already obtained when a refresh token turns
// out to be spent outside the guard. A source only reads; it never writes a credential.
import { jwtAccountId } from "../oauth/token-wire.ts";

export interface SiblingCredential {
  /** Where it came from, for logs: a path or a name, never a token. */
  source: string;
  accountId?: string;
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

/** The credential's account: its own field, else the access token's claim. */
export function accountOf(credential: SiblingCredential): string | undefined {
  if (credential.accountId) return credential.accountId;
  return credential.accessToken ? jwtAccountId(credential.accessToken) : undefined;
}

/** A fixed list, for tests and embedders. */
export function staticSiblingSource(name: string, credentials: () => SiblingCredential[]): SiblingSource {
  return { name, load: async () => credentials() };
}
