// Picks where the guard attaches by what the running host has, not by its version number:
// - host-undici: the host ships its own undici module with a writable `fetch` export. 2026.6+
//   send the token POST through it (fetchWithSsrFGuard), and global fetch never sees it.
// - global-fetch: globalThis.fetch. 2026.4.15 – 2026.5.x send the token POST through it (pi-ai).
// Both are attached where both exist: each sees only the requests that really go through it, a
// token POST goes through exactly one of them, and a redemption leaves through the unwrapped
// original, so nothing is guarded twice. 2026.4.15/5.x ship undici too, which is why the presence
// of host undici alone must not switch the global hook off.
import { installFetchInterceptor, interceptorAttached, type TokenGuard } from "./global-fetch.ts";
import {
  type HostUndiciProbe,
  hostUndiciAttached,
  installHostUndiciInterceptor,
  probeHostUndici,
  type ResolveOptions,
} from "./host-undici.ts";

export type SeamName = "host-undici" | "global-fetch";

export interface SeamReport {
  /** Attached seams, the one a 2026.6+ host refreshes through first. Empty: nothing attached. */
  attached: SeamName[];
  /** Why host-undici is not attached (absent on hosts that have no undici of their own). */
  hostUndiciProblem?: string;
  /** Why global-fetch is not attached where installing it failed. */
  globalFetchProblem?: string;
  /** The host undici module that was wrapped (handed to worker threads, whose copy is the same file). */
  hostUndiciPath?: string;
}

export interface SeamOptions extends ResolveOptions {
  /** Default globalThis. */
  globalHost?: { fetch: typeof globalThis.fetch };
  /** The host refreshes only through its own undici: without it, attach nothing at all. */
  hostUndiciRequired?: boolean;
  /** For tests: what probing the host's undici found. */
  probe?: HostUndiciProbe;
}

let lastProbe: HostUndiciProbe | undefined;

/** Installs the guard on every seam this host has; returns which ones took. Never throws. */
export function attachSeams(routes: ReadonlyMap<string, TokenGuard>, options: SeamOptions = {}): SeamReport {
  const report: SeamReport = { attached: [] };
  let probe: HostUndiciProbe;
  try {
    probe = options.probe ?? probeHostUndici(options);
  } catch (error) {
    probe = { found: false, reason: `probing the host's undici failed: ${(error as Error).message}` };
  }
  lastProbe = probe;
  if (probe.found) {
    try {
      installHostUndiciInterceptor(probe.module, routes);
      report.attached.push("host-undici");
      report.hostUndiciPath = probe.path;
    } catch (error) {
      report.hostUndiciProblem = `wrapping ${probe.path} failed: ${(error as Error).message}`;
    }
  } else {
    report.hostUndiciProblem = probe.reason;
  }
  // A host that refreshes through its own undici gains nothing from the global hook alone: leave
  // it exactly as without the plugin.
  if (options.hostUndiciRequired && !report.attached.includes("host-undici")) return report;
  const globalHost = options.globalHost ?? (globalThis as unknown as { fetch: typeof globalThis.fetch });
  try {
    if (typeof globalHost.fetch !== "function") throw new Error("globalThis.fetch is not a function");
    installFetchInterceptor(routes, globalHost);
    report.attached.push("global-fetch");
  } catch (error) {
    report.globalFetchProblem = (error as Error).message;
  }
  return report;
}

/** Which seams are attached right now in this process (for status). */
export function seamsAttached(
  globalHost: { fetch: typeof globalThis.fetch } = globalThis as unknown as { fetch: typeof globalThis.fetch },
): SeamName[] {
  const seams: SeamName[] = [];
  if (lastProbe?.found && hostUndiciAttached(lastProbe.module)) seams.push("host-undici");
  if (interceptorAttached(globalHost)) seams.push("global-fetch");
  return seams;
}
