// The heart of refresh-guard: given a refresh token, redeem it at most once across every caller,
// process and store copy, and hand every caller a valid successor. Host-independent: the host
// integration supplies `redeem` (the real POST) and sibling sources; everything else lives here.
import { join } from "node:path";

import { DirWatch } from "../store/dir-watch.ts";
import {
  ChainError,
  LockCompromisedError,
  LockTimeoutError,
  ReloginRequiredError,
  type RefreshGuardError,
} from "./errors.ts";
import { ensurePrivateDir } from "../store/guard-dir.ts";
import { Journal } from "../store/journal.ts";
import { KeyedMutex } from "./keyed-mutex.ts";
import { type HeldLock, type LockHolder, RefreshLocks } from "../store/refresh-lock.ts";
import { type SiblingCredential, type SiblingSource, accountOf } from "../siblings/sibling-source.ts";
import { keyLabel, tokenKey } from "../store/token-crypto.ts";
import {
  EXPIRED,
  INVALIDATED,
  REUSED,
  type TokenSet,
  parseTokenResponse,
  readErrorCode,
  tokenResponse,
} from "../oauth/token-wire.ts";

export interface GuardTiming {
  /** Lock heartbeat age after which a holder counts as dead. */
  staleMs: number;
  /** Heartbeat period. */
  updateMs: number;
  /** Longest wait for the lock before failing closed. */
  waitTimeoutMs: number;
  /** Fallback poll while waiting (the directory watch usually wakes waiters first). */
  pollMs: number;
  /** Longest wait for the endpoint's answer once the request left. */
  requestTimeoutMs: number;
  /** A stored access token is handed out only if it stays valid at least this long. */
  minValidityMs: number;
  /** Journal entries and tombstones are pruned after this. */
  retentionMs: number;
  /** After a reuse answer, how long to wait for a twin's journal entry before recovery. */
  reuseGraceMs: number;
  /** How often one process prunes the journal at most. */
  pruneIntervalMs: number;
}

export const DEFAULT_TIMING: GuardTiming = {
  staleMs: 2000,
  updateMs: 1000,
  waitTimeoutMs: 30_000,
  pollMs: 50,
  requestTimeoutMs: 30_000,
  minValidityMs: 60_000,
  retentionMs: 7 * 24 * 60 * 60 * 1000,
  reuseGraceMs: 1000,
  pruneIntervalMs: 60 * 60 * 1000,
};

export const MAX_CHAIN = 64;
/** Lock directories and owner records untouched this long are left over from crashes. */
const LEFTOVER_LOCK_MS = 60 * 60 * 1000;

export type GuardEvent =
  | { type: "redeemed" | "shared"; provider: string; key: string; hops: number; ms: number }
  | { type: "recovered"; provider: string; key: string; source: string; ms: number }
  | { type: "failed"; provider: string; key: string; reason: string; code?: string; message: string }
  | { type: "warning"; provider: string; key?: string; reason: string; message: string };

/** Named points of a redemption, for fault-injection tests. */
export type Stage = "lock-acquired" | "before-post" | "response-received" | "journal-mid-write" | "journaled";

/** Performs the real token request for `refreshToken`; `signal` bounds it. */
export type Redeem = (refreshToken: string, signal: AbortSignal) => Promise<Response>;

export interface RefreshGuardOptions {
  provider: string;
  guardDir: string;
  timing?: Partial<GuardTiming>;
  siblingSources?: readonly SiblingSource[];
  now?: () => number;
  onEvent?: (event: GuardEvent) => void;
  stage?: (stage: Stage) => Promise<void> | void;
}

/** `hops`: journal entries a reader walks from the presented token to `set`, once this resolution is done. */
type Resolved =
  | { kind: "set"; set: TokenSet; hops: number }
  | { kind: "response"; response: Response };

type Redemption =
  | { kind: "advanced" }
  | { kind: "redeemed"; set: TokenSet }
  | { kind: "spent"; code: string; response: BufferedResponse }
  | { kind: "response"; response: BufferedResponse };

interface BufferedResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: string;
}

