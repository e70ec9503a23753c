// Redeeming the newest token of a chain: at most once across every process that shares the
// coordination backend. In this process callers of one key queue on a mutex; across processes
// they take turns on the key's lock. The holder re-reads the journal, checks it still holds the
// lock right before sending, sends once, and journals a success before answering anyone. Every
// wait is bounded: the lock wait by `waitTimeoutMs`, the exchange by `requestTimeoutMs` with a
// timer that does not rely on the request honouring its signal.

import { LockCompromisedError, LockTimeoutError } from "../errors/errors.ts";
import { type BufferedResponse, bufferResponse, ResponseTooLargeError } from "../oauth/http-buffer.ts";
import { parseTokenResponse, readErrorCode, type TokenSet } from "../oauth/token-wire.ts";
import type { HeldLock } from "../store/coordination.ts";
import { EntryTooLargeError, MAX_RESPONSE_BYTES } from "../store/sealed-entry.ts";
import { keyLabel } from "../store/token-crypto.ts";
import type { GuardContext, Redeem } from "./guard-context.ts";
import type { KeyedMutex } from "./keyed-mutex.ts";

export type Redemption =
  | { kind: "advanced" }
  | { kind: "redeemed"; set: TokenSet }
  | { kind: "spent"; code: string; response: BufferedResponse }
  | { kind: "response"; response: BufferedResponse };

/** Redeems `token` (no journal entry yet) under the in-process mutex and the cross-process lock. */
export function redeemNewest(ctx: GuardContext, mutex: KeyedMutex, key: string, token: string, redeem: Redeem): Promise<Redemption> {
  const { coordination, timing } = ctx;
  return mutex.run(key, async () => {
    const deadline = ctx.now() + timing.waitTimeoutMs;
    // Whether the journal and the spent marker must be checked before the next try of the lock.
    // These checks only spare a lock cycle: whoever takes the lock re-reads both under it
    // (redeemHolding). They are skipped on the first try, right after the caller's journal read
    // missed, and after a poll in which the backend is sure nothing changed.
    let check = false;
    for (;;) {
      if (check) {
        if (await coordination.hasEntry(key)) return { kind: "advanced" };
        const spent = await spentRecord(ctx, key, token);
        if (spent !== null) return spent;
      }
      const lock = await coordination.tryLock(key);
      if (lock === null) {
        if (ctx.now() >= deadline) {
          const error = new LockTimeoutError(coordination.lockLocation(key), timing.waitTimeoutMs, { provider: ctx.providerId });
          ctx.fail(key, "lock_timeout", error.message);
          throw error;
        }
        const wake = await coordination.waitForChange(key, timing.pollMs);
        if (wake.kind === "entry") return { kind: "advanced" };
        // A timeout in which nothing changed: only a stale holder can have freed the lock.
        check = !(wake.kind === "timeout" && wake.watched);
        continue;
      }
      let releaseNow = true;
      try {
        const result = await redeemHolding(ctx, lock, key, token, redeem);
        if (result.kind === "retry") continue;
        if (result.kind === "stuck") {
          // The request may still be on its way: keep the lock until it settles or staleMs passes.
          releaseNow = false;
          void result.settled.finally(() => lock.release().catch(() => undefined));
          throw result.error;
        }
        return result.redemption;
      } finally {
        if (releaseNow) await lock.release();
      }
    }
  });
}

type Held = { kind: "retry" } | { kind: "stuck"; error: Error; settled: Promise<unknown> } | { kind: "done"; redemption: Redemption };

/** With the lock held: re-read, then POST once. */
async function redeemHolding(ctx: GuardContext, lock: HeldLock, key: string, token: string, redeem: Redeem): Promise<Held> {
  const { coordination, provider } = ctx;
  const done = (redemption: Redemption): Held => ({ kind: "done", redemption });
  // Re-read after taking the lock: the previous holder may have just journaled.
  if (await coordination.hasEntry(key)) return done({ kind: "advanced" });
  const spent = await spentRecord(ctx, key, token);
  if (spent !== null) return done(spent);
  await ctx.stage("lock-acquired");
  await ctx.stage("before-post");
  // Last check before the request leaves: if a sibling took the lock over while we were
  // frozen, step back and wait for its journal entry instead of spending the token twice.
  try {
    await lock.assertHeld();
  } catch (error) {
    if (!(error instanceof LockCompromisedError)) throw error;
    ctx.warn("lock_compromised", `lock ${keyLabel(key)} was taken over before this process sent its request; stepping back`, key);
    return { kind: "retry" };
  }
  const exchange = exchangeOnce(ctx, redeem, token);
  const outcome = await exchange.outcome;
  if (outcome.kind === "timeout" || outcome.kind === "error") {
    const error = outcome.kind === "timeout" ? timeoutError(ctx.timing.requestTimeoutMs) : (outcome.error as Error);
    const timeout = error?.name === "TimeoutError";
    if (error instanceof ResponseTooLargeError) {
      ctx.fail(key, "response_too_large", `token endpoint answered more than ${MAX_RESPONSE_BYTES} bytes; the answer was not read`);
    } else {
      ctx.fail(
        key,
        timeout ? "endpoint_timeout" : "network",
        timeout
          ? `token endpoint did not answer within ${ctx.timing.requestTimeoutMs} ms`
          : `token request failed: ${error?.message ?? String(error)}`,
      );
    }
    if (outcome.kind === "timeout") {
      // A request that ignored its abort may still succeed: journal it if it does (first writer wins).
      // A late failure of the request itself is nothing to journal; a journal write that fails is said.
      const late = exchange.late.then(
        (response) =>
          journalSuccess(ctx, lock, key, token, response).catch((failure: Error) =>
            ctx.warn("late_answer_unjournaled", `the late answer for ${keyLabel(key)} could not be journaled: ${failure.message}`, key),
          ),
        () => undefined,
      );
      const settled = Promise.race([late, delay(ctx.timing.staleMs)]);
      return { kind: "stuck", error, settled };
    }
    throw error;
  }
  const response = outcome.response;
  await ctx.stage("response-received");
  if (response.status >= 200 && response.status < 300) {
    const set = await journalSuccess(ctx, lock, key, token, response);
    return done(set === null ? { kind: "response", response } : { kind: "redeemed", set });
  }
  const code = readErrorCode(response.body);
  if (response.status === provider.spentStatus && code !== undefined && provider.spentCodes.includes(code)) {
    // A twin that lost its lock unnoticed may have redeemed it an instant ago: give its entry a moment.
    if (code === provider.reusedCode && (await awaitEntry(ctx, key))) return done({ kind: "advanced" });
    // Mark it spent while still holding the lock, so the next holder does not send it again.
    await coordination.markSpent(key, token, code, response.body);
    return done({ kind: "spent", code, response });
  }
  return done({ kind: "response", response });
}

