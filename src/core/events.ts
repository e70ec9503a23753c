// What the guard reports: one event per outcome or problem, as a closed set of reasons, and the
// one function that turns an event into the `[refresh-guard] event=… key=value` log line.

export type FailureReason =
  | "endpoint_error"
  | "endpoint_timeout"
  | "network"
  | "relogin_required"
  | "lock_timeout"
  | "response_too_large"
  | "deadline";

export type WarningReason =
  | "lock_compromised"
  | "lock_clock_skew"
  | "lock_holder_dead"
  | "lock_blocked"
  | "journal_quarantined"
  | "reuse_raced"
  | "sibling_failed"
  | "sibling_identity_mismatch"
  | "sibling_unreadable"
  | "sibling_write_back_failed"
  | "sibling_write_back_skipped"
  | "prune_failed"
  | "late_answer_unjournaled"
  | "backend_unavailable"
  | "backend_unreplicated"
  | "unguarded_refresh";

export type GuardEvent =
  | { type: "redeemed" | "shared"; provider: string; key: string; hops: number; ms: number }
  | { type: "recovered"; provider: string; key: string; source: string; ms: number }
  | { type: "failed"; provider: string; key: string; reason: FailureReason; code?: string; message: string }
  | { type: "warning"; provider: string; key?: string; reason: WarningReason; message: string };

export type OutcomeType = GuardEvent["type"];
export const OUTCOME_TYPES: readonly OutcomeType[] = ["redeemed", "shared", "recovered", "failed", "warning"];

/** Free-text fields, always quoted. */
const QUOTED = new Set(["source", "msg"]);

/** A log line's fields, in order; values are quoted when they could break the line. */
export type LogFields = Readonly<Record<string, string | number | undefined>>;

/** `[refresh-guard] event=redeemed provider=openai-codex key=1a2b3c4d hops=0 ms=212` */
export function formatLine(fields: LogFields): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const text = typeof value === "number" ? String(Math.round(value)) : QUOTED.has(name) ? quote(value) : formatValue(value);
    parts.push(`${name}=${text}`);
  }
  return `[refresh-guard] ${parts.join(" ")}`;
}

export function formatEvent(event: GuardEvent): string {
  return formatLine({
    event: event.type,
    provider: event.provider,
    key: event.key,
    reason: "reason" in event ? event.reason : undefined,
    code: "code" in event ? event.code : undefined,
    hops: "hops" in event ? event.hops : undefined,
    source: "source" in event ? event.source : undefined,
    ms: "ms" in event ? event.ms : undefined,
    msg: "message" in event ? event.message : undefined,
  });
}

/** A bare word stays as it is; anything else (spaces, quotes, control characters) is JSON-quoted. */
function formatValue(value: string): string {
  return /^[\w.:/@+-]*$/.test(value) ? value : quote(value);
}

/** JSON-quoted, so a newline or an escape sequence from outside can never start a forged line. */
function quote(text: string): string {
  return JSON.stringify(text).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}