export class RefreshGuard {
  readonly provider: string;
  readonly guardDir: string;
  readonly timing: GuardTiming;
  readonly journal: Journal;
  readonly locks: RefreshLocks;
  private readonly sources: readonly SiblingSource[];
  private readonly now: () => number;
  private readonly emit: (event: GuardEvent) => void;
  private readonly stage: (stage: Stage) => Promise<void> | void;
  private readonly mutex = new KeyedMutex();
  /** Resolutions in flight in this process, by the key of the token presented. */
  private readonly inflight = new Map<string, Promise<Resolved>>();
  private readonly watch: DirWatch;
  private lastPrune = 0;

  /** Checks and creates the guard directory (0700, ours, not a symlink) before first use. */
  static async open(options: RefreshGuardOptions): Promise<RefreshGuard> {
    const guard = new RefreshGuard(options);
    for (const dir of [guard.guardDir, guard.locks.dir, guard.journal.dir, join(guard.guardDir, "quarantine")]) {
      await ensurePrivateDir(dir);
    }
    await guard.locks.primeMtimePrecision();
    return guard;
  }

  private constructor(options: RefreshGuardOptions) {
    this.provider = options.provider;
    this.guardDir = options.guardDir;
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.sources = options.siblingSources ?? [];
    this.now = options.now ?? Date.now;
    this.emit = options.onEvent ?? (() => undefined);
    this.stage = options.stage ?? (() => undefined);
    this.locks = new RefreshLocks(
      join(this.guardDir, "locks"),
      { staleMs: this.timing.staleMs, updateMs: this.timing.updateMs },
      {
        onCompromised: (key) =>
          this.warn("lock_compromised", `lock ${keyLabel(key)} was taken over while held; stepping back`, key),
        onClockSkew: (key, _path, aheadMs) =>
          this.warn("lock_clock_skew", `lock ${keyLabel(key)} mtime is ${aheadMs} ms in the future; removed it`, key),
      },
      this.now,
    );
    this.journal = new Journal({
      dir: join(this.guardDir, "journal"),
      quarantineDir: join(this.guardDir, "quarantine"),
      retentionMs: this.timing.retentionMs,
      now: this.now,
      onQuarantine: (error) => this.warn("journal_quarantined", error.message),
      midWrite: () => this.stage("journal-mid-write"),
    });
    this.watch = new DirWatch([this.journal.dir, this.locks.dir]);
  }

