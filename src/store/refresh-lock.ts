// One cross-process lock per coordination key (proper-lockfile: an atomic mkdir whose mtime the
// holder refreshes as a heartbeat; a lock whose mtime is older than `staleMs` belongs to a dead or
// frozen holder and is taken over). This module only tries once; the caller decides how to wait.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { promises as fsp } from "node:fs";
import { basename, join } from "node:path";
import lockfile from "proper-lockfile";

import { LockCompromisedError } from "../errors/errors.ts";
import { isRecord } from "../oauth/json.ts";
import type { HeldLock, LockEvents, LockHolder } from "./coordination.ts";
import { CREATE_FLAGS, DIR_MODE, FILE_MODE, lstatOrNull } from "./guard-dir.ts";
import { isAbsent, readRegularFile, SafeReadError } from "./safe-read.ts";

export type { HeldLock, LockEvents, LockHolder };

/** Owner records are a few dozen bytes; anything larger is not one. */
const MAX_OWNER_BYTES = 4096;
/** An owner record's temp file older than this was left by a crash. */
const OWNER_TMP_MAX_AGE_MS = 10 * 60 * 1000;

export interface LockTiming {
  /** A lock not refreshed for this long is stale and may be taken over (≥ 2000, proper-lockfile's floor). */
  staleMs: number;
  /** Heartbeat period (≥ 1000 and ≤ staleMs / 2, proper-lockfile's bounds). */
  updateMs: number;
}

export class RefreshLocks {
  readonly dir: string;
  private readonly timing: LockTiming;
  private readonly events: LockEvents;
  private readonly now: () => number;

  constructor(dir: string, timing: LockTiming, events: LockEvents = {}, now: () => number = Date.now) {
    this.dir = dir;
    this.timing = timing;
    this.events = events;
    this.now = now;
  }

  lockPath(key: string): string {
    return join(this.dir, `${key}.lock`);
  }

  /** Names a waiter watches in `dir` to learn that the lock for `key` was released. */
  lockName(key: string): string {
    return `${key}.lock`;
  }

  /** Takes the lock for `key` if it is free or stale; null while a live holder has it. */
  async tryAcquire(key: string): Promise<HeldLock | null> {
    const path = this.lockPath(key);
    let compromised = false;
    let release: () => Promise<void>;
    try {
      release = await this.lockOnce(key, () => {
        compromised = true;
        this.events.onCompromised?.(key, path);
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ELOCKED") {
        await this.breakFutureLock(key, path);
        return null;
      }
      // Something that is not a lock directory sits at the path (a regular file, or a stale lock
      // directory with a file inside that rmdir cannot remove): set it aside so the next try can
      // take the lock, instead of failing every refresh of this token until someone removes it.
      if (code === "ENOTDIR" || code === "ENOTEMPTY" || code === "EEXIST") {
        await this.setAside(path);
        return null;
      }
      throw error;
    }
    const stat = await fsp.stat(path);
    // A taken-over lock is a new directory at the same path, and filesystems reuse a freed inode
    // number at once (ext4 does), so the inode alone cannot tell ours from the newcomer's: compare
    // the birth time too, and a nonce in the owner record that a newcomer overwrites.
    const ino = stat.ino;
    const birthtimeMs = stat.birthtimeMs;
    const nonce = randomBytes(8).toString("hex");
    const ownerPath = join(this.dir, `${key}.owner`);
    await writeOwner(ownerPath, { pid: process.pid, since: this.now(), nonce });
    const stillOurs = async (): Promise<boolean> => {
      const current = await lstatOrNull(path);
      if (current === null || current.ino !== ino || current.birthtimeMs !== birthtimeMs) return false;
      return (await readOwnerNonce(ownerPath)) === nonce;
    };
    let released = false;
    return {
      key,
      path,
      get compromised() {
        return compromised;
      },
      assertHeld: async () => {
        if (compromised || !(await stillOurs())) {
          compromised = true;
          throw new LockCompromisedError(path);
        }
      },
      release: async () => {
        if (released) return;
        released = true;
        if (!compromised && !(await stillOurs())) compromised = true;
        // Taken over: the directory at `path` is the new holder's; removing it would free their lock.
        // Our heartbeat finds the foreign mtime on its next beat and stops by itself.
        if (compromised) return;
        await fsp.rm(ownerPath, { force: true });
        try {
          await release();
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          // Already released or taken over: nothing of ours to remove.
          if (code !== "ERELEASED" && code !== "ENOTACQUIRED" && code !== "ENOENT") throw error;
        }
      },
    };
  }

  /** Moves whatever blocks the lock path to `<locks>/.aside-<name>-<time>` (kept for inspection). */
  private async setAside(path: string): Promise<void> {
    const stat = await lstatOrNull(path);
    if (stat === null) return;
    // A live holder's lock is a directory it keeps fresh: leave a recent one alone.
    if (stat.isDirectory() && Math.abs(this.now() - stat.mtimeMs) <= this.timing.staleMs) return;
    const target = join(this.dir, `.aside-${basename(path)}-${this.now()}-${randomBytes(3).toString("hex")}`);
    await fsp.rename(path, target).catch((error: NodeJS.ErrnoException) => {
      if (!isAbsent(error)) throw error;
    });
    this.events.onBlocked?.(path, target);
  }

  /**
   * A lock whose mtime lies more than `staleMs` in the future was written by a clock that is
   * wrong (or a copied volume); proper-lockfile would never see it go stale. Remove it so the
   * next try can take over, and report it.
   */
  private async breakFutureLock(key: string, path: string): Promise<void> {
    const stat = await lstatOrNull(path);
    if (stat === null) return;
    if (!stat.isDirectory()) {
      await this.setAside(path);
      return;
    }
    const aheadMs = stat.mtimeMs - this.now();
    if (aheadMs <= this.timing.staleMs) return;
    this.events.onClockSkew?.(key, path, Math.round(aheadMs));
    await fsp.rm(join(this.dir, `${key}.owner`), { force: true });
    await fsp.rmdir(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOTEMPTY") return this.setAside(path);
      if (!isAbsent(error)) throw error;
    });
  }

