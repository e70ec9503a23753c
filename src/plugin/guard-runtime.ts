// What the plugin runs in each host process, without depending on the host: one RefreshGuard per
// guarded token URL, opened on first use (so register() stays synchronous and cheap) and cached.
// The backend comes from coordination-factory.ts, sibling sources from sibling-setup.ts, events go
// to event-sink.ts; the status command reads through guard-status.ts without opening a guard.
import { join } from "node:path";
import type { GuardStatus } from "../cli/status-report.ts";
import { type RefreshGuardConfig, userHome } from "../config/parse-config.ts";
import { formatLine } from "../core/events.ts";
import { type Redeem, RefreshGuard, type Stage } from "../core/refresh-guard.ts";
import { BackendUnavailableError, type RefreshGuardError } from "../errors/errors.ts";
import type { TokenGuard } from "../hosts/global-fetch.ts";
import { providerById } from "../providers/registry.ts";
import { ensurePrivateDir } from "../store/guard-dir.ts";
import { type BackendReporting, FALLBACK_RETRY_MS, fallsBack, openCoordination } from "./coordination-factory.ts";
import { EventSink, type HostLogger } from "./event-sink.ts";
import { guardStatus } from "./guard-status.ts";
import { siblingSources } from "./sibling-setup.ts";
import { StatusStore } from "./status-record.ts";

export type { HostLogger };

export interface RuntimeDeps {
  logger: HostLogger;
  stateDir: string;
  agentDirs?: readonly string[];
  /** The provider id the host's login command accepts for a configured id (re-login hints). */
  loginProvider?: (configured: string) => string;
  now?: () => number;
  stage?: (stage: Stage) => Promise<void> | void;
}

export class GuardRuntime {
  readonly config: RefreshGuardConfig;
  private readonly deps: RuntimeDeps;
  private readonly status: StatusStore;
  private readonly sink: EventSink;
  /** One guard per token URL of an enabled provider; nothing else is ever cached. */
  private readonly guards = new Map<string, Promise<RefreshGuard>>();

  constructor(config: RefreshGuardConfig, deps: RuntimeDeps) {
    this.config = config;
    this.deps = deps;
    this.status = new StatusStore(join(config.guardDir, "status"), deps.now);
    this.sink = new EventSink(deps.logger, this.status);
  }

  /**
   * Token URL (or URL pattern) → guard, for the fetch interceptor. Providers that share an endpoint
   * share a guard; a provider's other endpoints (alsoTokenUrls) share its guard.
   */
  routes(): Map<string, TokenGuard> {
    const routes = new Map<string, TokenGuard>();
    for (const provider of this.config.providers) {
      if (routes.has(provider.tokenUrl)) continue;
      const guard: TokenGuard = {
        refresh: (token: string, redeem: Redeem, options: { signal?: AbortSignal | null }) =>
          this.guardFor(provider.tokenUrl, provider.id).then((guard) =>
            guard.refresh(token, redeem, options).catch((error: unknown) => {
              // Redis went away after opening: with the file fallback, the next refresh opens again (and falls back).
              if (error instanceof BackendUnavailableError && fallsBack(this.config)) this.forget(provider.tokenUrl, guard);
              throw error;
            }),
          ),
      };
      routes.set(provider.tokenUrl, guard);
      for (const url of providerById(provider.id)?.alsoTokenUrls ?? []) if (!routes.has(url)) routes.set(url, guard);
    }
    return routes;
  }

  /** A token POST left this thread without passing the wrapper (hosts/token-post-observer.ts). */
  warnUnguarded(provider: string, url: string): void {
    this.sink.onEvent({
      type: "warning",
      provider,
      reason: "unguarded_refresh",
      message:
        `a token POST to ${url} left this thread without refresh-guard (the host refreshed where the guard is not attached); ` +
        "a refresh_token_reused and a fenced profile may follow",
    });
  }

  /** Everything the status command shows; reads what exists, opens no guard and creates nothing. */
  report(): Promise<GuardStatus> {
    return guardStatus(this.config, {
      stateDir: this.deps.stateDir,
      status: this.status,
      reporting: this.reporting(this.config.providers[0]?.id ?? "none"),
    });
  }

  private guardFor(tokenUrl: string, provider: string): Promise<RefreshGuard> {
    let guard = this.guards.get(tokenUrl);
    if (guard === undefined) {
      guard = this.open(provider, tokenUrl);
      this.guards.set(tokenUrl, guard);
      // A directory problem may be fixed while the host runs: try again on the next refresh.
      guard.catch((error: unknown) => {
        this.guards.delete(tokenUrl);
        this.sink.logOnce(
          "error",
          formatLine({ event: "unusable", provider, code: (error as RefreshGuardError).code ?? "unknown", msg: (error as Error).message }),
        );
      });
    }
    return guard;
  }

  private forget(tokenUrl: string, guard: RefreshGuard): void {
    void this.guards.get(tokenUrl)?.then((cached) => {
      if (cached === guard) this.guards.delete(tokenUrl);
    });
    void guard.coordination.close();
  }

  private async open(provider: string, tokenUrl: string): Promise<RefreshGuard> {
    const { coordination, fellBack } = await openCoordination(this.config, this.reporting(provider));
    if (fellBack) setTimeout(() => this.guards.delete(tokenUrl), FALLBACK_RETRY_MS).unref();
    const guard = new RefreshGuard({
      provider,
      ...(this.deps.loginProvider ? { loginProvider: this.deps.loginProvider(provider) } : {}),
      coordination,
      timing: this.config.timing,
      siblingSources: siblingSources(this.config, { stateDir: this.deps.stateDir, agentDirs: this.deps.agentDirs ?? [], home: userHome() }),
      onEvent: this.sink.onEvent,
      ...(this.deps.now ? { now: this.deps.now } : {}),
      ...(this.deps.stage ? { stage: this.deps.stage } : {}),
    });
    await ensurePrivateDir(this.status.dir);
    return guard;
  }

  private reporting(provider: string): BackendReporting {
    return {
      provider,
      onEvent: this.sink.onEvent,
      ...(this.deps.now ? { now: this.deps.now } : {}),
      ...(this.deps.stage ? { stage: this.deps.stage } : {}),
    };
  }
}
