// Recovery: the endpoint says a token is spent and no journal entry holds its successor (it was
// spent outside the guard: a process without the plugin, another machine, the Codex CLI). Look
// for another credential of the *same identity* among the sibling sources: same account and same
// user. A team workspace shares one account id among many people, so the account alone is never
// enough; where the user cannot be established, nothing is adopted and the caller gets the
// endpoint's 401 with the command that logs in again.

import type { RefreshGuardError } from "../errors/errors.ts";
import type { TokenSet } from "../oauth/token-wire.ts";
import type { Identity } from "../providers/provider.ts";
import type { SiblingCredential, SiblingSource } from "../siblings/sibling-source.ts";
import { tokenKey } from "../store/token-crypto.ts";
import type { GuardContext } from "./guard-context.ts";

export interface RecoveryCall {
  /** Key and token of the spent token that has no successor. */
  key: string;
  token: string;
  /** The tokens the caller presented and reached (a host's fence of its copy names one of them). */
  presented: readonly string[];
  /** Keys of the chain walked to reach it (the caller's own token first). */
  chain: readonly string[];
  /** The newest set the chain walk found before the spent token, if any. */
  latest: TokenSet | null;
  /** Resolves a sibling's refresh token through the guarded path (no nested recovery). */
  resolveSibling(refreshToken: string): Promise<TokenSet | null>;
}

export interface Recovered {
  set: TokenSet;
  source: string;
  /** This call's entry is the one journaled (false: another process recovered the same token first). */
  won: boolean;
}

export class Recovery {
  private readonly ctx: GuardContext;
  private readonly sources: readonly SiblingSource[];

  constructor(ctx: GuardContext, sources: readonly SiblingSource[]) {
    this.ctx = ctx;
    this.sources = sources;
  }

  /** A same-identity sibling's credential, journaled under the spent key; null if none works. */
  async recover(call: RecoveryCall): Promise<Recovered | null> {
    const credentials = await this.loadSiblings();
    const owner = this.ownerIdentity(call, credentials);
    if (owner === null) return null;
    const seen = new Set(call.chain);
    seen.add(call.key);
    const candidates = credentials
      .filter((credential) => {
        // A host's fence of its own copy is no credential (it only names whose token was fenced).
        if (credential.fencedFrom !== undefined) return false;
        const candidateKey = tokenKey(credential.refreshToken);
        if (seen.has(candidateKey)) return false;
        const identity = this.identityOf(credential);
        if (identity === null || !sameIdentity(owner, identity)) return false;
        seen.add(candidateKey);
        return true;
      })
      .sort((a, b) => (b.expiresAt ?? 0) - (a.expiresAt ?? 0));
    for (const candidate of candidates) {
      const set = await this.adoptOrRedeem(candidate, call);
      if (set === null) continue;
      // What the endpoint returned for the sibling's token says whose it really is (a store's
      // unsigned claims do not): anyone else's tokens are never handed over, nor journaled here.
      const returned = this.identityOfTokens(set.accessToken, set.idToken);
      if (returned === null || !sameIdentity(owner, { ...returned, accountId: returned.accountId ?? set.accountId })) {
        this.ctx.warn(
          "sibling_identity_mismatch",
          `the tokens redeemed for the sibling from ${candidate.source} belong to another identity than the spent token's; discarded`,
          call.key,
        );
        continue;
      }
      const winner = await this.ctx.coordination.writeEntry(call.key, call.token, set);
      return { set: winner, source: candidate.source, won: winner === set };
    }
    return null;
  }

