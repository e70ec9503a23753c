// The heart of refresh-guard: given a refresh token, redeem it at most once across every caller,
// process and store copy, and hand every caller a valid successor. Host-independent: the host seam
// supplies `redeem` (the real POST) and sibling sources. This module joins callers of one process
// (single flight) and walks the redemption chain; redemption.ts redeems under the lock, and
// recovery.ts looks for a sibling when a token was spent outside the guard.

import { ChainError, DeadlineError, ReloginRequiredError } from "../errors/errors.ts";
import { rebuildResponse } from "../oauth/http-buffer.ts";
import { readErrorCode, type TokenSet, tokenResponseBody } from "../oauth/token-wire.ts";
import type { Provider } from "../providers/provider.ts";
import { providerById } from "../providers/registry.ts";
import type { SiblingSource } from "../siblings/sibling-source.ts";
import type { Coordination, LockHolder } from "../store/coordination.ts";
import { keyLabel, tokenKey } from "../store/token-crypto.ts";
import type { GuardEvent } from "./events.ts";
import { GuardContext, type Redeem, type Stage } from "./guard-context.ts";
import { KeyedMutex } from "./keyed-mutex.ts";
import { Recovery } from "./recovery.ts";
import { redeemNewest } from "./redemption.ts";
import { DEFAULT_TIMING, type GuardTiming, LEFTOVER_LOCK_MS, MAX_CHAIN, refreshDeadlineMs } from "./timing.ts";

export type { GuardEvent, GuardTiming, Redeem, Stage };
export { DEFAULT_TIMING };

export interface RefreshGuardOptions {
  /** The provider id as configured (`openai-codex`, or an alias such as `openai`); one providers/registry.ts knows. */
  provider: string;
  /** The provider id the host's `models auth login --provider` accepts (default: `provider`). */
  loginProvider?: string;
  /** Where processes coordinate, already opened (plugin/coordination-factory.ts builds the file or Redis backend). */
  coordination: Coordination;
  timing?: Partial<GuardTiming>;
  siblingSources?: readonly SiblingSource[];
  now?: () => number;
  onEvent?: (event: GuardEvent) => void;
  stage?: (stage: Stage) => Promise<void> | void;
}

/** `hops`: journal entries a reader walks from the presented token to `set`, once this resolution is done. */
type Resolved = { kind: "set"; set: TokenSet; hops: number } | { kind: "response"; response: Response };

export class RefreshGuard {
  readonly provider: string;
  private readonly loginProvider: string;
  readonly timing: GuardTiming;
  readonly coordination: Coordination;
  private readonly ctx: GuardContext;
  private readonly recovery: Recovery;
  private readonly mutex = new KeyedMutex();
  /** Resolutions in flight in this process, by the key of the token presented. */
  private readonly inflight = new Map<string, Promise<Resolved>>();
  private lastPrune = 0;
  /** The answer body of each token set, built once for all the callers it answers (by its expires_in). */
  private readonly bodies = new WeakMap<TokenSet, { expiresIn: number; body: string }>();

  constructor(options: RefreshGuardOptions) {
    const rules: Provider | undefined = providerById(options.provider);
    if (rules === undefined) throw new Error(`refresh-guard: unknown provider ${JSON.stringify(options.provider)}`);
    this.provider = options.provider;
    this.loginProvider = options.loginProvider ?? options.provider;
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.coordination = options.coordination;
    this.ctx = new GuardContext({
      providerId: options.provider,
      provider: rules,
      coordination: this.coordination,
      timing: this.timing,
      now: options.now ?? Date.now,
      stage: options.stage ?? (() => undefined),
      emit: options.onEvent ?? (() => undefined),
      handBackTo: options.siblingSources ?? [],
    });
    this.recovery = new Recovery(this.ctx, options.siblingSources ?? []);
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
    let reported = false;
    // One failed event, whichever notices first: the timer, or the resolution's own check.
    const report = (error: DeadlineError) => {
      if (reported) return;
      reported = true;
      this.ctx.fail(tokenKey(token), "deadline", error.message);
    };
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new DeadlineError(deadlineMs, { provider: this.provider });
        report(error);
        reject(error);
      }, deadlineMs);
      timer.unref();
    });
    work.catch((error: unknown) => {
      if (error instanceof DeadlineError) report(error);
    });
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
    const { set } = resolved;
    const now = this.ctx.now();
    const expiresIn = Math.floor((set.expiresAt - now) / 1000);
    let cached = this.bodies.get(set);
    if (cached?.expiresIn !== expiresIn) {
      cached = { expiresIn, body: JSON.stringify(tokenResponseBody(set, now)) };
      this.bodies.set(set, cached);
    }
    return new Response(cached.body, { status: 200, headers: { "content-type": "application/json" } });
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
      // Spent with no successor in the journal: look for one among the siblings, where the provider
      // leaves siblings alive (xAI and Anthropic revoke the whole family: recovery only reports).
      if (allowRecovery) {
        // Another process may have recovered it meanwhile (it, not this one, counts as "recovered").
        const recoveredElsewhere = await this.coordination.readEntry(key, current);
        if (recoveredElsewhere !== null) {
          chain.push(key);
          latest = recoveredElsewhere;
          current = recoveredElsewhere.refreshToken;
          continue;
        }
        const recoverable = ctx.provider.reuseRecoverable;
        const recovered = !recoverable
          ? null
          : await this.recovery.recover({
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
        const detail = !recoverable
          ? `${this.provider} revokes every token of a login once one is reused, so no copy can take over; the guard marked it spent so no process retries it.`
          : result.code === ctx.provider.reusedCode
            ? "the guard marked it spent so no process retries it."
            : "the provider ended this login (not a race between holders of the token); the guard marked it spent so no process retries it.";
        const error = new ReloginRequiredError(this.provider, result.code, detail, ctx.provider.loginCommand(this.loginProvider));
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
