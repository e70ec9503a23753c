// What the plugin runs in each host process, without depending on the host: one RefreshGuard per
// guarded token URL (opened on first use, so register() stays synchronous and cheap), its events
// sent to the host logger as one `key=value` line each and recorded for the status command.
import { join } from "node:path";

import type { RefreshGuardConfig } from "../config/parse-config.ts";
import { RefreshGuardError } from "../core/errors.ts";
import type { TokenGuard } from "../hosts/global-fetch.ts";
import { ensurePrivateDir } from "../store/guard-dir.ts";
import type { LockHolder } from "../store/refresh-lock.ts";
import { homedir } from "node:os";

import { codexCliAuth } from "../siblings/openclaw-json-stores.ts";
import { openClawStores, resolveSiblingStateDirs } from "../siblings/state-dirs.ts";
import { type GuardEvent, RefreshGuard, type Redeem, type Stage } from "../core/refresh-guard.ts";
import type { SiblingSource } from "../siblings/sibling-source.ts";
import { type OutcomeSummary, StatusStore } from "../store/status-store.ts";
import { keyLabel } from "../store/token-crypto.ts";

export interface HostLogger {
  debug?: (message: string) => void;
  info: (message: string) => void;
  warn: (message: string) => void;
  error: (message: string) => void;
}

export interface RuntimeDeps {
  logger: HostLogger;
  stateDir: string;
  agentDirs?: readonly string[];
  now?: () => number;
  stage?: (stage: Stage) => Promise<void> | void;
}

export interface GuardStatus {
  guardDir: string;
  guardDirProblem?: string;
  providers: { id: string; tokenUrl: string }[];
  /** State dirs recovery reads besides this one, and whether they were found ("auto") or listed. */
  siblingStateDirs: { setting: "auto" | "listed"; dirs: string[] };
  codexAuthFile: string | null;
  locks: { key: string; pid?: number; ageMs: number }[];
  journal: { entries: number; tombstones: number; quarantined: number; bytes: number };
  outcomes: OutcomeSummary["counts"];
  lastOutcomeAt: Partial<Record<"redeemed" | "shared" | "recovered" | "failed", string>>;
  recent: { at: string; type: string; provider: string; reason?: string; code?: string; pid: number }[];
}

export class GuardRuntime {
  readonly config: RefreshGuardConfig;
  private readonly deps: RuntimeDeps;
  private readonly status: StatusStore;
  private readonly guards = new Map<string, Promise<RefreshGuard>>();
  private readonly logged = new Set<string>();

  constructor(config: RefreshGuardConfig, deps: RuntimeDeps) {
    this.config = config;
    this.deps = deps;
    this.status = new StatusStore(join(config.guardDir, "status"), deps.now);
  }

  /** Token URL → guard, for the fetch interceptor. Providers that share an endpoint share a guard. */
  routes(): Map<string, TokenGuard> {
    const routes = new Map<string, TokenGuard>();
    for (const provider of this.config.providers) {
      if (routes.has(provider.tokenUrl)) continue;
      routes.set(provider.tokenUrl, {
        refresh: (token: string, redeem: Redeem, options: { signal?: AbortSignal | null }) =>
          this.guardFor(provider.tokenUrl, provider.id).then((guard) => guard.refresh(token, redeem, options)),
      });
    }
    return routes;
  }

  private guardFor(tokenUrl: string, provider: string): Promise<RefreshGuard> {
    let guard = this.guards.get(tokenUrl);
    if (guard === undefined) {
      guard = this.open(provider);
      this.guards.set(tokenUrl, guard);
      // A directory problem may be fixed while the host runs: try again on the next refresh.
      guard.catch((error: unknown) => {
        this.guards.delete(tokenUrl);
        this.logOnce("error", `event=unusable provider=${provider} code=${(error as RefreshGuardError).code ?? "unknown"} msg=${quote((error as Error).message)}`);
      });
    }
    return guard;
  }

  private async open(provider: string): Promise<RefreshGuard> {
    const guard = await RefreshGuard.open({
      provider,
      guardDir: this.config.guardDir,
      timing: this.config.timing,
      siblingSources: this.siblingSources(),
      onEvent: (event) => this.onEvent(event),
      ...(this.deps.now ? { now: this.deps.now } : {}),
      ...(this.deps.stage ? { stage: this.deps.stage } : {}),
    });
    await ensurePrivateDir(this.status.dir);
    return guard;
  }