  /**
   * Whose token was spent: the identity of the newest set of its chain, or of the stored
   * credentials that hold a token of the chain. Null when they disagree or say nothing of the user.
   */
  private ownerIdentity(call: RecoveryCall, credentials: readonly SiblingCredential[]): Identity | null {
    const chain = new Set([...call.chain, call.key]);
    const identities: Identity[] = [];
    if (call.latest !== null) {
      const identity = this.identityOfTokens(call.latest.accessToken, call.latest.idToken);
      if (identity !== null) identities.push(identity);
    }
    for (const credential of credentials) {
      const holdsChain = credential.fencedFrom === undefined && chain.has(tokenKey(credential.refreshToken));
      // 2026.6+ replace the copy being refreshed with a fence; a fence made from a presented token
      // still names the account and email of the login it replaced.
      const fenced = credential.fencedFrom !== undefined && call.presented.some((token) => credential.fencedFrom?.(token));
      if (!holdsChain && !fenced) continue;
      const identity = this.identityOf(credential);
      if (identity === null) return null;
      identities.push(identity);
    }
    const [first, ...rest] = identities;
    if (first === undefined || first.accountId === undefined || (first.userId === undefined && first.email === undefined)) return null;
    return rest.every((identity) => sameIdentity(first, identity)) ? first : null;
  }

  /**
   * A credential's identity from its tokens' claims; what its store declares is used only where
   * the tokens say nothing, and a store that contradicts its tokens makes the credential unusable.
   */
  private identityOf(credential: SiblingCredential): Identity | null {
    const fromTokens = this.identityOfTokens(credential.accessToken, credential.idToken);
    if (fromTokens === null) return null;
    const identity: Identity = { ...fromTokens };
    const declared: Identity = {};
    if (credential.accountId) declared.accountId = credential.accountId;
    if (credential.email) declared.email = credential.email.toLowerCase();
    for (const field of ["accountId", "email"] as const) {
      const stated = declared[field];
      if (stated === undefined) continue;
      if (identity[field] === undefined) identity[field] = stated;
      else if (identity[field] !== stated) return null;
    }
    return identity;
  }

  private identityOfTokens(accessToken: string | undefined, idToken: string | undefined): Identity | null {
    const fromAccess = accessToken ? this.ctx.provider.identityOf(accessToken) : {};
    const fromId = idToken ? this.ctx.provider.identityOf(idToken) : {};
    const merged: Identity = { ...fromId };
    for (const field of ["accountId", "userId", "email"] as const) {
      const value = fromAccess[field];
      if (value === undefined) continue;
      if (merged[field] !== undefined && merged[field] !== value) return null;
      merged[field] = value;
    }
    return merged;
  }

  private async adoptOrRedeem(candidate: SiblingCredential, call: RecoveryCall): Promise<TokenSet | null> {
    const { ctx } = this;
    const candidateKey = tokenKey(candidate.refreshToken);
    if (
      candidate.accessToken !== undefined &&
      candidate.expiresAt !== undefined &&
      ctx.isFresh(candidate.expiresAt) &&
      !(await ctx.coordination.hasEntry(candidateKey)) &&
      (await ctx.coordination.readSpent(candidateKey, candidate.refreshToken)) === null
    ) {
      const set: TokenSet = {
        accessToken: candidate.accessToken,
        refreshToken: candidate.refreshToken,
        expiresAt: candidate.expiresAt,
        extra: {},
      };
      if (candidate.idToken !== undefined) set.idToken = candidate.idToken;
      return set;
    }
    try {
      // Redeemed under the lock like any token; the redemption hands the successor to whichever
      // tool's file still holds the candidate (the Codex CLI's), in the same critical section.
      return await call.resolveSibling(candidate.refreshToken);
    } catch (error) {
      ctx.warn(
        "sibling_failed",
        `sibling from ${candidate.source} could not be used: ${(error as RefreshGuardError).code ?? (error as Error).name}`,
      );
      return null;
    }
  }

  private async loadSiblings(): Promise<SiblingCredential[]> {
    const all: SiblingCredential[] = [];
    for (const source of this.sources) {
      try {
        all.push(...(await source.load((message) => this.ctx.warn("sibling_unreadable", message))));
      } catch (error) {
        this.ctx.warn("sibling_unreadable", `${source.name}: ${(error as Error).message}`);
      }
    }
    return all;
  }
}

/** Same account, and the same user: by user id where both have one, else by email. */
function sameIdentity(a: Identity, b: Identity): boolean {
  if (a.accountId === undefined || a.accountId !== b.accountId) return false;
  if (a.userId !== undefined && b.userId !== undefined)
    return a.userId === b.userId && (a.email === undefined || b.email === undefined || a.email === b.email);
  if (a.email !== undefined && b.email !== undefined) return a.email === b.email;
  return false;
}
