// What the plugin runs in each host process, without depending on the host: one RefreshGuard per
// guarded token URL (opened on first use, so register() stays synchronous and cheap), its events
// sent to the host logger as one `key=value` line each and recorded for the status command.
import { promises as fsp } from "node:fs";
import { join } from "node:path";

import { redisPassword } from "../config/coordination-config.ts";
import { CONFIG_ROOT, type RefreshGuardConfig, userHome } from "../config/parse-config.ts";
import { BackendUnavailableError, type RefreshGuardError } from "../core/errors.ts";
import { formatEvent, formatLine, type GuardEvent } from "../core/events.ts";
import { type Redeem, RefreshGuard, type Stage } from "../core/refresh-guard.ts";
import type { TokenGuard } from "../hosts/global-fetch.ts";
import { providerById } from "../providers/registry.ts";
import type { SiblingSource } from "../siblings/sibling-source.ts";
import { openClawStores, resolveSiblingStateDirs } from "../siblings/state-dirs.ts";
import type { Coordination, LockHolder } from "../store/coordination.ts";
import { ensurePrivateDir } from "../store/guard-dir.ts";
import type { JournalSize } from "../store/journal.ts";
import type { RedisCoordination } from "../store/redis-coordination.ts";
import { redactUrl } from "../store/redis-url.ts";
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
  /**
   * The waiter-path optimisations (default true): outcomes of one event-loop turn written as one
   * status append, and the guard's lean waits. False only for the benchmark's "before".
   */
  waiterOptimisation?: boolean;
}

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
}

/** How long a process that fell back to the file lock keeps it before trying Redis again. */
const FALLBACK_RETRY_MS = 30_000;

