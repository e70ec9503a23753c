// The heart of refresh-guard: given a refresh token, redeem it at most once across every caller,
// process and store copy, and hand every caller a valid successor. Host-independent: the host seam
// supplies `redeem` (the real POST) and sibling sources. This module joins callers of one process
// (single flight) and walks the redemption chain; redemption.ts redeems under the lock, and
// recovery.ts looks for a sibling when a token was spent outside the guard.

import { rebuildResponse } from "../oauth/http-buffer.ts";
import { readErrorCode, type TokenSet, tokenResponse } from "../oauth/token-wire.ts";
import { openai } from "../providers/openai.ts";
import type { Provider } from "../providers/provider.ts";
import { providerById } from "../providers/registry.ts";
import type { SiblingSource } from "../siblings/sibling-source.ts";
import type { Coordination, LockHolder } from "../store/coordination.ts";
import { FileCoordination } from "../store/file-coordination.ts";
import type { Journal } from "../store/journal.ts";
import type { RefreshLocks } from "../store/refresh-lock.ts";
import { keyLabel, tokenKey } from "../store/token-crypto.ts";
import { ChainError, DeadlineError, ReloginRequiredError } from "./errors.ts";
import type { GuardEvent } from "./events.ts";
import { GuardContext, type Redeem, type Stage } from "./guard-context.ts";
import { KeyedMutex } from "./keyed-mutex.ts";
import { Recovery } from "./recovery.ts";
import { redeemNewest } from "./redemption.ts";
import { DEFAULT_TIMING, type GuardTiming, LEFTOVER_LOCK_MS, MAX_CHAIN, refreshDeadlineMs } from "./timing.ts";

export type { GuardEvent, GuardTiming, Redeem, Stage };
export { DEFAULT_TIMING, MAX_CHAIN };

export interface RefreshGuardOptions {
  /** The provider id as configured (`openai-codex`, or an alias such as `openai`). */
  provider: string;
  guardDir: string;
  timing?: Partial<GuardTiming>;
  siblingSources?: readonly SiblingSource[];
  /** Where processes coordinate; default: the file backend in `guardDir`. */
  coordination?: Coordination;
  now?: () => number;
  onEvent?: (event: GuardEvent) => void;
  stage?: (stage: Stage) => Promise<void> | void;
  /**
   * Lean waits (default true): a waiter keeps its directory watch open between polls, re-checks
   * the journal after a poll only where the backend cannot vouch that nothing changed, and takes
   * the journal entry's own event as "advanced" without a separate stat. False: every poll
   * re-checks everything and reopens the watch (the benchmark's "before").
   */
  leanWaits?: boolean;
}

/** `hops`: journal entries a reader walks from the presented token to `set`, once this resolution is done. */
type Resolved = { kind: "set"; set: TokenSet; hops: number } | { kind: "response"; response: Response };

export class RefreshGuard {
  readonly provider: string;
  readonly guardDir: string;
  readonly timing: GuardTiming;
  readonly coordination: Coordination;
  private readonly ctx: GuardContext;
  private readonly recovery: Recovery;
  private readonly mutex = new KeyedMutex();
  /** Resolutions in flight in this process, by the key of the token presented. */
  private readonly inflight = new Map<string, Promise<Resolved>>();
  private lastPrune = 0;

  /** Opens the coordination backend (for files: checks and creates the guard directory) before first use. */
  static async open(options: RefreshGuardOptions): Promise<RefreshGuard> {
    const guard = new RefreshGuard(options);
    await guard.coordination.open();
    return guard;
  }

