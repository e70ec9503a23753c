// Outcomes shared by every process of one guard directory, for `openclaw refresh-guard status`:
// one JSON line per outcome appended to status/outcomes.jsonl (O_APPEND, small writes), rotated
// to outcomes.1.jsonl past a size bound, so the record never grows without limit. No tokens:
// events carry only provider, key label, reason and timings.
import { closeSync, constants, promises as fsp, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { threadId } from "node:worker_threads";

import { type GuardEvent, OUTCOME_TYPES, type OutcomeType } from "../core/events.ts";
import { isRecord } from "../oauth/json.ts";
import { ensurePrivateDir, FILE_MODE } from "../store/guard-dir.ts";
import { readRegularFile, SafeReadError } from "../store/safe-read.ts";
import { threadLabel } from "../store/thread-label.ts";

const MAX_BYTES = 256 * 1024;
const RECENT = 20;
/** threads.jsonl: one line per thread whose seam attached (a worker restart adds one). */
const MAX_THREAD_BYTES = 64 * 1024;

/** A thread of a host process in which the guard attached (threads.jsonl). */
export interface AttachedThread {
  at: number;
  pid: number;
  /** "main" or "worker:<script>". */
  thread: string;
  threadId: number;
  seams: string[];
}

export interface OutcomeRecord {
  at: number;
  pid: number;
  type: GuardEvent["type"];
  provider: string;
  reason?: string;
  code?: string;
  /** "main" or "worker:<script>" (absent in records written before threads were recorded). */
  thread?: string;
}

type Counts = Record<"redeemed" | "shared" | "recovered" | "failed" | "warning", number>;

export interface OutcomeSummary {
  counts: Counts;
  /** The same counts per thread label ("main", "worker:prepared-model-catalog.worker.js", …). */
  byThread: Record<string, Counts>;
  /** Warnings `unguarded_refresh`: token POSTs seen outside the guard. */
  unguarded: number;
  last: Partial<Record<"redeemed" | "shared" | "recovered" | "failed", number>>;
  recent: OutcomeRecord[];
  unreadableLines: number;
}

// O_NONBLOCK: a FIFO planted at the path fails at once (ENXIO) instead of hanging the writer.
const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Stores holding coalesced lines not handed to a write yet: written synchronously if the process exits first. */
const unwritten = new Set<StatusStore>();
let exitHooked = false;

export class StatusStore {
  readonly dir: string;
  private readonly now: () => number;
  /** Lines recorded since the last write began. */
  private pending: string[] = [];
  private flush: Promise<void> | null = null;
  private readonly writes = new Set<Promise<void>>();

  /**
   * Outcomes recorded in one turn of the event loop (a redemption and every caller that shared it)
   * go out as one append, after those callers were answered, instead of one open/write/stat/close
   * each on the waiters' wake path.
   */
  constructor(dir: string, now: () => number = Date.now) {
    this.dir = dir;
    this.now = now;
  }

  private get file(): string {
    return join(this.dir, "outcomes.jsonl");
  }

  record(event: GuardEvent): Promise<void> {
    const record: OutcomeRecord = { at: this.now(), pid: process.pid, type: event.type, provider: event.provider, thread: THREAD };
    if ("reason" in event) record.reason = event.reason;
    if ("code" in event && event.code !== undefined) record.code = event.code;
    const line = `${JSON.stringify(record)}\n`;
    this.pending.push(line);
    unwritten.add(this);
    if (!exitHooked) {
      exitHooked = true;
      process.on("exit", () => {
        for (const store of unwritten) store.writePendingSync();
      });
    }
    this.flush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const lines = this.pending.join("");
      this.pending = [];
      this.flush = null;
      unwritten.delete(this);
      return this.track(this.append(lines));
    });
    return this.flush;
  }

  /** At exit: the coalesced lines no write has taken yet (best effort, like any write at exit). */
  private writePendingSync(): void {
    if (this.pending.length === 0) return;
    const lines = this.pending.join("");
    this.pending = [];
    try {
      const fd = openSync(this.file, APPEND_FLAGS, FILE_MODE);
      try {
        writeSync(fd, lines);
      } finally {
        closeSync(fd);
      }
    } catch {
      // The status record is informational; never fail an exit over it.
    }
  }

  private track(write: Promise<void>): Promise<void> {
    this.writes.add(write);
    write.then(
      () => this.writes.delete(write),
      () => this.writes.delete(write),
    );
    return write;
  }

  private async append(lines: string): Promise<void> {
    const handle = await fsp.open(this.file, APPEND_FLAGS, FILE_MODE);
    try {
      if (!(await handle.stat()).isFile()) throw new Error(`${this.file} is not a regular file`);
      await handle.write(lines);
      if ((await handle.stat()).size > MAX_BYTES) await fsp.rename(this.file, join(this.dir, "outcomes.1.jsonl"));
    } finally {
      await handle.close();
    }
  }

  /** Notes that this thread's seams attached (one line per thread; read back by threads()). */
  async recordAttached(seams: readonly string[]): Promise<void> {
    const line: AttachedThread = { at: this.now(), pid: process.pid, thread: THREAD, threadId, seams: [...seams] };
    const file = join(this.dir, "threads.jsonl");
    const handle = await fsp.open(file, APPEND_FLAGS, FILE_MODE);
    try {
      if (!(await handle.stat()).isFile()) throw new Error(`${file} is not a regular file`);
      await handle.write(`${JSON.stringify(line)}\n`);
      if ((await handle.stat()).size > MAX_THREAD_BYTES) await fsp.rename(file, join(this.dir, "threads.1.jsonl"));
    } finally {
      await handle.close();
    }
  }

  /** The most recent attach record of each (pid, thread id), newest last, at most `limit`. */
  async threads(limit = RECENT): Promise<AttachedThread[]> {
    const latest = new Map<string, AttachedThread>();
    for (const text of await readRotated(this.dir, "threads", MAX_THREAD_BYTES)) {
      for (const line of text.split("\n")) {
        const record = parseThread(line);
        if (record === null) continue;
        const key = `${record.pid}/${record.threadId}`;
        latest.delete(key);
        latest.set(key, record);
      }
    }
    return [...latest.values()].slice(-limit);
  }

  async summary(): Promise<OutcomeSummary> {
    // This process's own outcomes not written yet.
    await this.flush?.catch(() => undefined);
    await Promise.allSettled([...this.writes]);
    const summary: OutcomeSummary = {
      counts: { redeemed: 0, shared: 0, recovered: 0, failed: 0, warning: 0 },
      byThread: {},
      unguarded: 0,
      last: {},
      recent: [],
      unreadableLines: 0,
    };
    for (const text of await readRotated(this.dir, "outcomes", MAX_BYTES)) {
      for (const line of text.split("\n")) {
        if (line === "") continue;
        const record = parseRecord(line);
        if (record === null) {
          summary.unreadableLines += 1;
          continue;
        }
        summary.counts[record.type] += 1;
        const thread = record.thread ?? "unrecorded";
        summary.byThread[thread] ??= { redeemed: 0, shared: 0, recovered: 0, failed: 0, warning: 0 };
        summary.byThread[thread][record.type] += 1;
        if (record.reason === "unguarded_refresh") summary.unguarded += 1;
        if (record.type !== "warning") summary.last[record.type] = Math.max(summary.last[record.type] ?? 0, record.at);
        summary.recent.push(record);
        if (summary.recent.length > RECENT) summary.recent.shift();
      }
    }
    return summary;
  }
}