  private siblingSources(): SiblingSource[] {
    const providers = this.config.providers.map((provider) => provider.id);
    const sources = [
      openClawStores({
        stateDir: this.deps.stateDir,
        agentDirs: this.deps.agentDirs ?? [],
        providers,
        siblingStateDirs: this.config.siblingStateDirs,
        home: homedir(),
      }),
    ];
    if (this.config.codexAuthFile !== null) sources.push(codexCliAuth(this.config.codexAuthFile));
    return sources;
  }

  private onEvent(event: GuardEvent): void {
    const line = formatEvent(event);
    const { logger } = this.deps;
    // OpenClaw's info goes to stdout, in front of commands' --json output: routine outcomes go to
    // debug (and to the status record); problems to warn/error, which go to stderr.
    if (event.type === "failed") logger.error(line);
    else if (event.type === "warning") logger.warn(line);
    else logger.debug?.(line);
    this.status.record(event).catch((error: Error) => this.logOnce("warn", `event=status_unwritable msg=${quote(error.message)}`));
  }

  private logOnce(level: "warn" | "error", line: string): void {
    if (this.logged.has(line)) return;
    this.logged.add(line);
    this.deps.logger[level](`[refresh-guard] ${line}`);
  }

  /** Everything the status command shows about this guard directory. Never a token. */
  async report(): Promise<GuardStatus> {
    const report: GuardStatus = {
      guardDir: this.config.guardDir,
      providers: this.config.providers.map(({ id, tokenUrl }) => ({ id, tokenUrl })),
      siblingStateDirs: {
        setting: this.config.siblingStateDirs === "auto" ? "auto" : "listed",
        dirs: await resolveSiblingStateDirs(this.config.siblingStateDirs, homedir(), this.deps.stateDir),
      },
      codexAuthFile: this.config.codexAuthFile,
      locks: [],
      journal: { entries: 0, tombstones: 0, quarantined: 0, bytes: 0 },
      outcomes: { redeemed: 0, shared: 0, recovered: 0, failed: 0, warning: 0 },
      lastOutcomeAt: {},
      recent: [],
    };
    let guard: RefreshGuard;
    try {
      guard = await this.guardFor(this.config.providers[0]?.tokenUrl ?? "", this.config.providers[0]?.id ?? "openai-codex");
    } catch (error) {
      report.guardDirProblem = (error as Error).message;
      return report;
    }
    report.locks = (await guard.holders()).map((holder: LockHolder) => ({ ...holder, key: keyLabel(holder.key) }));
    report.journal = await guard.journal.size();
    const summary = await this.status.summary();
    report.outcomes = summary.counts;
    for (const [type, at] of Object.entries(summary.last)) {
      report.lastOutcomeAt[type as keyof GuardStatus["lastOutcomeAt"]] = new Date(at).toISOString();
    }
    report.recent = summary.recent.map((record) => {
      const entry: GuardStatus["recent"][number] = { at: new Date(record.at).toISOString(), type: record.type, provider: record.provider, pid: record.pid };
      if (record.reason !== undefined) entry.reason = record.reason;
      if (record.code !== undefined) entry.code = record.code;
      return entry;
    });
    return report;
  }
}

/** `[refresh-guard] event=redeemed provider=openai-codex key=1a2b3c4d hops=0 ms=212` */
export function formatEvent(event: GuardEvent): string {
  const fields: string[] = [`event=${event.type}`, `provider=${event.provider}`];
  if (event.key !== undefined) fields.push(`key=${event.key}`);
  if ("reason" in event) fields.push(`reason=${event.reason}`);
  if ("code" in event && event.code !== undefined) fields.push(`code=${event.code}`);
  if ("hops" in event) fields.push(`hops=${event.hops}`);
  if ("source" in event) fields.push(`source=${quote(event.source)}`);
  if ("ms" in event) fields.push(`ms=${Math.round(event.ms)}`);
  if ("message" in event) fields.push(`msg=${quote(event.message)}`);
  return `[refresh-guard] ${fields.join(" ")}`;
}

function quote(text: string): string {
  return JSON.stringify(text);
}