  private constructor(options: RefreshGuardOptions) {
    this.provider = options.provider;
    this.guardDir = options.guardDir;
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    const now = options.now ?? Date.now;
    const emit = options.onEvent ?? (() => undefined);
    const stage = options.stage ?? (() => undefined);
    const rules: Provider = providerById(options.provider) ?? openai;
    const leanWaits = options.leanWaits ?? true;
    let ctx: GuardContext | undefined;
    this.coordination =
      options.coordination ??
      new FileCoordination({
        guardDir: this.guardDir,
        staleMs: this.timing.staleMs,
        updateMs: this.timing.updateMs,
        retentionMs: this.timing.retentionMs,
        now,
        events: {
          onCompromised: (key) => ctx?.warn("lock_compromised", `lock ${keyLabel(key)} was taken over while held; stepping back`, key),
          onClockSkew: (key, _path, aheadMs) =>
            ctx?.warn("lock_clock_skew", `lock ${keyLabel(key)} mtime is ${aheadMs} ms in the future; removed it`, key),
          onBlocked: (path, movedTo) => ctx?.warn("lock_blocked", `${path} was not a lock; moved it to ${movedTo}`),
        },
        onQuarantine: (error) => ctx?.warn("journal_quarantined", error.message),
        midWrite: () => stage("journal-mid-write"),
        watchLingerMs: leanWaits ? this.timing.pollMs * 4 : 0,
      });
    ctx = new GuardContext({
      providerId: options.provider,
      provider: rules,
      coordination: this.coordination,
      timing: this.timing,
      now,
      stage,
      emit,
      leanWaits,
      handBackTo: options.siblingSources ?? [],
    });
    this.ctx = ctx;
    this.recovery = new Recovery(ctx, options.siblingSources ?? []);
  }

  /** The file backend's journal (tests and status read it directly). */
  get journal(): Journal {
    return this.fileBackend().journal;
  }

  /** The file backend's locks. */
  get locks(): RefreshLocks {
    return this.fileBackend().locks;
  }

