// The one interface the guard core coordinates through. Every process that shares a backend
// (a guard directory, or a Redis server) redeems each refresh token at most once: it takes the
// key's lock, re-reads the journal, and only then sends. Implementations: file-coordination.ts.
import type { TokenSet } from "../oauth/token-wire.ts";
import type { JournalSize } from "./journal.ts";
import type { SpentMarker } from "./sealed-entry.ts";

/** A lock held by this process on one key (a lease with an owner check). */
export interface HeldLock {
  /** True once this process learned that another took the lock over. */
  readonly compromised: boolean;
  /** Throws LockCompromisedError unless this process still holds the very lock it took. */
  assertHeld(): Promise<void>;
  release(): Promise<void>;
}

export interface LockHolder {
  key: string;
  pid?: number;
  ageMs: number;
}

/**
 * Why a wait ended: the key's entry appeared; something about the key changed (or may have); or
 * time ran out, with `watched` true when the backend is sure nothing changed meanwhile.
 */
export type Wake = { kind: "entry" } | { kind: "changed" } | { kind: "timeout"; watched: boolean };

export interface LockEvents {
  onCompromised?(key: string, path: string): void;
  onClockSkew?(key: string, path: string, aheadMs: number): void;
  /** The holder of `key`'s lock was proven dead (`proof`) and its lock broken at once. */
  onDeadHolder?(key: string, path: string, proof: "dead" | "zombie" | "reused", pid: number): void;
  /** Something that was not a lock blocked the lock path; it was moved to `movedTo`. */
  onBlocked?(path: string, movedTo: string): void;
}

export interface Coordination {
  /** `file` or `redis`, for status. */
  readonly kind: string;
  /** Where it coordinates, for status and messages: a directory, or a URL without its password. */
  readonly location: string;
  /** Creates or checks what it needs; throws a RefreshGuardError that says how to fix it. */
  open(): Promise<void>;

  hasEntry(key: string): Promise<boolean>;
  /** The successor of `spentToken`, or null (unreadable entries are set aside and reported). */
  readEntry(key: string, spentToken: string): Promise<TokenSet | null>;
  /** Put-if-absent: returns the set that is stored (the first writer's). */
  writeEntry(key: string, spentToken: string, set: TokenSet): Promise<TokenSet>;
  /** Marks `spentToken` spent, sealed under it; the first marker stays. */
  markSpent(key: string, spentToken: string, code: string, body: string): Promise<void>;
  readSpent(key: string, spentToken: string): Promise<SpentMarker | null>;

  /** Takes the key's lock if it is free or its holder is dead; null while a live holder has it. */
  tryLock(key: string): Promise<HeldLock | null>;
  /** Where the key's lock lives, for messages. */
  lockLocation(key: string): string;
  /** Resolves when the key's entry appears or its lock is released, or after `timeoutMs`. */
  waitForChange(key: string, timeoutMs: number): Promise<Wake>;
  /** Resolves when the key's entry appears, or after `timeoutMs`. */
  waitForEntry(key: string, timeoutMs: number): Promise<void>;

  holders(): Promise<LockHolder[]>;
  size(): Promise<JournalSize>;
  /** Removes what retention and crashed holders left; resolves to how many items went. */
  prune(leftoverLockMs: number): Promise<number>;
  close(): Promise<void>;
}
