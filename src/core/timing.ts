// Every duration the guard uses, with its default, in one place. The user-facing ones are set
// from the config table (src/config/options.ts), which reads its defaults from here.

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

export const DEFAULT_TIMING: Readonly<GuardTiming> = {
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

/**
 * One refresh's overall bound: the lock wait plus the request. Past it the caller gets a
 * DeadlineError (fail closed), whatever the journal or the backend keeps doing.
 */
export function refreshDeadlineMs(timing: Pick<GuardTiming, "waitTimeoutMs" | "requestTimeoutMs">): number {
  return timing.waitTimeoutMs + timing.requestTimeoutMs;
}

/** proper-lockfile refreshes a lock every `staleMs / 2`, at least every second. */
export function heartbeatFor(staleMs: number): number {
  return Math.max(1000, Math.floor(staleMs / 2));
}

/** Longest redemption chain a reader walks before giving up. */
export const MAX_CHAIN = 64;
/** Lock directories and owner records untouched this long are left over from crashes. */
export const LEFTOVER_LOCK_MS = 60 * 60 * 1000;
