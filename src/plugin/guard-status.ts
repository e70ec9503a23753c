// What `openclaw refresh-guard status` shows about the guard directory or Redis: read from what
// exists, never by opening a guard. A guard dir that does not exist yet is reported empty and is
// not created; an unsafe one is reported with its fix; Redis is asked through a connection of its
// own, closed afterwards, so a status command never hangs on it.
import { promises as fsp } from "node:fs";
import type { GuardStatus } from "../cli/status-report.ts";
import { type RefreshGuardConfig, userHome } from "../config/parse-config.ts";
import { openClawSqliteStores } from "../siblings/openclaw-sqlite-stores.ts";
import { resolveSiblingStateDirs } from "../siblings/state-dirs.ts";
import type { Coordination } from "../store/coordination.ts";
import { checkPrivateDir } from "../store/guard-dir.ts";
import { redactUrl } from "../store/redis-url.ts";
import { keyLabel } from "../store/token-crypto.ts";
import { type BackendReporting, fileCoordination, openRedisCoordination } from "./coordination-factory.ts";
import { enabledProviders } from "./sibling-setup.ts";
import type { StatusStore } from "./status-record.ts";

export interface StatusSources {
  stateDir: string;
  status: StatusStore;
  reporting: BackendReporting;
}

/** Everything the status command shows about this guard directory. Never a token. */
export async function guardStatus(config: RefreshGuardConfig, sources: StatusSources): Promise<GuardStatus> {
  const settings = config.coordination;
  const report: GuardStatus = {
    guardDir: config.guardDir,
    coordination:
      settings.backend === "file"
        ? { backend: "file", location: config.guardDir }
        : { backend: "redis", location: redactUrl(settings.url), onUnavailable: settings.onUnavailable },
    providers: config.providers.map(({ id, tokenUrl }) => ({ id, tokenUrl })),
    siblingStateDirs: {
      setting: config.siblingStateDirs === "auto" ? "auto" : "listed",
      dirs: await resolveSiblingStateDirs(config.siblingStateDirs, userHome(), sources.stateDir),
    },
    providerFiles: await Promise.all(
      enabledProviders(config).flatMap((provider) =>
        provider.files.map(async (file) => {
          const path = config.providerFiles[file.key] ?? null;
          if (path === null) return { label: file.label, path };
          // Whether it is there: a file the other tool keeps elsewhere ($CODEX_HOME) shows as absent.
          const exists = await fsp.stat(path).then(
            (stat) => stat.isFile(),
            () => false,
          );
          return { label: file.label, path, exists };
        }),
      ),
    ),
    locks: [],
    journal: { entries: 0, tombstones: 0, quarantined: 0, bytes: 0 },
    outcomes: { redeemed: 0, shared: 0, recovered: 0, failed: 0, warning: 0 },
    lastOutcomeAt: {},
    recent: [],
    threads: { outcomes: {}, attached: [] },
    unguardedRefreshes: 0,
    fencedProfiles: [],
  };
  report.fencedProfiles = await fencedProfiles(config, sources.stateDir);
  if (settings.backend === "redis") await readRedis(config, sources.reporting, report);
  else if (!(await readFiles(config, sources.reporting, report))) return report;
  return readOutcomes(sources.status, report);
}

/** Locks and journal size from the guard directory as it is; false when it is unusable. */
async function readFiles(config: RefreshGuardConfig, reporting: BackendReporting, report: GuardStatus): Promise<boolean> {
  try {
    if (!(await checkPrivateDir(config.guardDir))) return true;
    await readBackend(fileCoordination(config.guardDir, config.timing, reporting), report);
    return true;
  } catch (error) {
    report.guardDirProblem = (error as Error).message;
    return false;
  }
}

async function readRedis(config: RefreshGuardConfig, reporting: BackendReporting, report: GuardStatus): Promise<void> {
  let redis: Awaited<ReturnType<typeof openRedisCoordination>> | undefined;
  try {
    redis = await openRedisCoordination(config, reporting);
    report.coordination.latencyMs = Math.round((await redis.ping()) * 10) / 10;
    Object.assign(report.coordination, redis.topology());
    report.coordination.reachable = true;
    await readBackend(redis, report);
  } catch (error) {
    report.coordination.reachable = false;
    report.coordination.problem = (error as Error).message;
  } finally {
    await redis?.close();
  }
}

async function readBackend(coordination: Coordination, report: GuardStatus): Promise<void> {
  report.locks = (await coordination.holders()).map((holder) => ({ ...holder, key: keyLabel(holder.key) }));
  report.journal = await coordination.size();
}

/** This state dir's profiles that carry the host's terminal fence (2026.9: a lost refresh). */
async function fencedProfiles(config: RefreshGuardConfig, stateDir: string): Promise<string[]> {
  try {
    const store = openClawSqliteStores({ stateDirs: [stateDir], providers: config.providers.map((provider) => provider.id) });
    const credentials = await store.load(() => undefined);
    return credentials
      .filter((credential) => credential.source.endsWith(" (fenced)") && /:failed:refresh:/.test(credential.refreshToken))
      .map((credential) => credential.source.replace(/ \(fenced\)$/, ""));
  } catch {
    return [];
  }
}

async function readOutcomes(status: StatusStore, report: GuardStatus): Promise<GuardStatus> {
  const summary = await status.summary();
  report.outcomes = summary.counts;
  report.unguardedRefreshes = summary.unguarded;
  report.threads = {
    outcomes: summary.byThread,
    attached: (await status.threads().catch(() => [])).map(({ at, pid, thread, seams }) => ({
      at: new Date(at).toISOString(),
      pid,
      thread,
      seams,
    })),
  };
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
    if (record.thread !== undefined) entry.thread = record.thread;
    return entry;
  });
  return report;
}
