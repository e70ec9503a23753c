// Outcomes shared by every process of one guard directory, for `openclaw refresh-guard status`:
// one JSON line per outcome appended to status/outcomes.jsonl (O_APPEND, small writes), rotated
// to outcomes.1.jsonl past a size bound, so the record never grows without limit. No tokens:
// events carry only provider, key label, reason and timings.
import { closeSync, constants, promises as fsp, openSync, writeSync } from "node:fs";
import { join } from "node:path";

import { type GuardEvent, OUTCOME_TYPES, type OutcomeType } from "../core/events.ts";
import { isRecord } from "../oauth/json.ts";
import { FILE_MODE } from "../store/guard-dir.ts";
import { readRegularFile, SafeReadError } from "../store/safe-read.ts";

const MAX_BYTES = 256 * 1024;
const RECENT = 20;

export interface OutcomeRecord {
  at: number;
  pid: number;
  type: GuardEvent["type"];
  provider: string;
  reason?: string;
  code?: string;
  ms?: number;
}

export interface OutcomeSummary {
  counts: Record<"redeemed" | "shared" | "recovered" | "failed" | "warning", number>;
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
  private readonly coalesce: boolean;
  /** Lines recorded since the last write began (coalesce only). */
  private pending: string[] = [];
  private flush: Promise<void> | null = null;
  private readonly writes = new Set<Promise<void>>();

  /**
   * `coalesce` (default true): outcomes recorded in one turn of the event loop (a redemption and
   * every caller that shared it) go out as one append, after those callers were answered, instead
   * of one open/write/stat/close each on the waiters' wake path.
   */
  constructor(dir: string, now: () => number = Date.now, options: { coalesce?: boolean } = {}) {
    this.dir = dir;
    this.now = now;
    this.coalesce = options.coalesce ?? true;
  }

  private get file(): string {
    return join(this.dir, "outcomes.jsonl");
  }

  record(event: GuardEvent): Promise<void> {
    const record: OutcomeRecord = { at: this.now(), pid: process.pid, type: event.type, provider: event.provider };
    if ("reason" in event) record.reason = event.reason;
    if ("code" in event && event.code !== undefined) record.code = event.code;
    if ("ms" in event) record.ms = event.ms;
    const line = `${JSON.stringify(record)}\n`;
    if (!this.coalesce) return this.track(this.append(line));
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

  async summary(): Promise<OutcomeSummary> {
    // This process's own outcomes not written yet.
    await this.flush?.catch(() => undefined);
    await Promise.allSettled([...this.writes]);
    const summary: OutcomeSummary = {
      counts: { redeemed: 0, shared: 0, recovered: 0, failed: 0, warning: 0 },
      last: {},
      recent: [],
      unreadableLines: 0,
    };
    for (const name of ["outcomes.1.jsonl", "outcomes.jsonl"]) {
      let text: string;
      try {
        // Rotation keeps a file near MAX_BYTES; allow a margin for appends that raced the rotation.
        text = await readRegularFile(join(this.dir, name), MAX_BYTES * 4);
      } catch (error) {
        if (error instanceof SafeReadError) continue;
        throw error;
      }
      for (const line of text.split("\n")) {
        if (line === "") continue;
        const record = parseRecord(line);
        if (record === null) {
          summary.unreadableLines += 1;
          continue;
        }
        summary.counts[record.type] += 1;
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
  const { at, pid, type, provider, reason, code, ms } = parsed;
  if (typeof at !== "number" || typeof pid !== "number" || typeof provider !== "string") return null;
  if (typeof type !== "string" || !(OUTCOME_TYPES as readonly string[]).includes(type)) return null;
  const record: OutcomeRecord = { at, pid, type: type as OutcomeType, provider };
  if (typeof reason === "string") record.reason = reason;
  if (typeof code === "string") record.code = code;
  if (typeof ms === "number") record.ms = ms;
  return record;
}
