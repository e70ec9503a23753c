// Coordination through one guard directory: proper-lockfile locks under locks/, the journal under
// journal/, set-aside entries under quarantine/, waiters woken by a directory watch. Every process
// that sees the directory (one machine, or a shared volume) coordinates through it.
import { join, resolve } from "node:path";

import type { JournalCorruptError } from "../errors/errors.ts";
import type { TokenSet } from "../oauth/token-wire.ts";
import type { Coordination, HeldLock, LockEvents, LockHolder, Wake } from "./coordination.ts";
import { DirWatch } from "./dir-watch.ts";
import { ensurePrivateDir } from "./guard-dir.ts";
import { Journal, type JournalSize } from "./journal.ts";
import { RefreshLocks } from "./refresh-lock.ts";
import type { SpentMarker } from "./sealed-entry.ts";

export interface FileCoordinationOptions {
  guardDir: string;
  staleMs: number;
  updateMs: number;
  retentionMs: number;
  now?: () => number;
  events?: LockEvents;
  onQuarantine?: (error: JournalCorruptError) => void;
  /** Test seam: runs between the two halves of an entry's write. */
  midWrite?: () => Promise<void> | void;
  /** Keep the directory watch open this long after the last waiter leaves (the next wait reuses it). */
  watchLingerMs?: number;
}

export class FileCoordination implements Coordination {
  readonly kind = "file";
  readonly location: string;
  readonly journal: Journal;
  readonly locks: RefreshLocks;
  private readonly watch: DirWatch;
  private readonly quarantineDir: string;

  constructor(options: FileCoordinationOptions) {
    // Absolute once, so the directory checked at open() is the one every later path is built from.
    this.location = resolve(options.guardDir);
    this.quarantineDir = join(this.location, "quarantine");
    const now = options.now ?? Date.now;
    this.locks = new RefreshLocks(
      join(this.location, "locks"),
      { staleMs: options.staleMs, updateMs: options.updateMs },
      options.events,
      now,
    );
    const journal: ConstructorParameters<typeof Journal>[0] = {
      dir: join(this.location, "journal"),
      quarantineDir: this.quarantineDir,
      retentionMs: options.retentionMs,
      now,
    };
    if (options.onQuarantine) journal.onQuarantine = options.onQuarantine;
    if (options.midWrite) journal.midWrite = options.midWrite;
    this.journal = new Journal(journal);
    this.watch = new DirWatch([this.journal.dir, this.locks.dir], { lingerMs: options.watchLingerMs ?? 0 });
  }

  /** Checks and creates the guard directory (0700, ours, not a symlink) before first use. */
  async open(): Promise<void> {
    for (const dir of [this.location, this.locks.dir, this.journal.dir, this.quarantineDir]) await ensurePrivateDir(dir);
    await this.locks.primeMtimePrecision();
  }

  hasEntry(key: string): Promise<boolean> {
    return this.journal.has(key);
  }

  readEntry(key: string, spentToken: string): Promise<TokenSet | null> {
    return this.journal.read(key, spentToken);
  }

  writeEntry(key: string, spentToken: string, set: TokenSet): Promise<TokenSet> {
    return this.journal.write(key, spentToken, set);
  }

  markSpent(key: string, spentToken: string, code: string, body: string): Promise<void> {
    return this.journal.tombstone(key, spentToken, code, body);
  }

  readSpent(key: string, spentToken: string): Promise<SpentMarker | null> {
    return this.journal.readTombstone(key, spentToken);
  }

  tryLock(key: string): Promise<HeldLock | null> {
    return this.locks.tryAcquire(key);
  }

  lockLocation(key: string): string {
    return this.locks.lockPath(key);
  }

  async waitForChange(key: string, timeoutMs: number): Promise<Wake> {
    const entryName = this.journal.entryName(key);
    const wake = await this.watch.wait([entryName, this.locks.lockName(key)], timeoutMs);
    // The entry's own event means it was just linked (were it removed instead, the caller's read
    // finds nothing and comes back). A timeout with every directory watched means nothing changed.
    if (wake.kind === "timeout") return { kind: "timeout", watched: this.watch.watching };
    return wake.name === entryName ? { kind: "entry" } : { kind: "changed" };
  }

  async waitForEntry(key: string, timeoutMs: number): Promise<void> {
    await this.watch.wait([this.journal.entryName(key)], timeoutMs);
  }

  holders(): Promise<LockHolder[]> {
    return this.locks.holders();
  }

  size(): Promise<JournalSize> {
    return this.journal.size();
  }

  async prune(leftoverLockMs: number): Promise<number> {
    const [entries, locks] = await Promise.all([this.journal.prune(), this.locks.prune(leftoverLockMs)]);
    return entries + locks;
  }

  async close(): Promise<void> {
    // Nothing held open: the watch closes itself when its last waiter wakes.
  }
}
