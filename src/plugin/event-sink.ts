// Where a guard's events go: one `key=value` line each to the host logger (routine outcomes at
// debug, problems at warn/error) and one record each in the status record, for the status command.
import { formatEvent, formatLine, type GuardEvent } from "../core/events.ts";
import type { StatusStore } from "./status-record.ts";

export interface HostLogger {
  debug?: (message: string) => void;
  info: (message: string) => void;
  warn: (message: string) => void;
  error: (message: string) => void;
}

export class EventSink {
  private readonly logger: HostLogger;
  private readonly status: StatusStore;
  private readonly logged = new Set<string>();

  constructor(logger: HostLogger, status: StatusStore) {
    this.logger = logger;
    this.status = status;
  }

  readonly onEvent = (event: GuardEvent): void => {
    const line = formatEvent(event);
    // OpenClaw's info goes to stdout, in front of commands' --json output: routine outcomes go to
    // debug (and to the status record); problems to warn/error, which go to stderr.
    if (event.type === "failed") this.logger.error(line);
    else if (event.type === "warning") this.logger.warn(line);
    else this.logger.debug?.(line);
    this.status.record(event).catch((error: Error) => this.logOnce("warn", formatLine({ event: "status_unwritable", msg: error.message })));
  };

  /** A line logged once per process however often it recurs (a guard dir that stays unusable). */
  logOnce(level: "warn" | "error", line: string): void {
    if (this.logged.has(line)) return;
    this.logged.add(line);
    this.logger[level](line);
  }
}
