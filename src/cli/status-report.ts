// The status command's report and its text form. Built only from labels, counts, paths and times.
// The shapes live here, with their one reader; plugin/ fills them.

import type { OutcomeType } from "../core/events.ts";
import type { SeamName } from "../hosts/detect-seam.ts";
import type { HostAssessment } from "../hosts/host-compat.ts";
import type { JournalSize } from "../store/journal.ts";

export interface CoordinationStatus {
  backend: "file" | "redis";
  /** The guard directory, or the Redis URL without its password. */
  location: string;
  /** Redis only: whether a PING was answered, and how fast. */
  reachable?: boolean;
  latencyMs?: number;
  problem?: string;
  /** Redis only: what happens while it is unreachable. */
  onUnavailable?: "fail" | "file";
  /** Redis only: the server answering (with Sentinel: the current primary), the sentinels, TLS, WAIT. */
  primary?: string;
  sentinels?: string[];
  masterName?: string;
  tls?: boolean;
  replicaAcks?: number;
}

export interface GuardStatus {
  guardDir: string;
  coordination: CoordinationStatus;
  guardDirProblem?: string;
  providers: { id: string; tokenUrl: string }[];
  /** State dirs recovery reads besides this one, and whether they were found ("auto") or listed. */
  siblingStateDirs: { setting: "auto" | "listed"; dirs: string[] };
  /** Each enabled provider's own credential files (`codex cli auth`), null where not read; whether each is there. */
  providerFiles: { label: string; path: string | null; exists?: boolean }[];
  locks: { key: string; pid?: number; ageMs: number }[];
  journal: JournalSize;
  outcomes: Record<OutcomeType, number>;
  lastOutcomeAt: Partial<Record<"redeemed" | "shared" | "recovered" | "failed", string>>;
  recent: { at: string; type: string; provider: string; reason?: string; code?: string; pid: number; thread?: string }[];
  /** Outcomes per thread label, and the worker threads whose seams attached most recently. */
  threads: {
    outcomes: Record<string, Record<OutcomeType, number>>;
    attached: { at: string; pid: number; thread: string; seams: string[] }[];
  };
  /** Token POSTs seen leaving a thread outside the guard (warning `unguarded_refresh`). */
  unguardedRefreshes: number;
  /** Profiles of this state dir the host fenced after a failed refresh (`<store>#<profile id>`; re-login needed). */
  fencedProfiles: string[];
}

export interface StatusReport {
  plugin: { id: string; version: string };
  host: HostAssessment & {
    hook: "attached" | "not attached";
    /** The attached seam this host's token refresh goes through (2026.4/5: global-fetch, 2026.6+: host-undici), or "none". */
    seam: SeamName | "none";
    /** Every attached seam in this process. */
    seams: SeamName[];
    /** Why host-undici is not attached, where the host lacks it. */
    seamProblem?: string;
    /** Whether worker threads started from now on in this process load the guard (worker-seam.ts). */
    workerThreads?: "attached" | "not attached";
  };
  configProblem?: string;
  guard?: GuardStatus;
}

