// Who holds a lock, precisely enough to prove that holder dead: the boot (a pid means nothing
// across reboots), the pid namespace (a pid means nothing across containers), the pid, and the
// process's start time (a pid is reused once its process is gone). Read from Linux's /proc; where
// any of it is missing, nothing is ever proven and a waiter falls back to the lock's heartbeat.
//
// Proof is deliberately narrow. A holder is dead only when, in the very boot and pid namespace
// that wrote the record, its pid does not exist (ESRCH), is a zombie (it exited and nobody reaped
// it yet: it cannot send anything any more), or belongs to a process started at another time (the
// pid was reused). Everything else, a stopped (SIGSTOP), frozen or swapped-out holder included,
// counts as alive: it may still wake and send its request.
import { readFileSync, readlinkSync } from "node:fs";

/** The holder's part of a lock's owner record. Every field but `pid` may be absent (no /proc). */
export interface ProcessIdentity {
  pid: number;
  /** /proc/sys/kernel/random/boot_id */
  boot?: string;
  /** readlink /proc/self/ns/pid, e.g. `pid:[4026531836]` */
  pidns?: string;
  /** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. */
  start?: string;
}

export type DeathProof = "dead" | "zombie" | "reused";

let self: ProcessIdentity | undefined;

/** This process's identity, read once. */
export function selfIdentity(): ProcessIdentity {
  if (self !== undefined && self.pid === process.pid) return self;
  const identity: ProcessIdentity = { pid: process.pid };
  const boot = readText("/proc/sys/kernel/random/boot_id");
  const pidns = readLink("/proc/self/ns/pid");
  const stat = readStat("self");
  // /proc must be this namespace's own (a container may mount another's): its "self" is our pid.
  if (boot !== undefined && pidns !== undefined && stat !== null && stat.pid === process.pid) {
    identity.boot = boot;
    identity.pidns = pidns;
    identity.start = stat.start;
  }
  self = identity;
  return identity;
}

/**
 * Why the process `owner` describes is certainly gone, or null when that cannot be proven (it is
 * alive, stopped, in another boot or namespace, or the record or this machine lacks what a proof needs).
 */
export function proveDead(owner: Partial<ProcessIdentity>): DeathProof | null {
  const here = selfIdentity();
  if (here.boot === undefined || here.pidns === undefined) return null;
  const { pid, boot, pidns, start } = owner;
  if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0 || typeof start !== "string") return null;
  if (boot !== here.boot || pidns !== here.pidns) return null;
  if (pid === process.pid) return start === here.start ? null : "reused";
  const stat = readStat(String(pid));
  if (stat === null) return signalSays(pid);
  if (stat.start !== start) return "reused";
  // Z: exited, waiting to be reaped; X: being torn down. T/t (stopped, traced) are alive.
  if (stat.state === "Z" || stat.state === "X") return "zombie";
  return null;
}

/** No /proc entry for the pid: dead only if the kernel agrees (ESRCH). */
function signalSays(pid: number): DeathProof | null {
  try {
    process.kill(pid, 0);
    return null;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH" ? "dead" : null;
  }
}

/** pid, state and start time from /proc/<pid>/stat; null when there is no such process. */
function readStat(pid: string): { pid: number; state: string; start: string } | null {
  const text = readText(`/proc/${pid}/stat`);
  if (text === undefined) return null;
  // The command name (field 2) is in parentheses and may itself contain spaces or parentheses.
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const rest = text.slice(close + 2).split(" ");
  // rest[0] is field 3 (state); field 22 (starttime) is rest[19].
  const state = rest[0];
  const start = rest[19];
  if (state === undefined || start === undefined || !/^\d+$/.test(start)) return null;
  return { pid: Number.parseInt(text, 10), state, start };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
