// The owner record beside each file lock (who holds it: process-identity.ts fields, a nonce, and
// the lock directory it belongs to) and the proven-death shortcut that reads it: a waiter breaks a
// lock whose holder is provably dead instead of waiting out the heartbeat (see refresh-lock.ts).
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";

import { isRecord } from "../oauth/json.ts";
import type { LockEvents } from "./coordination.ts";
import { CREATE_FLAGS, DIR_MODE, FILE_MODE } from "./guard-dir.ts";
import { type ProcessIdentity, proveDead } from "./process-identity.ts";
import { isAbsent, SAFE_READ_FLAGS } from "./safe-read.ts";

/** Owner records are a few dozen bytes; anything larger is not one. */
const MAX_OWNER_BYTES = 4096;

/** What breaking a dead holder's lock needs from the lock set. */
export interface BreakContext {
  dir: string;
  staleMs: number;
  events: LockEvents;
  now: () => number;
  /** The last owner record read per key, with the lock directory it names: re-read only when that changes. */
  owners: Map<string, OwnerRecord>;
}

/**
 * Breaks the lock at `path` (whose stat is `stat`) if its owner record belongs to this very lock
 * directory and proves its holder dead; true if the lock is gone (now or meanwhile) and a try may
 * take it. False while the holder may live, the record is missing or another breaker is at work.
 */
export function breakDeadHolder(ctx: BreakContext, key: string, path: string, stat: fs.Stats): boolean {
  const ownerPath = join(ctx.dir, `${key}.owner`);
  // A waiter polls while the same holder keeps the same lock: its record is read once.
  let owner = ctx.owners.get(key) ?? null;
  if (owner === null || !ownsLock(owner, stat)) {
    owner = readOwner(ownerPath);
    if (owner === null || !ownsLock(owner, stat)) {
      ctx.owners.delete(key);
      return false;
    }
    ctx.owners.set(key, owner);
  }
  const proof = proveDead(owner as Partial<ProcessIdentity>);
  if (proof === null) return false;
  // Breakers take turns: whoever creates `<key>.breaking` checks and moves; the others wait a poll.
  const turn = join(ctx.dir, `${key}.breaking`);
  try {
    mkdirSync(turn, { mode: DIR_MODE });
  } catch (error) {
    // Breaking is a shortcut: anything odd here leaves the lock to the heartbeat.
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") return false;
    // A breaker that died mid-turn left its directory: clear it after staleMs; the next poll tries again.
    const left = lstatSyncOrNull(turn);
    if (left !== null && ctx.now() - left.mtimeMs > ctx.staleMs) rmSync(turn, { recursive: true, force: true });
    return false;
  }
  try {
    // Compare, then take: still the same directory and the same dead holder's record?
    const now = lstatSyncOrNull(path);
    if (now === null) return true;
    if (now.ino !== stat.ino || now.birthtimeMs !== stat.birthtimeMs) return false;
    const again = readOwner(ownerPath);
    if (again === null || again.nonce !== owner.nonce || !ownsLock(again, now)) return false;
    // The record first, so a newcomer's record is never the one removed; then the lock in one rename.
    const aside = join(ctx.dir, `.dead-${key}-${ctx.now()}-${randomBytes(3).toString("hex")}`);
    try {
      renameSync(ownerPath, `${aside}.owner`);
    } catch {
      return false;
    }
    try {
      renameSync(path, aside);
    } catch (error) {
      // Gone meanwhile (removed by a stale takeover): free either way. Else leave it to the heartbeat.
      if (!isAbsent(error)) return false;
    }
    rmSync(`${aside}.owner`, { force: true });
    rmSync(aside, { recursive: true, force: true });
    ctx.events.onDeadHolder?.(key, path, proof, owner.pid as number);
    ctx.owners.delete(key);
    return true;
  } finally {
    rmSync(turn, { recursive: true, force: true });
  }
}

/** An owner record's fields, as read (checked where used). */
export type OwnerRecord = Record<string, unknown> & { pid?: unknown; since?: unknown; nonce?: unknown; lock?: unknown };

/** Whether `owner` was written for the lock directory `stat` (the same inode and birth time). */
function ownsLock(owner: OwnerRecord, stat: fs.Stats): boolean {
  const lock = owner.lock;
  return isRecord(lock) && lock.ino === stat.ino && lock.born === stat.birthtimeMs;
}

export function lstatSyncOrNull(path: string): fs.Stats | null {
  try {
    return lstatSync(path);
  } catch (error) {
    if (isAbsent(error)) return null;
    throw error;
  }
}

/**
 * The owner record, or null when absent or not a readable record. Synchronous: a few dozen bytes,
 * opened without blocking and without following a link (never hangs on a FIFO).
 */
export function readOwner(path: string): OwnerRecord | null {
  let fd: number;
  try {
    fd = openSync(path, SAFE_READ_FLAGS);
  } catch {
    return null;
  }
  let text: string;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size > MAX_OWNER_BYTES) return null;
    const buffer = Buffer.alloc(stat.size);
    const read = readSync(fd, buffer, 0, stat.size, 0);
    text = buffer.toString("utf8", 0, read);
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
  try {
    const owner: unknown = JSON.parse(text);
    return isRecord(owner) ? owner : null;
  } catch {
    return null;
  }
}

export function readOwnerNonce(path: string): string | undefined {
  const nonce = readOwner(path)?.nonce;
  return typeof nonce === "string" ? nonce : undefined;
}

/** Written beside the lock and renamed into place: a reader sees the whole record or none. */
export function writeOwner(
  path: string,
  tmpDir: string,
  owner: ProcessIdentity & { since: number; nonce: string; lock: { ino: number; born: number } },
): void {
  const tmp = join(tmpDir, `${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(tmp, CREATE_FLAGS, FILE_MODE);
  try {
    fs.writeSync(fd, JSON.stringify(owner));
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