  private fileBackend(): FileCoordination {
    if (!(this.coordination instanceof FileCoordination))
      throw new Error(`refresh-guard: the ${this.coordination.kind} backend has no guard directory`);
    return this.coordination;
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
    const started = this.ctx.now();
    const work = this.bounded(refreshToken, this.resolveShared(refreshToken, redeem, started)).then((resolved) => this.answer(resolved));
    if (!signal) return work;
    work.catch(() => undefined);
    return new Promise<Response>((resolve, reject) => {
      const onAbort = () => reject(aborted());
      signal.addEventListener("abort", onAbort, { once: true });
      work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  /** `work`, or a DeadlineError once the refresh's overall deadline has passed (fail closed). */
  private bounded<T>(token: string, work: Promise<T>): Promise<T> {
    const deadlineMs = refreshDeadlineMs(this.timing);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const key = tokenKey(token);
        const error = new DeadlineError(deadlineMs, { provider: this.provider });
        this.ctx.fail(key, "deadline", error.message);
        reject(error);
      }, deadlineMs);
      timer.unref();
    });
    work.catch(() => undefined);
    return Promise.race([work, expired]).finally(() => clearTimeout(timer));
  }

  holders(): Promise<LockHolder[]> {
    return this.coordination.holders();
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
        this.ctx.emit({ type: "shared", provider: this.provider, key: keyLabel(key), hops: led.hops, ms: this.ctx.now() - started });
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
    return tokenResponse(resolved.set, this.ctx.now());
  }

  /** Walks the chain from `token` to its newest successor; redeems that one if it must. */
  private async resolve(token: string, redeem: Redeem, allowRecovery: boolean, started: number): Promise<Resolved> {
    const { ctx } = this;
    const chain: string[] = [];
    let latest: TokenSet | null = null;
    let current = token;
    // Real elapsed time (ctx.now may be a test's clock that jumps).
    const deadline = performance.now() + refreshDeadlineMs(this.timing);
    for (;;) {
      // Past the deadline the caller has its DeadlineError already: stop, whatever the journal keeps doing.
      if (performance.now() > deadline) throw new DeadlineError(refreshDeadlineMs(this.timing), { provider: this.provider });
      const key = tokenKey(current);
      if (chain.includes(key)) throw new ChainError("redemption chain loops", { provider: this.provider });
      chain.push(key);
      if (chain.length > MAX_CHAIN) throw new ChainError(`redemption chain longer than ${MAX_CHAIN}`, { provider: this.provider });
      const next = await this.coordination.readEntry(key, current);
      if (next !== null) {
        latest = next;
        current = next.refreshToken;
        continue;
      }
      chain.pop();
      const firstKey = keyLabel(tokenKey(token));
      if (latest !== null && ctx.isFresh(latest.expiresAt)) {
        // A nested resolution (recovery redeeming a sibling's token) is part of the host's one refresh: counted there.
        if (allowRecovery)
          ctx.emit({ type: "shared", provider: this.provider, key: firstKey, hops: chain.length, ms: ctx.now() - started });
        return { kind: "set", set: latest, hops: chain.length };
      }
      const result = await redeemNewest(ctx, this.mutex, key, current, redeem);
      if (result.kind === "advanced") continue;
      if (result.kind === "redeemed") {
        this.maybePrune();
        if (allowRecovery)
          ctx.emit({ type: "redeemed", provider: this.provider, key: firstKey, hops: chain.length, ms: ctx.now() - started });
        return { kind: "set", set: result.set, hops: chain.length + 1 };
      }
      if (result.kind === "response") {
        ctx.fail(key, "endpoint_error", `token endpoint answered ${result.response.status}`, readErrorCode(result.response.body));
        return { kind: "response", response: rebuildResponse(result.response) };
      }
      // Spent with no successor in the journal: look for one among the siblings.
      if (allowRecovery) {
        // Another process may have recovered it meanwhile (it, not this one, counts as "recovered").
        const recoveredElsewhere = await this.coordination.readEntry(key, current);
        if (recoveredElsewhere !== null) {
          chain.push(key);
          latest = recoveredElsewhere;
          current = recoveredElsewhere.refreshToken;
          continue;
        }
        const recovered = await this.recovery.recover({
          key,
          token: current,
          presented: [token, current],
          chain,
          latest,
          resolveSibling: async (refreshToken) => {
            const resolved = await this.resolve(refreshToken, redeem, false, started);
            return resolved.kind === "set" ? resolved.set : null;
          },
        });
        if (recovered !== null) {
          // Only the process whose entry won counts the recovery; one that lost the race shares it.
          if (recovered.won)
            ctx.emit({ type: "recovered", provider: this.provider, key: keyLabel(key), source: recovered.source, ms: ctx.now() - started });
          else ctx.emit({ type: "shared", provider: this.provider, key: firstKey, hops: chain.length + 1, ms: ctx.now() - started });
          return { kind: "set", set: recovered.set, hops: chain.length + 1 };
        }
        // Only a reuse can be a race between holders; any other spent code (refresh_token_invalidated
        // on a first refresh after a clean login, an expired token) is a login problem.
        const detail =
          result.code === ctx.provider.reusedCode
            ? "the guard marked it spent so no process retries it."
            : "the provider ended this login (not a race between holders of the token); the guard marked it spent so no process retries it.";
        const error = new ReloginRequiredError(this.provider, result.code, detail, {
          login: ctx.provider.loginCommand(this.provider),
        });
        ctx.fail(key, "relogin_required", error.message, result.code);
      }
      return { kind: "response", response: rebuildResponse(result.response) };
    }
  }

  private maybePrune(): void {
    const now = this.ctx.now();
    if (now - this.lastPrune < this.timing.pruneIntervalMs) return;
    this.lastPrune = now;
    // Far beyond staleMs: only what crashed holders left behind is this old.
    this.coordination
      .prune(Math.max(LEFTOVER_LOCK_MS, this.timing.staleMs * 10))
      .catch((error: Error) => this.ctx.warn("prune_failed", error.message));
  }
}