export function formatStatus(report: StatusReport): string {
  const lines: string[] = [];
  const { host } = report;
  lines.push(
    `refresh-guard ${report.plugin.version} on OpenClaw ${host.version ?? "(version unknown)"}: hook ${host.hook}` +
      `${host.seams.length > 0 ? ` (${seamsText(host.seam, host.seams)})` : ""}` +
      `${host.supported ? "" : " — host not supported"}`,
  );
  if (host.note) lines.push(`  ${host.note}`);
  if (host.seamProblem) lines.push(`  ${host.seamProblem}`);
  if (host.workerThreads === "attached") lines.push("  worker threads: each new worker thread of this process loads the guard");
  if (report.configProblem) lines.push(`config: ${report.configProblem}`);
  const guard = report.guard;
  if (guard) {
    lines.push(`guard dir: ${guard.guardDir}`);
    if (guard.guardDirProblem) lines.push(`  unusable: ${guard.guardDirProblem}`);
    lines.push(coordinationLine(guard.coordination));
    if (guard.coordination.problem) lines.push(`  ${guard.coordination.problem}`);
    lines.push(
      `providers: ${guard.providers.length === 0 ? "none enabled" : guard.providers.map((p) => `${p.id} (${p.tokenUrl})`).join(", ")}`,
    );
    const siblings = guard.siblingStateDirs;
    lines.push(
      `sibling state dirs (${siblings.setting === "auto" ? "found: ~/.openclaw, ~/.openclaw-*" : "listed"}): ${siblings.dirs.length === 0 ? "none" : siblings.dirs.join(", ")}`,
    );
    for (const file of guard.providerFiles)
      lines.push(`${file.label}: ${file.path === null ? "not read" : `${file.path} (${file.exists ? "present" : "absent"})`}`);
    lines.push(
      `locks: ${guard.locks.length === 0 ? "none held" : guard.locks.map((l) => `${l.key} pid ${l.pid ?? "?"} for ${(l.ageMs / 1000).toFixed(1)} s`).join(", ")}`,
    );
    const j = guard.journal;
    lines.push(`journal: ${j.entries} entries, ${j.tombstones} spent markers, ${j.quarantined} quarantined, ${j.bytes} bytes`);
    const o = guard.outcomes;
    const last = (type: keyof GuardStatus["lastOutcomeAt"]) => (guard.lastOutcomeAt[type] ? ` (last ${guard.lastOutcomeAt[type]})` : "");
    lines.push(
      `outcomes: redeemed ${o.redeemed}${last("redeemed")}, shared from journal ${o.shared}${last("shared")}, ` +
        `recovered from sibling ${o.recovered}${last("recovered")}, failed ${o.failed}${last("failed")}`,
    );
    const threads = Object.entries(guard.threads.outcomes);
    if (threads.length > 0) {
      lines.push(
        `outcomes by thread: ${threads.map(([thread, c]) => `${thread} redeemed ${c.redeemed}, shared ${c.shared}, recovered ${c.recovered}, failed ${c.failed}`).join("; ")}`,
      );
    }
    if (guard.threads.attached.length > 0) {
      lines.push(
        `guarded threads (latest): ${guard.threads.attached.map((t) => `${t.thread} pid ${t.pid} (${t.seams.join(", ")}) since ${t.at}`).join("; ")}`,
      );
    }
    if (guard.unguardedRefreshes > 0) {
      lines.push(
        `WARNING: ${guard.unguardedRefreshes} token refresh${guard.unguardedRefreshes === 1 ? " was" : "es were"} seen leaving a thread without the guard ` +
          "(see recent: unguarded_refresh); such a refresh can race and get the profile fenced",
      );
    }
    if (guard.fencedProfiles.length > 0) {
      lines.push(
        `WARNING: the host fenced ${guard.fencedProfiles.join(", ")} after a failed refresh (log in again: openclaw models auth login --provider openai)` +
          (guard.outcomes.failed === 0
            ? "; refresh-guard recorded no failure, so that refresh ran in a thread or process without the guard"
            : ""),
      );
    }
    if (guard.recent.length > 0) {
      lines.push("recent:");
      for (const r of guard.recent) {
        lines.push(
          `  ${r.at} ${r.type} ${r.provider}${r.reason ? ` ${r.reason}` : ""}${r.code ? ` (${r.code})` : ""} pid ${r.pid}${r.thread ? ` ${r.thread}` : ""}`,
        );
      }
    }
  }
  // Every field may come from outside (an endpoint's error code, a path): no control character
  // reaches the terminal (no escape sequence, no clipboard write, no forged line).
  return `${lines.map(printable).join("\n")}\n`;
}

/** C0/C1 control characters, line/paragraph separators and bidi overrides. */
function unprintable(code: number): boolean {
  return (
    code <= 0x1f ||
    (code >= 0x7f && code <= 0x9f) ||
    code === 0x2028 ||
    code === 0x2029 ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

/** `text` with every unprintable character shown as a \u escape. */
function printable(text: string): string {
  let out = "";
  for (const char of text) {
    const code = char.charCodeAt(0);
    out += unprintable(code) ? `\\u${code.toString(16).padStart(4, "0")}` : char;
  }
  return out;
}

function seamsText(seam: string, seams: readonly string[]): string {
  const others = seams.filter((s) => s !== seam);
  if (seam === "none") return `seams ${seams.join(", ")}, none of them the one this host refreshes through`;
  return `seam ${seam}${others.length > 0 ? `; also attached: ${others.join(", ")}` : ""}`;
}

function coordinationLine(c: GuardStatus["coordination"]): string {
  if (c.backend === "file") return `coordination: file (guard dir)`;
  const reach = c.reachable ? `reachable, ping ${c.latencyMs} ms` : "UNREACHABLE";
  const fallback = c.onUnavailable === "file" ? "falls back to the file lock" : "refreshes fail closed";
  const where = [
    c.primary !== undefined ? `primary ${c.primary}` : "",
    c.sentinels !== undefined ? `sentinels ${c.sentinels.join(", ")} (master "${c.masterName}")` : "",
    c.tls === true ? "TLS" : "",
    c.replicaAcks !== undefined && c.replicaAcks > 0 ? `WAIT ${c.replicaAcks} replica(s)` : "",
  ].filter((part) => part !== "");
  return `coordination: redis ${c.location} (${reach}${where.length > 0 ? `; ${where.join("; ")}` : ""}; when unreachable ${fallback})`;
}