/** One line of the record, checked field by field; null for anything that is not a record we wrote. */
function parseRecord(line: string): OutcomeRecord | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isRecord(parsed)) return null;
  const { at, pid, type, provider, reason, code, thread } = parsed;
  if (typeof at !== "number" || typeof pid !== "number" || typeof provider !== "string") return null;
  if (typeof type !== "string" || !(OUTCOME_TYPES as readonly string[]).includes(type)) return null;
  const record: OutcomeRecord = { at, pid, type: type as OutcomeType, provider };
  if (typeof reason === "string") record.reason = reason;
  if (typeof code === "string") record.code = code;
  if (typeof thread === "string" && THREAD_PATTERN.test(thread)) record.thread = thread;
  return record;
}

/** Notes in `<statusDir>/threads.jsonl` that this thread's `seams` attached (creates the dir 0700). */
export async function recordThreadAttached(statusDir: string, seams: readonly string[]): Promise<void> {
  await ensurePrivateDir(statusDir);
  await new StatusStore(statusDir).recordAttached(seams);
}

/** What a thread label may look like (a file name; nothing that could break a status line). */
const THREAD_PATTERN = /^(main|worker:[\w.@+-]{1,120})$/;
const THREAD = threadLabel();

function parseThread(line: string): AttachedThread | null {
  if (line === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isRecord(parsed)) return null;
  const { at, pid, thread, threadId: id, seams } = parsed;
  if (typeof at !== "number" || typeof pid !== "number" || typeof id !== "number") return null;
  if (typeof thread !== "string" || !THREAD_PATTERN.test(thread)) return null;
  if (!Array.isArray(seams) || !seams.every((seam) => typeof seam === "string" && /^[\w-]{1,40}$/.test(seam))) return null;
  return { at, pid, thread, threadId: id, seams: seams as string[] };
}

/**
 * The texts of `<base>.1.jsonl` and `<base>.jsonl`, older first; a missing or unsafe file is left out.
 * Rotation keeps a file near `maxBytes`; a margin allows for appends that raced the rotation.
 */
async function readRotated(dir: string, base: string, maxBytes: number): Promise<string[]> {
  const texts: string[] = [];
  for (const name of [`${base}.1.jsonl`, `${base}.jsonl`]) {
    try {
      texts.push(await readRegularFile(join(dir, name), maxBytes * 4));
    } catch (error) {
      if (!(error instanceof SafeReadError)) throw error;
    }
  }
  return texts;
}