  /**
   * proper-lockfile learns the filesystem's mtime precision on a process's first lock and, until
   * then, dates that lock up to a second into the future — which would delay a takeover after a
   * crash by as much. Taking and dropping a private throwaway lock once at start-up settles it.
   */
  async primeMtimePrecision(): Promise<void> {
    const release = await this.lockOnce(`.precision-${process.pid}-${randomBytes(4).toString("hex")}`, () => undefined);
    await release();
  }

  /** One proper-lockfile attempt at `<dir>/<name>.lock`, no retries, with our private fs. */
  private lockOnce(name: string, onCompromised: () => void): Promise<() => Promise<void>> {
    return lockfile.lock(join(this.dir, name), {
      lockfilePath: join(this.dir, `${name}.lock`),
      realpath: false,
      retries: 0,
      stale: this.timing.staleMs,
      update: this.timing.updateMs,
      fs: PRIVATE_FS,
      // proper-lockfile's default throws from a timer and would kill the host process.
      onCompromised,
    });
  }

  /**
   * Removes what crashed holders left behind for keys nobody presents again: lock directories
   * not refreshed for `maxAgeMs` (a live holder refreshes its lock every `updateMs`) and owner
   * records older than that whose lock is gone. Returns how many it removed.
   */
  async prune(maxAgeMs: number): Promise<number> {
    const names = await this.listing();
    const old = async (name: string, age = maxAgeMs) => {
      const stat = await lstatOrNull(join(this.dir, name));
      return stat !== null && this.now() - stat.mtimeMs > age ? stat : null;
    };
    const locksLeft = new Set(names.filter((name) => name.endsWith(".lock")));
    let removed = 0;
    for (const name of locksLeft) {
      if (!(await old(name))?.isDirectory()) continue;
      if (
        await fsp.rmdir(join(this.dir, name)).then(
          () => true,
          () => false,
        )
      ) {
        locksLeft.delete(name);
        removed += 1;
      }
    }
    for (const name of names) {
      if (name.includes(".owner.") && name.endsWith(".tmp") && (await old(name, OWNER_TMP_MAX_AGE_MS))?.isFile()) {
        await fsp.rm(join(this.dir, name), { force: true });
        removed += 1;
        continue;
      }
      if (!name.endsWith(".owner") || locksLeft.has(`${name.slice(0, -".owner".length)}.lock`)) continue;
      if (!(await old(name))?.isFile()) continue;
      await fsp.rm(join(this.dir, name), { force: true });
      removed += 1;
    }
    return removed;
  }

  private async listing(): Promise<string[]> {
    try {
      return await fsp.readdir(this.dir);
    } catch (error) {
      if (isAbsent(error)) return [];
      throw error;
    }
  }

  /** Current lock directories, with the holder's pid where it recorded one. */
  async holders(): Promise<LockHolder[]> {
    const names = await this.listing();
    const holders: LockHolder[] = [];
    for (const name of names) {
      if (!name.endsWith(".lock") || name.startsWith(".")) continue;
      const key = name.slice(0, -".lock".length);
      const stat = await lstatOrNull(join(this.dir, name));
      if (stat === null) continue;
      const born = stat.birthtimeMs > 0 ? stat.birthtimeMs : stat.ctimeMs;
      const holder: LockHolder = { key, ageMs: Math.max(0, Math.round(this.now() - born)) };
      // No owner record (crashed between mkdir and write), or not one: age alone.
      const owner = await readOwner(join(this.dir, `${key}.owner`));
      if (typeof owner?.pid === "number") holder.pid = owner.pid;
      if (typeof owner?.since === "number") holder.ageMs = Math.max(0, Math.round(this.now() - owner.since));
      holders.push(holder);
    }
    return holders;
  }
}

// proper-lockfile's lock directory, created 0700 rather than 0777 & ~umask.
const PRIVATE_FS = {
  ...fs,
  mkdir: (path: string, callback: (error: NodeJS.ErrnoException | null) => void) => fs.mkdir(path, { mode: DIR_MODE }, callback),
};

/** The owner record, or null when absent or not a readable record (never blocks on a FIFO). */
async function readOwner(path: string): Promise<{ pid?: unknown; since?: unknown; nonce?: unknown } | null> {
  let text: string;
  try {
    text = await readRegularFile(path, MAX_OWNER_BYTES);
  } catch (error) {
    if (error instanceof SafeReadError) return null;
    throw error;
  }
  try {
    const owner: unknown = JSON.parse(text);
    return isRecord(owner) ? owner : null;
  } catch {
    return null;
  }
}

async function readOwnerNonce(path: string): Promise<string | undefined> {
  const nonce = (await readOwner(path))?.nonce;
  return typeof nonce === "string" ? nonce : undefined;
}

async function writeOwner(path: string, owner: { pid: number; since: number; nonce: string }): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await fsp.open(tmp, CREATE_FLAGS, FILE_MODE);
  try {
    await handle.writeFile(JSON.stringify(owner));
  } finally {
    await handle.close();
  }
  await fsp.rename(tmp, path);
}
