// What register() does in each OpenClaw process: parse the config, attach the fetch hook for the
// enabled providers, and add `openclaw refresh-guard status`. It never throws into the host: a bad
// config is logged with its path and leaves the host untouched.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { type CliProgram, registerStatusCommand } from "../cli/status-command.ts";
import type { StatusReport } from "../cli/status-report.ts";
import { PLUGIN_ID, parseConfig, type RefreshGuardConfig } from "../config/parse-config.ts";
import { formatLine } from "../core/events.ts";
import { attachSeams, type SeamName, type SeamReport, seamsAttached } from "../hosts/detect-seam.ts";
import { assessHost, type HostAssessment, loginProviderId, needsHostUndici, refreshSeamOf } from "../hosts/host-compat.ts";
import { observeTokenPosts } from "../hosts/token-post-observer.ts";
import { installWorkerSeam, type WorkerSeamReport, workerSeamAttached } from "../hosts/worker-seam.ts";
import { PROVIDERS } from "../providers/registry.ts";
import type { HostLogger } from "./event-sink.ts";
import { GuardRuntime, type RuntimeDeps } from "./guard-runtime.ts";

/** The part of OpenClaw's plugin API refresh-guard uses (openclaw/plugin-sdk OpenClawPluginApi). */
export interface PluginApi {
  pluginConfig?: Record<string, unknown>;
  /** "full" in processes that run agents or commands; "cli-metadata" when only listing commands. */
  registrationMode?: string;
  logger: HostLogger;
  version?: string;
  runtime?: {
    version?: string;
    state?: { resolveStateDir?: (env?: NodeJS.ProcessEnv) => string };
    /** 2026.6+: the live OpenClaw config. */
    config?: { current?: () => unknown };
  };
  registerCli?: (
    registrar: (ctx: { program: CliProgram }) => void | Promise<void>,
    opts?: { commands?: string[]; descriptors?: { name: string; description: string; hasSubcommands: boolean }[] },
  ) => void;
}

export type { CliProgram };

export const PLUGIN_VERSION = readPluginVersion();

interface PluginState {
  runtime: GuardRuntime | null;
  /** The config enables no provider. */
  idle?: boolean;
  configProblem?: string;
  host: HostAssessment;
  seams?: SeamReport;
  workers?: WorkerSeamReport;
}

export function registerRefreshGuard(api: PluginApi, env: NodeJS.ProcessEnv = process.env): PluginState {
  const log = api.logger;
  const stateDir = resolveStateDir(api, env);
  const version = hostVersion(api);
  const host = assessHost(version);
  const state: PluginState = { runtime: null, host };
  try {
    const config = parseConfig(pluginConfigOf(api), { stateDir, env });
    if (api.registrationMode === "cli-metadata" || api.registrationMode === "setup-only") {
      // Loaded only to describe commands or setup: nothing refreshes in this load.
    } else if (config.providers.length === 0) {
      once(log.info, formatLine({ event: "idle", msg: NO_PROVIDER }));
    } else if (!host.supported) {
      once(log.warn, formatLine({ event: "unsupported_host", host: host.version ?? "unknown", msg: host.note }));
    } else {
      const agentDirs = env.OPENCLAW_AGENT_DIR ? [env.OPENCLAW_AGENT_DIR] : [];
      state.runtime = sharedRuntime(config, { logger: log, stateDir, agentDirs, loginProvider: (id) => loginProviderId(version, id) });
      const seams = attachSeams(state.runtime.routes(), { hostUndiciRequired: needsHostUndici(version) });
      state.seams = seams;
      state.host = assessHost(version, seams);
      if (seams.attached.length > 0) attachThreads(state, state.runtime, config, { stateDir, agentDirs, seams, log });
      if (!state.host.supported || seams.attached.length === 0) {
        once(log.warn, formatLine({ event: "not_attached", host: version ?? "unknown", msg: state.host.note }));
      } else {
        log.debug?.(
          formatLine({
            event: "attached",
            seams: seams.attached.join(","),
            providers: config.providers.map((p) => p.id).join(","),
            host: version ?? "unknown",
          }),
        );
      }
    }
    // The status command still needs the config even where nothing is attached.
    state.runtime ??= new GuardRuntime(config, { logger: log, stateDir });
    state.idle = config.providers.length === 0;
  } catch (error) {
    state.configProblem = (error as Error).message;
    once(log.error, formatLine({ event: "config_invalid", msg: state.configProblem }));
  }
  registerStatusCommand(api, () => statusReport(state));
  return state;
}

/**
 * Worker threads the host starts from now on load the guard too (worker-seam.ts), and a token POST
 * that leaves this thread outside the wrapper is reported. (Worker threads note themselves in the
 * status record when their seam attaches; the main thread's seams are in every status report.)
 */
function attachThreads(
  state: PluginState,
  runtime: GuardRuntime,
  config: RefreshGuardConfig,
  context: { stateDir: string; agentDirs: string[]; seams: SeamReport; log: HostLogger },
): void {
  const { seams } = context;
  state.workers = installWorkerSeam(
    {
      config,
      stateDir: context.stateDir,
      agentDirs: context.agentDirs,
      seams: [...seams.attached],
      ...(seams.hostUndiciPath !== undefined ? { hostUndiciPath: seams.hostUndiciPath } : {}),
    },
    WORKER_BOOTSTRAP,
  );
  if (!state.workers.attached) context.log.warn(formatLine({ event: "not_attached", thread: "workers", msg: state.workers.problem }));
  observeTokenPosts(
    config.providers.map((provider) => provider.tokenUrl),
    (url) => runtime.warnUnguarded(config.providers.find((provider) => provider.tokenUrl === url)?.id ?? "unknown", url),
  );
}

