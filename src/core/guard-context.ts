// What every part of one guard shares: the provider's rules, the coordination backend, timing,
// the clock, and the reporting of events. Built once by the RefreshGuard constructor.
import type { Provider } from "../providers/provider.ts";
import type { Coordination } from "../store/coordination.ts";
import { keyLabel } from "../store/token-crypto.ts";
import type { FailureReason, GuardEvent, WarningReason } from "./events.ts";
import type { GuardTiming } from "./timing.ts";

/** Named points of a redemption, for fault-injection tests. */
export type Stage = "lock-acquired" | "before-post" | "response-received" | "journal-before-link" | "journaled";

/** Performs the real token request for `refreshToken`; `signal` bounds it. */
export type Redeem = (refreshToken: string, signal: AbortSignal) => Promise<Response>;

export class GuardContext {
  /** The provider id as configured (`openai-codex` or a host's alias), for events and messages. */
  readonly providerId: string;
  readonly provider: Provider;
  readonly coordination: Coordination;
  readonly timing: GuardTiming;
  readonly now: () => number;
  readonly stage: (stage: Stage) => Promise<void> | void;
  private readonly emitEvent: (event: GuardEvent) => void;

  constructor(options: {
    providerId: string;
    provider: Provider;
    coordination: Coordination;
    timing: GuardTiming;
    now: () => number;
    stage: (stage: Stage) => Promise<void> | void;
    emit: (event: GuardEvent) => void;
  }) {
    this.providerId = options.providerId;
    this.provider = options.provider;
    this.coordination = options.coordination;
    this.timing = options.timing;
    this.now = options.now;
    this.stage = options.stage;
    this.emitEvent = options.emit;
  }

  emit(event: GuardEvent): void {
    this.emitEvent(event);
  }

  fail(key: string, reason: FailureReason, message: string, code?: string): void {
    const event: GuardEvent = { type: "failed", provider: this.providerId, key: keyLabel(key), reason, message };
    if (code !== undefined) event.code = code;
    this.emitEvent(event);
  }

  warn(reason: WarningReason, message: string, key?: string): void {
    const event: GuardEvent = { type: "warning", provider: this.providerId, reason, message };
    if (key !== undefined) event.key = keyLabel(key);
    this.emitEvent(event);
  }

  isFresh(expiresAt: number): boolean {
    return expiresAt - this.now() > this.timing.minValidityMs;
  }
}