  /**
   * Answers a refresh of `refreshToken` with a normal token response (200 JSON), or with the
   * endpoint's own failure response; rejects like fetch on network failure or timeout. If the
   * caller's `signal` aborts, the caller is released but a request already sent is still read
   * and journaled.
   */
  refresh(refreshToken: string, redeem: Redeem, options: { signal?: AbortSignal | null } = {}): Promise<Response> {
    const signal = options.signal;
    const aborted = () => signal?.reason ?? new DOMException("The operation was aborted.", "AbortError");
    // Aborted before anything was sent: send nothing, like fetch.
    if (signal?.aborted) return Promise.reject(aborted());
    const started = this.now();
    const work = this.resolveShared(refreshToken, redeem, started).then((resolved) => this.answer(resolved));
    if (!signal) return work;
    work.catch(() => undefined);
    return new Promise<Response>((resolve, reject) => {
      const onAbort = () => reject(aborted());
      signal.addEventListener("abort", onAbort, { once: true });
      work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  async holders(): Promise<LockHolder[]> {
    return this.locks.holders();
  }

  /**
   * In-process single flight: callers of this process that present the same token while a
   * resolution of it is under way join that one instead of each walking the journal and queueing
   * on the mutex and the lock in turn. A caller that joins gets the leader's token set and its own
   * `shared` event; if the leader ends in anything but a token set (an endpoint error, a spent
   * token, a timeout), the caller resolves on its own, exactly as it would have without joining.
   */
  private async resolveShared(token: string, redeem: Redeem, started: number): Promise<Resolved> {
    const key = tokenKey(token);
    const running = this.inflight.get(key);
    if (running !== undefined) {
      const led = await running.catch(() => null);
      if (led?.kind === "set") {
        this.emit({ type: "shared", provider: this.provider, key: keyLabel(key), hops: led.hops, ms: this.now() - started });
        return { kind: "set", set: led.set, hops: led.hops };
      }
      return this.resolve(token, redeem, true, started);
    }
    const lead = this.resolve(token, redeem, true, started);
    this.inflight.set(key, lead);
    try {
      return await lead;
    } finally {
      if (this.inflight.get(key) === lead) this.inflight.delete(key);
    }
  }

  private answer(resolved: Resolved): Response {
    if (resolved.kind === "response") return resolved.response;
    return tokenResponse(resolved.set, this.now());
  }

  /** Walks the chain from `token` to its newest successor; redeems that one if it must. */
  private async resolve(token: string, redeem: Redeem, allowRecovery: boolean, started: number): Promise<Resolved> {
    const chain: string[] = [];
    let latest: TokenSet | null = null;
    let current = token;
    for (;;) {
      const key = tokenKey(current);
      if (chain.includes(key)) throw new ChainError("redemption chain loops", { provider: this.provider });
      chain.push(key);
      if (chain.length > MAX_CHAIN) {
        throw new ChainError(`redemption chain longer than ${MAX_CHAIN}`, { provider: this.provider });
      }
      const next = await this.journal.read(key, current);
      if (next !== null) {
        latest = next;
        current = next.refreshToken;
        continue;
      }
      chain.pop();
      const firstKey = keyLabel(tokenKey(token));
      if (latest !== null && this.isFresh(latest.expiresAt)) {
        this.emit({ type: "shared", provider: this.provider, key: firstKey, hops: chain.length, ms: this.now() - started });
        return { kind: "set", set: latest, hops: chain.length };
      }
      const result = await this.redeemNewest(key, current, redeem);
      if (result.kind === "advanced") continue;
      if (result.kind === "redeemed") {
        this.emit({ type: "redeemed", provider: this.provider, key: firstKey, hops: chain.length, ms: this.now() - started });
        return { kind: "set", set: result.set, hops: chain.length + 1 };
      }
      if (result.kind === "response") {
        this.fail(key, "endpoint_error", `token endpoint answered ${result.response.status}`, readErrorCode(result.response.body));
        return { kind: "response", response: rebuild(result.response) };
      }
      // Spent with no successor in the journal: look for one among the siblings.
      if (allowRecovery) {
        const recovered = await this.recover(key, current, [...chain, key], latest, redeem, started, [token, current]);
        if (recovered !== null) return recovered;
      }
      if (allowRecovery) {
        const error = new ReloginRequiredError(this.provider, result.code, "the guard marked it spent so no process retries it.");
        this.fail(key, "relogin_required", error.message, result.code);
      }
      return { kind: "response", response: rebuild(result.response) };
    }
  }

  /** Redeems `token` (no journal entry yet) under the in-process mutex and the cross-process lock. */
  private redeemNewest(key: string, token: string, redeem: Redeem): Promise<Redemption> {
    return this.mutex.run(key, async () => {
      const deadline = this.now() + this.timing.waitTimeoutMs;
      for (;;) {
        if (await this.journal.has(key)) return { kind: "advanced" };
        const spent = await this.spentRecord(key);
        if (spent !== null) return spent;
        const lock = await this.locks.tryAcquire(key);
        if (lock === null) {
          if (this.now() >= deadline) {
            const error = new LockTimeoutError(this.locks.lockPath(key), this.timing.waitTimeoutMs, { provider: this.provider });
            this.fail(key, "lock_timeout", error.message);
            throw error;
          }
          await this.watch.wait([this.journal.entryName(key), this.locks.lockName(key)], this.timing.pollMs);
          continue;
        }
        try {
          const result = await this.redeemHolding(lock, key, token, redeem);
          if (result !== null) return result;
        } finally {
          await lock.release();
        }
      }
    });
  }

  /** With the lock held: re-read, then POST once. Null means "lost the lock before sending, wait again". */
  private async redeemHolding(lock: HeldLock, key: string, token: string, redeem: Redeem): Promise<Redemption | null> {
    // Re-read after taking the lock: the previous holder may have just journaled.
    if (await this.journal.has(key)) return { kind: "advanced" };
    const spent = await this.spentRecord(key);
    if (spent !== null) return spent;
    await this.stage("lock-acquired");
    await this.stage("before-post");
    // Last check before the request leaves: if a sibling took the lock over while we were
    // frozen, step back and wait for its journal entry instead of spending the token twice.
    try {
      await lock.assertHeld();
    } catch (error) {
      if (!(error instanceof LockCompromisedError)) throw error;
      this.warn("lock_compromised", `lock ${keyLabel(key)} was taken over before this process sent its request; stepping back`, key);
      return null;
    }
    let response: BufferedResponse;
    try {
      response = await buffer(await redeem(token, AbortSignal.timeout(this.timing.requestTimeoutMs)));
    } catch (error) {
      const timeout = (error as Error)?.name === "TimeoutError";
      this.fail(key, timeout ? "endpoint_timeout" : "network", timeout
        ? `token endpoint did not answer within ${this.timing.requestTimeoutMs} ms`
        : `token request failed: ${(error as Error)?.message ?? String(error)}`);
      throw error;
    }
    await this.stage("response-received");
    if (response.status >= 200 && response.status < 300) {
      let json: unknown;
      try {
        json = JSON.parse(response.body);
      } catch {
        return { kind: "response", response };
      }
      const set = parseTokenResponse(json, this.now());
      if (set === null) return { kind: "response", response };
      if (lock.compromised) {
        this.warn("lock_compromised", `lock ${keyLabel(key)} was lost during the request; journaling anyway (first writer wins)`, key);
      }
      const winner = await this.journal.write(key, token, set);
      await this.stage("journaled");
      this.maybePrune();
      return { kind: "redeemed", set: winner };
    }
    const code = readErrorCode(response.body);
    if (response.status === 401 && code !== undefined && (code === REUSED || code === INVALIDATED || code === EXPIRED)) {
      // A twin that lost its lock unnoticed may have redeemed it an instant ago: give its entry a moment.
      if (code === REUSED && (await this.awaitEntry(key))) return { kind: "advanced" };
      // Mark it spent while still holding the lock, so the next holder does not send it again.
      await this.journal.tombstone(key, code, response.body);
      return { kind: "spent", code, response };
    }
    return { kind: "response", response };
  }

  private async awaitEntry(key: string): Promise<boolean> {
    const until = this.now() + this.timing.reuseGraceMs;
    while (!(await this.journal.has(key))) {
      const left = until - this.now();
      if (left <= 0) return false;
      await this.watch.wait([this.journal.entryName(key)], Math.min(left, this.timing.pollMs * 4));
    }
    this.warn("reuse_raced", `a twin redeemed ${keyLabel(key)} concurrently; using its journal entry`, key);
    return true;
  }

  private async spentRecord(key: string): Promise<Redemption | null> {
    const tombstone = await this.journal.readTombstone(key);
    if (tombstone === null) return null;
    return {
      kind: "spent",
      code: tombstone.code,
      response: {
        status: 401,
        statusText: "Unauthorized",
        headers: [["content-type", "application/json"]],
        body: tombstone.body,
      },
    };
  }

  /** Finds a sibling credential of the same account and continues with it; null if none works. */
  private async recover(
    key: string,
    token: string,
    chain: string[],
    latest: TokenSet | null,
    redeem: Redeem,
    started: number,
    presented: readonly string[] = [token],
  ): Promise<Resolved | null> {
    const credentials = await this.loadSiblings();
    const accounts = new Set<string>();
    if (latest?.accountId) accounts.add(latest.accountId);
    for (const credential of credentials) {
      const account = accountOf(credential);
      if (account === undefined) continue;
      if (chain.includes(tokenKey(credential.refreshToken))) accounts.add(account);
      // The host's own copy, fenced by its refresh claim, still names the account it belongs to.
      else if (credential.fencedFrom !== undefined && presented.some((candidate) => credential.fencedFrom!(candidate))) accounts.add(account);
    }
    const seen = new Set(chain);
    const candidates = credentials
      .filter((credential) => {
        if (credential.fencedFrom !== undefined) return false;
        const account = accountOf(credential);
        const candidateKey = tokenKey(credential.refreshToken);
        if (account === undefined || !accounts.has(account) || seen.has(candidateKey)) return false;
        seen.add(candidateKey);
        return true;
      })
      .sort((a, b) => (b.expiresAt ?? 0) - (a.expiresAt ?? 0));
    for (const candidate of candidates) {
      const set = await this.adoptOrRedeem(candidate, redeem, started);
      if (set === null) continue;
      const winner = await this.journal.write(key, token, set);
      this.emit({ type: "recovered", provider: this.provider, key: keyLabel(key), source: candidate.source, ms: this.now() - started });
      return { kind: "set", set: winner, hops: chain.length };
    }
    return null;
  }

  private async adoptOrRedeem(candidate: SiblingCredential, redeem: Redeem, started: number): Promise<TokenSet | null> {
    const candidateKey = tokenKey(candidate.refreshToken);
    if (
      candidate.accessToken !== undefined &&
      candidate.expiresAt !== undefined &&
      this.isFresh(candidate.expiresAt) &&
      !(await this.journal.has(candidateKey)) &&
      (await this.journal.readTombstone(candidateKey)) === null
    ) {
      const set: TokenSet = {
        accessToken: candidate.accessToken,
        refreshToken: candidate.refreshToken,
        expiresAt: candidate.expiresAt,
        extra: {},
      };
      if (candidate.idToken !== undefined) set.idToken = candidate.idToken;
      const account = accountOf(candidate);
      if (account !== undefined) set.accountId = account;
      return set;
    }
    try {
      const resolved = await this.resolve(candidate.refreshToken, redeem, false, started);
      if (resolved.kind !== "set") return null;
      if (candidate.onRedeemed !== undefined && resolved.set.refreshToken !== candidate.refreshToken) {
        // The sibling's owner still holds the token we just spent: give it the successor.
        await candidate.onRedeemed(resolved.set).catch((error: Error) =>
          this.warn("sibling_write_back_failed", `could not hand the successor back to ${candidate.source}: ${(error as NodeJS.ErrnoException).code ?? error.message}`),
        );
      }
      return resolved.set;
    } catch (error) {
      this.warn("sibling_failed", `sibling from ${candidate.source} could not be used: ${(error as RefreshGuardError).code ?? (error as Error).name}`);
      return null;
    }
  }

  private async loadSiblings(): Promise<SiblingCredential[]> {
    const all: SiblingCredential[] = [];
    for (const source of this.sources) {
      try {
        all.push(...(await source.load((message) => this.warn("sibling_unreadable", message))));
      } catch (error) {
        this.warn("sibling_unreadable", `${source.name}: ${(error as Error).message}`);
      }
    }
    return all;
  }

  private isFresh(expiresAt: number): boolean {
    return expiresAt - this.now() > this.timing.minValidityMs;
  }

  private maybePrune(): void {
    const now = this.now();
    if (now - this.lastPrune < this.timing.pruneIntervalMs) return;
    this.lastPrune = now;
    this.journal.prune().catch((error: Error) => this.warn("prune_failed", error.message));
    // Far beyond staleMs: only what crashed holders left behind is this old.
    this.locks.prune(Math.max(LEFTOVER_LOCK_MS, this.timing.staleMs * 10)).catch((error: Error) => this.warn("prune_failed", error.message));
  }

  private fail(key: string, reason: string, message: string, code?: string): void {
    const event: GuardEvent = { type: "failed", provider: this.provider, key: keyLabel(key), reason, message };
    if (code !== undefined) event.code = code;
    this.emit(event);
  }

  private warn(reason: string, message: string, key?: string): void {
    const event: GuardEvent = { type: "warning", provider: this.provider, reason, message };
    if (key !== undefined) event.key = keyLabel(key);
    this.emit(event);
  }
}

async function buffer(response: Response): Promise<BufferedResponse> {
  return {
    status: response.status,
    statusText: response.statusText,
    headers: [...response.headers.entries()],
    body: await response.text(),
  };
}

function rebuild(response: BufferedResponse): Response {
  const headers = new Headers(response.headers);
  // The body is now plain text: drop encodings and lengths that described the wire form.
  headers.delete("content-encoding");
  headers.delete("content-length");
  headers.delete("transfer-encoding");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