/** Journals a complete 2xx answer; null when the answer is not a complete token set. */
async function journalSuccess(
  ctx: GuardContext,
  lock: HeldLock,
  key: string,
  token: string,
  response: BufferedResponse,
): Promise<TokenSet | null> {
  if (response.status < 200 || response.status >= 300) return null;
  let json: unknown;
  try {
    json = JSON.parse(response.body);
  } catch {
    return null;
  }
  const set = parseTokenResponse(json, ctx.now());
  if (set === null) return null;
  // A non-rotating answer (the same refresh token back: RFC 6749 allows it; a caching proxy or a
  // retried request sends it) is handed back but is no chain link: journaled it would make the
  // token its own successor.
  if (set.refreshToken === token) return set;
  if (lock.compromised) {
    ctx.warn("lock_compromised", `lock ${keyLabel(key)} was lost during the request; journaling anyway (first writer wins)`, key);
  }
  let winner: TokenSet;
  try {
    winner = await ctx.coordination.writeEntry(key, token, set);
  } catch (error) {
    if (!(error instanceof EntryTooLargeError)) throw error;
    // Cannot happen within MAX_RESPONSE_BYTES; if it does, the caller still gets its tokens and the log says why others will not.
    ctx.fail(key, "response_too_large", `${error.message}; handed to this caller only, copies of the spent token will need recovery`);
    return set;
  }
  await ctx.stage("journaled");
  // Still holding the lock: whoever else holds `token` (the Codex CLI's file) gets the successor now.
  await ctx.handBack(token, winner, key);
  return winner;
}

type Outcome = { kind: "response"; response: BufferedResponse } | { kind: "error"; error: unknown } | { kind: "timeout" };

/**
 * One request, its answer read with the journal's byte cap, raced against `requestTimeoutMs`.
 * `late` settles with the answer whenever it comes, even after the timeout.
 */
function exchangeOnce(ctx: GuardContext, redeem: Redeem, token: string): { outcome: Promise<Outcome>; late: Promise<BufferedResponse> } {
  const controller = new AbortController();
  const late = (async () => bufferResponse(await redeem(token, controller.signal), MAX_RESPONSE_BYTES))();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(timeoutError(ctx.timing.requestTimeoutMs));
      resolve({ kind: "timeout" });
    }, ctx.timing.requestTimeoutMs);
  });
  const answered = late.then(
    (response): Outcome => ({ kind: "response", response }),
    (error: unknown): Outcome => ({ kind: "error", error }),
  );
  const outcome = Promise.race([answered, timedOut]).finally(() => clearTimeout(timer));
  return { outcome, late };
}

function timeoutError(ms: number): DOMException {
  return new DOMException(`The token request did not complete within ${ms} ms.`, "TimeoutError");
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

async function awaitEntry(ctx: GuardContext, key: string): Promise<boolean> {
  const until = ctx.now() + ctx.timing.reuseGraceMs;
  while (!(await ctx.coordination.hasEntry(key))) {
    const left = until - ctx.now();
    if (left <= 0) return false;
    await ctx.coordination.waitForEntry(key, Math.min(left, ctx.timing.pollMs * 4));
  }
  ctx.warn("reuse_raced", `a twin redeemed ${keyLabel(key)} concurrently; using its journal entry`, key);
  return true;
}

/** The spent marker of `token` as the endpoint's own answer (its provider's status and the body it sent), or null. */
async function spentRecord(ctx: GuardContext, key: string, token: string): Promise<Redemption | null> {
  const marker = await ctx.coordination.readSpent(key, token);
  if (marker === null) return null;
  const status = ctx.provider.spentStatus;
  return {
    kind: "spent",
    code: marker.code,
    response: { status, statusText: STATUS_TEXT[status] ?? "", headers: [["content-type", "application/json"]], body: marker.body },
  };
}

const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized" };
