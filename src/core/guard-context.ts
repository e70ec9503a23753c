// What every part of one guard shares: the provider's rules, the coordination backend, timing,
// the clock, and the reporting of events. Built once by the RefreshGuard constructor.
import type { TokenSet } from "../oauth/token-wire.ts";
import type { Provider } from "../providers/provider.ts";
import type { SiblingSource } from "../siblings/sibling-source.ts";
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
  private readonly handBackTo: readonly SiblingSource[];

  constructor(options: {
    providerId: string;
    provider: Provider;
    coordination: Coordination;
    timing: GuardTiming;
    now: () => number;
    stage: (stage: Stage) => Promise<void> | void;
    emit: (event: GuardEvent) => void;
    /** Sources that take the successor of a token their file holds (the Codex CLI's auth.json). */
    handBackTo?: readonly SiblingSource[];
  }) {
    this.providerId = options.providerId;
    this.provider = options.provider;
    this.coordination = options.coordination;
    this.timing = options.timing;
    this.now = options.now;
    this.stage = options.stage;
    this.emitEvent = options.emit;
    this.handBackTo = (options.handBackTo ?? []).filter((source) => source.handBack !== undefined);
  }

  /**
   * `spent` was just exchanged for `successor` (called with the lock still held): every other
   * holder the guard knows of that still holds `spent` gets `successor`, so it keeps a live token.
   */
  async handBack(spent: string, successor: TokenSet, key: string): Promise<void> {
    if (successor.refreshToken === spent) return;
    for (const source of this.handBackTo) {
      try {
        const result = await source.handBack?.(spent, successor);
        if (result?.kind === "left") this.warn("sibling_write_back_skipped", `${source.name}: ${result.reason}`, key);
      } catch (error) {
        this.warn(
          "sibling_write_back_failed",
          `could not hand the successor back to ${source.name}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
          key,
        );
      }
    }
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