/** The module each new worker thread imports (dist/plugin/worker-bootstrap.js as shipped). */
const WORKER_BOOTSTRAP = new URL(`./worker-bootstrap${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url).href;

export async function statusReport(state: PluginState): Promise<StatusReport> {
  const report: StatusReport = {
    plugin: { id: PLUGIN_ID, version: PLUGIN_VERSION },
    host: { ...state.host, ...hookReport(state) },
  };
  if (state.configProblem !== undefined) report.configProblem = state.configProblem;
  if (state.runtime !== null) report.guard = await state.runtime.report();
  return report;
}

function hookReport(state: PluginState): Pick<StatusReport["host"], "hook" | "seam" | "seams" | "seamProblem" | "note" | "workerThreads"> {
  const seams = seamsAttached();
  const seam = seamInUse(state.host.version, seams);
  const report: Pick<StatusReport["host"], "hook" | "seam" | "seams" | "seamProblem" | "note" | "workerThreads"> = {
    workerThreads: workerSeamAttached() ? "attached" : "not attached",
    hook: seams.length > 0 ? "attached" : "not attached",
    seam,
    seams,
    note: seams.length > 0 ? state.host.note : notAttachedNote(state),
  };
  if (state.seams?.hostUndiciProblem !== undefined && !seams.includes("host-undici"))
    report.seamProblem = `host-undici: ${state.seams.hostUndiciProblem}`;
  return report;
}

/**
 * The attached seam this host's token refresh goes through: by version where it is known (2026.4/5:
 * global-fetch, although host-undici is attached there too), else the first attached (host-undici first).
 */
export function seamInUse(version: string | null, attached: readonly SeamName[]): SeamName | "none" {
  const uses = refreshSeamOf(version);
  if (uses === null) return attached[0] ?? "none";
  return attached.includes(uses) ? uses : "none";
}

const NO_PROVIDER = `no provider enabled; set ${PROVIDERS.map((provider) => `plugins.entries["${PLUGIN_ID}"].config.providers["${provider.id}"].enabled`).join(" or ")} to true`;

/** Why nothing is attached, in the words status prints under "hook not attached". */
function notAttachedNote(state: PluginState): string {
  if (state.configProblem !== undefined)
    return "nothing attached: the config is invalid (below); the host runs unguarded until it is fixed";
  if (state.idle) return `nothing attached: ${NO_PROVIDER}`;
  if (!state.host.supported) return state.host.note;
  return "nothing attached in this process (the plugin was loaded only to list commands, or no seam could be wrapped); the host runs unguarded";
}

// The host may register the plugin several times in one process (2026.4.15: 3 times; 2026.9.6 once
// for its command list and once more), each with its own logger: a line is logged once per process.
const LOGGED = Symbol.for("openclaw-refresh-guard.logged");

function once(write: (message: string) => void, line: string): void {
  const holder = globalThis as { [LOGGED]?: Set<string> };
  holder[LOGGED] ??= new Set();
  if (holder[LOGGED].has(line)) return;
  holder[LOGGED].add(line);
  write(line);
}

// The host may call register() several times in one process (seen: 3 times on 2026.4.15). One
// runtime per configuration keeps one in-process mutex per key, so callers still share a flight.
const RUNTIMES = Symbol.for("openclaw-refresh-guard.runtimes");

function sharedRuntime(config: RefreshGuardConfig, deps: RuntimeDeps): GuardRuntime {
  const holder = globalThis as { [RUNTIMES]?: Map<string, GuardRuntime> };
  holder[RUNTIMES] ??= new Map();
  const runtimes = holder[RUNTIMES];
  const key = JSON.stringify([config, deps.stateDir, deps.agentDirs]);
  let runtime = runtimes.get(key);
  if (runtime === undefined) {
    runtime = new GuardRuntime(config, deps);
    runtimes.set(key, runtime);
  }
  return runtime;
}

/**
 * The plugin's config. 2026.6/2026.7 register plugins once early in a CLI run ("discovery") with
 * only the manifest's defaults in pluginConfig, and may refresh OAuth tokens before the next
 * registration brings the user's config (measured on 2026.7.35: `models status --probe` refreshed
 * there). The live config (api.runtime.config.current()) already holds it then.
 */
function pluginConfigOf(api: PluginApi): Record<string, unknown> | undefined {
  const given = api.pluginConfig;
  if (given !== undefined && "providers" in given) return given;
  try {
    const current = api.runtime?.config?.current?.() as { plugins?: { entries?: Record<string, { config?: unknown }> } } | undefined;
    const entry = current?.plugins?.entries?.[PLUGIN_ID]?.config;
    if (entry !== null && typeof entry === "object" && !Array.isArray(entry)) return entry as Record<string, unknown>;
  } catch {
    // A runtime that refuses access (cli-metadata loads): keep what the host passed.
  }
  return given;
}

/** The host's version; null where the runtime is absent or refuses access (2026.9's cli-metadata load). */
function hostVersion(api: PluginApi): string | null {
  try {
    const version = api.runtime?.version;
    return typeof version === "string" && version !== "" ? version : null;
  } catch {
    return null;
  }
}

function resolveStateDir(api: PluginApi, env: NodeJS.ProcessEnv): string {
  try {
    const dir = api.runtime?.state?.resolveStateDir?.(env);
    if (typeof dir === "string" && dir !== "") return dir;
  } catch {
    // Older or partial runtimes: fall back to the documented default below.
  }
  return env.OPENCLAW_STATE_DIR || join(homedir(), ".openclaw");
}

function readPluginVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}