export interface GuardStatus {
  guardDir: string;
  coordination: CoordinationStatus;
  guardDirProblem?: string;
  providers: { id: string; tokenUrl: string }[];
  /** State dirs recovery reads besides this one, and whether they were found ("auto") or listed. */
  siblingStateDirs: { setting: "auto" | "listed"; dirs: string[] };
  codexAuthFile: string | null;
  /** Whether the Codex CLI's file is there (it may live under $CODEX_HOME); absent when not read. */
  codexAuthFileExists?: boolean;
  locks: { key: string; pid?: number; ageMs: number }[];
  journal: JournalSize;
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
    this.status = new StatusStore(join(config.guardDir, "status"), deps.now, { coalesce: deps.waiterOptimisation ?? true });
  }

  /** Token URL → guard, for the fetch interceptor. Providers that share an endpoint share a guard. */
  routes(): Map<string, TokenGuard> {
    const routes = new Map<string, TokenGuard>();
    for (const provider of this.config.providers) {
      if (routes.has(provider.tokenUrl)) continue;
      routes.set(provider.tokenUrl, {
        refresh: (token: string, redeem: Redeem, options: { signal?: AbortSignal | null }) =>
          this.guardFor(provider.tokenUrl, provider.id).then((guard) =>
            guard.refresh(token, redeem, options).catch((error: unknown) => {
              // Redis went away after opening: with the file fallback, the next refresh opens again (and falls back).
              if (error instanceof BackendUnavailableError && this.fallsBack()) this.forget(provider.tokenUrl, guard);
              throw error;
            }),
          ),
      });
    }
    return routes;
  }

  private guardFor(tokenUrl: string, provider: string): Promise<RefreshGuard> {
    let guard = this.guards.get(tokenUrl);
    if (guard === undefined) {
      guard = this.open(provider, tokenUrl);
      this.guards.set(tokenUrl, guard);
      // A directory problem may be fixed while the host runs: try again on the next refresh.
      guard.catch((error: unknown) => {
        this.guards.delete(tokenUrl);
        this.logOnce(
          "error",
          formatLine({ event: "unusable", provider, code: (error as RefreshGuardError).code ?? "unknown", msg: (error as Error).message }),
        );
      });
    }
    return guard;
  }

  private fallsBack(): boolean {
    return this.config.coordination.backend === "redis" && this.config.coordination.onUnavailable === "file";
  }

  private forget(tokenUrl: string, guard: RefreshGuard): void {
    void this.guards.get(tokenUrl)?.then((cached) => {
      if (cached === guard) this.guards.delete(tokenUrl);
    });
    void guard.coordination.close();
  }

  /** The Redis backend, connected; or BackendUnavailableError / ConfigError. */
  private async openRedis(provider: string): Promise<RedisCoordination> {
    const settings = this.config.coordination;
    if (settings.backend !== "redis") throw new Error("refresh-guard: not configured for redis");
    // Loaded only where Redis is configured: file-backend hosts never load the client.
    const { RedisCoordination } = await import("../store/redis-coordination.ts");
    const password = redisPassword(settings, CONFIG_ROOT);
    const redis = new RedisCoordination({
      url: settings.url,
      ...(password !== undefined ? { password } : {}),
      keyPrefix: settings.keyPrefix,
      connectTimeoutMs: settings.connectTimeoutMs,
      commandTimeoutMs: settings.commandTimeoutMs,
      leaseMs: this.config.timing.staleMs,
      renewMs: this.config.timing.updateMs,
      retentionMs: this.config.timing.retentionMs,
      ...(this.deps.now ? { now: this.deps.now } : {}),
      events: {
        onCompromised: (key) =>
          this.warn(provider, "lock_compromised", `lock ${keyLabel(key)} (redis) was taken over while held; stepping back`, key),
      },
      onQuarantine: (error) => this.warn(provider, "journal_quarantined", error.message),
    });
    try {
      await redis.open();
    } catch (error) {
      await redis.close();
      throw error;
    }
    return redis;
  }

  /** Redis if configured and reachable; the file lock (undefined) if so configured or as the fallback. */
  private async coordinationFor(provider: string, tokenUrl: string): Promise<Coordination | undefined> {
    const settings = this.config.coordination;
    if (settings.backend === "file") return undefined;
    try {
      return await this.openRedis(provider);
    } catch (error) {
      if (!(error instanceof BackendUnavailableError) || settings.onUnavailable !== "file") throw error;
      this.warn(
        provider,
        "backend_unavailable",
        `Redis at ${redactUrl(settings.url)} is unreachable; falling back to the local file lock in ${this.config.guardDir} ` +
          `(coordinates only processes that share it) and trying Redis again in ${FALLBACK_RETRY_MS / 1000} s`,
      );
      setTimeout(() => this.guards.delete(tokenUrl), FALLBACK_RETRY_MS).unref();
      return undefined;
    }
  }

  private warn(
    provider: string,
    reason: "lock_compromised" | "journal_quarantined" | "backend_unavailable",
    message: string,
    key?: string,
  ): void {
    const event: GuardEvent = { type: "warning", provider, reason, message };
    if (key !== undefined) event.key = keyLabel(key);
    this.onEvent(event);
  }

  private async open(provider: string, tokenUrl: string): Promise<RefreshGuard> {
    const coordination = await this.coordinationFor(provider, tokenUrl);
    const guard = await RefreshGuard.open({
      provider,
      guardDir: this.config.guardDir,
      ...(coordination ? { coordination } : {}),
      timing: this.config.timing,
      siblingSources: this.siblingSources(),
      onEvent: (event) => this.onEvent(event),
      ...(this.deps.now ? { now: this.deps.now } : {}),
      ...(this.deps.stage ? { stage: this.deps.stage } : {}),
      ...(this.deps.waiterOptimisation === false ? { leanWaits: false } : {}),
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
        home: userHome(),
      }),
    ];
    const context = {
      stateDir: this.deps.stateDir,
      agentDirs: this.deps.agentDirs ?? [],
      home: userHome(),
      providerFiles: { codexAuthFile: this.config.codexAuthFile },
    };
    // Each provider's own files once, however many of its ids are enabled.
    const seen = new Set<string>();
    for (const { id } of this.config.providers) {
      const provider = providerById(id);
      if (provider === undefined || seen.has(provider.id)) continue;
      seen.add(provider.id);
      sources.push(...provider.extraSiblingSources(context));
    }
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
    this.status.record(event).catch((error: Error) => this.logOnce("warn", formatLine({ event: "status_unwritable", msg: error.message })));
  }

  private logOnce(level: "warn" | "error", line: string): void {
    if (this.logged.has(line)) return;
    this.logged.add(line);
    this.deps.logger[level](line);
  }

  /** Everything the status command shows about this guard directory. Never a token. */
  async report(): Promise<GuardStatus> {
    const settings = this.config.coordination;
    const report: GuardStatus = {
      guardDir: this.config.guardDir,
      coordination:
        settings.backend === "file"
          ? { backend: "file", location: this.config.guardDir }
          : { backend: "redis", location: redactUrl(settings.url), onUnavailable: settings.onUnavailable },
      providers: this.config.providers.map(({ id, tokenUrl }) => ({ id, tokenUrl })),
      siblingStateDirs: {
        setting: this.config.siblingStateDirs === "auto" ? "auto" : "listed",
        dirs: await resolveSiblingStateDirs(this.config.siblingStateDirs, userHome(), this.deps.stateDir),
      },
      codexAuthFile: this.config.codexAuthFile,
      locks: [],
      journal: { entries: 0, tombstones: 0, quarantined: 0, bytes: 0 },
      outcomes: { redeemed: 0, shared: 0, recovered: 0, failed: 0, warning: 0 },
      lastOutcomeAt: {},
      recent: [],
    };
    if (this.config.codexAuthFile !== null) {
      report.codexAuthFileExists = await fsp.stat(this.config.codexAuthFile).then(
        (stat) => stat.isFile(),
        () => false,
      );
    }
    if (settings.backend === "redis") return this.reportRedis(report);
    let guard: RefreshGuard;
    try {
      guard = await this.guardFor(this.config.providers[0]?.tokenUrl ?? "", this.config.providers[0]?.id ?? "openai-codex");
    } catch (error) {
      report.guardDirProblem = (error as Error).message;
      return report;
    }
    report.locks = (await guard.holders()).map((holder: LockHolder) => ({ ...holder, key: keyLabel(holder.key) }));
    report.journal = await guard.coordination.size();
    return this.reportOutcomes(report);
  }

  /** Status through a connection of its own, closed afterwards, so a status command never hangs on it. */
  private async reportRedis(report: GuardStatus): Promise<GuardStatus> {
    const provider = this.config.providers[0]?.id ?? "openai-codex";
    let redis: RedisCoordination | undefined;
    try {
      redis = await this.openRedis(provider);
      report.coordination.latencyMs = Math.round((await redis.ping()) * 10) / 10;
      report.coordination.reachable = true;
      report.locks = (await redis.holders()).map((holder: LockHolder) => ({ ...holder, key: keyLabel(holder.key) }));
      report.journal = await redis.size();
    } catch (error) {
      report.coordination.reachable = false;
      report.coordination.problem = (error as Error).message;
    } finally {
      await redis?.close();
    }
    return this.reportOutcomes(report);
  }

  private async reportOutcomes(report: GuardStatus): Promise<GuardStatus> {
    const summary = await this.status.summary();
    report.outcomes = summary.counts;
    for (const [type, at] of Object.entries(summary.last)) {
      report.lastOutcomeAt[type as keyof GuardStatus["lastOutcomeAt"]] = new Date(at).toISOString();
    }
    report.recent = summary.recent.map((record) => {
      const entry: GuardStatus["recent"][number] = {
        at: new Date(record.at).toISOString(),
        type: record.type,
        provider: record.provider,
        pid: record.pid,
      };
      if (record.reason !== undefined) entry.reason = record.reason;
      if (record.code !== undefined) entry.code = record.code;
      return entry;
    });
    return report;
  }
}

export { formatEvent };
