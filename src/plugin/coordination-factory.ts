// The one place that builds a coordination backend: the file backend in the guard directory, or
// Redis when configured, with the fallback policy (`onUnavailable: "file"`: an unreachable Redis
// is reported and the file lock used instead). Core receives what this builds, already open.
import { redisPassword, redisUsername } from "../config/coordination-config.ts";
import { CONFIG_ROOT, type RefreshGuardConfig } from "../config/parse-config.ts";
import type { GuardEvent, WarningReason } from "../core/events.ts";
import type { Stage } from "../core/guard-context.ts";
import type { GuardTiming } from "../core/timing.ts";
import { BackendUnavailableError } from "../errors/errors.ts";
import type { Coordination } from "../store/coordination.ts";
import { FileCoordination } from "../store/file-coordination.ts";
import type { RedisCoordination } from "../store/redis-coordination.ts";
import { redactUrl } from "../store/redis-url.ts";
import { keyLabel } from "../store/token-crypto.ts";

/** How long a process that fell back to the file lock keeps it before trying Redis again. */
export const FALLBACK_RETRY_MS = 30_000;

/** Who a backend reports to: its problems become `warning` events of `provider`. */
export interface BackendReporting {
  provider: string;
  onEvent: (event: GuardEvent) => void;
  now?: () => number;
  /** Fault-injection stages (the file journal's `journal-mid-write`). */
  stage?: (stage: Stage) => Promise<void> | void;
  /** False only for the benchmark's "before": the directory watch closes as soon as the last waiter leaves. */
  leanWaits?: boolean;
}

/** A `warning` event of `provider`, with the token key shortened to its label. */
function warner(reporting: BackendReporting): (reason: WarningReason, message: string, key?: string) => void {
  return (reason, message, key) => {
    const event: GuardEvent = { type: "warning", provider: reporting.provider, reason, message };
    if (key !== undefined) event.key = keyLabel(key);
    reporting.onEvent(event);
  };
}

/** The file backend in `guardDir`, opened (the directory checked and created 0700). */
export async function openFileCoordination(guardDir: string, timing: GuardTiming, reporting: BackendReporting): Promise<FileCoordination> {
  const files = fileCoordination(guardDir, timing, reporting);
  await files.open();
  return files;
}

/** The file backend in `guardDir`, not opened: nothing is created until open() (status reads through it). */
export function fileCoordination(guardDir: string, timing: GuardTiming, reporting: BackendReporting): FileCoordination {
  const warn = warner(reporting);
  const { stage } = reporting;
  return new FileCoordination({
    guardDir,
    staleMs: timing.staleMs,
    updateMs: timing.updateMs,
    retentionMs: timing.retentionMs,
    ...(reporting.now ? { now: reporting.now } : {}),
    events: {
      onCompromised: (key) => warn("lock_compromised", `lock ${keyLabel(key)} was taken over while held; stepping back`, key),
      onClockSkew: (key, _path, aheadMs) =>
        warn("lock_clock_skew", `lock ${keyLabel(key)} mtime is ${aheadMs} ms in the future; removed it`, key),
      onBlocked: (path, movedTo) => warn("lock_blocked", `${path} was not a lock; moved it to ${movedTo}`),
    },
    onQuarantine: (error) => warn("journal_quarantined", error.message),
    ...(stage ? { midWrite: () => stage("journal-mid-write") } : {}),
    watchLingerMs: reporting.leanWaits === false ? 0 : timing.pollMs * 4,
  });
}

/** The Redis backend, connected; or BackendUnavailableError / ConfigError. */
export async function openRedisCoordination(config: RefreshGuardConfig, reporting: BackendReporting): Promise<RedisCoordination> {
  const settings = config.coordination;
  if (settings.backend !== "redis") throw new Error("refresh-guard: not configured for redis");
  const warn = warner(reporting);
  // Loaded only where Redis is configured: file-backend hosts never load the client.
  const { RedisCoordination } = await import("../store/redis-coordination.ts");
  const password = redisPassword(settings, CONFIG_ROOT);
  const username = redisUsername(settings, CONFIG_ROOT);
  const tls = {
    ...(settings.tlsCaFile !== undefined ? { caFile: settings.tlsCaFile } : {}),
    ...(settings.tlsCertFile !== undefined ? { certFile: settings.tlsCertFile } : {}),
    ...(settings.tlsKeyFile !== undefined ? { keyFile: settings.tlsKeyFile } : {}),
    ...(settings.tlsServerName !== undefined ? { serverName: settings.tlsServerName } : {}),
  };
  const redis = new RedisCoordination({
    url: settings.url,
    ...(password !== undefined ? { password } : {}),
    ...(username !== undefined ? { username } : {}),
    tls,
    ...(settings.sentinels !== undefined ? { sentinels: settings.sentinels, masterName: settings.masterName } : {}),
    replicaAcks: settings.replicaAcks,
    onUnreplicated: (message) => warn("backend_unreplicated", message),
    keyPrefix: settings.keyPrefix,
    connectTimeoutMs: settings.connectTimeoutMs,
    commandTimeoutMs: settings.commandTimeoutMs,
    leaseMs: config.timing.staleMs,
    renewMs: config.timing.updateMs,
    retentionMs: config.timing.retentionMs,
    ...(reporting.now ? { now: reporting.now } : {}),
    events: {
      onCompromised: (key) => warn("lock_compromised", `lock ${keyLabel(key)} (redis) was taken over while held; stepping back`, key),
      onBlocked: (path, what) => warn("lock_blocked", `${path} blocked its token: ${what}`),
    },
    onQuarantine: (error) => warn("journal_quarantined", error.message),
  });
  try {
    await redis.open();
  } catch (error) {
    await redis.close();
    throw error;
  }
  return redis;
}

/**
 * The configured backend, open. `fellBack`: Redis was unreachable and the config said to use the
 * file lock meanwhile (the caller tries Redis again after FALLBACK_RETRY_MS).
 */
export async function openCoordination(
  config: RefreshGuardConfig,
  reporting: BackendReporting,
): Promise<{ coordination: Coordination; fellBack: boolean }> {
  const settings = config.coordination;
  if (settings.backend === "file")
    return { coordination: await openFileCoordination(config.guardDir, config.timing, reporting), fellBack: false };
  try {
    return { coordination: await openRedisCoordination(config, reporting), fellBack: false };
  } catch (error) {
    if (!(error instanceof BackendUnavailableError) || settings.onUnavailable !== "file") throw error;
    warner(reporting)(
      "backend_unavailable",
      `Redis at ${redactUrl(settings.url)} is unreachable; falling back to the local file lock in ${config.guardDir} ` +
        `(coordinates only processes that share it) and trying Redis again in ${FALLBACK_RETRY_MS / 1000} s`,
    );
    return { coordination: await openFileCoordination(config.guardDir, config.timing, reporting), fellBack: true };
  }
}

/** Whether a Redis failure after opening should drop the guard so the next refresh opens again (and falls back). */
export function fallsBack(config: RefreshGuardConfig): boolean {
  return config.coordination.backend === "redis" && config.coordination.onUnavailable === "file";
}
