// Loaded with `--import` into every worker thread the host creates after the plugin registered
// (see hosts/worker-seam.ts): what register() does, in a worker thread. It stays cheap for the many workers that never refresh: no guard, no lock,
// no undici load of its own. It only
// - wraps globalThis.fetch where the main thread did (2026.4/5 refresh through it);
// - waits for the host to load its undici in this thread (a `tracing:module.require:end`
//   subscriber) and wraps that module's fetch export, exactly as register() does on the main thread;
// - gives new workers of this thread the same bootstrap;
// - reports a token POST that left this thread outside the wrapper.
// The guard itself (GuardRuntime: guard dir or Redis, journal, status record) is loaded on the first
// token POST. Threads coordinate like processes do: through the guard dir or Redis.
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { createRequire } from "node:module";
import { join } from "node:path";
import { getEnvironmentData, isMainThread } from "node:worker_threads";

import type { Redeem } from "../core/guard-context.ts";
import { installFetchInterceptor, type TokenGuard } from "../hosts/global-fetch.ts";
import { observeTokenPosts } from "../hosts/token-post-observer.ts";
import { HANDOFF_KEY, patchWorkerConstructor, type WorkerHandoff } from "../hosts/worker-seam.ts";
import type { GuardRuntime } from "./guard-runtime.ts";

const REQUIRE_END = "tracing:module.require:end";

/** The log line register() writes, without loading the event formatter into every worker. */
function notAttached(message: string): void {
  process.stderr.write(`[refresh-guard] event=not_attached thread=worker msg=${JSON.stringify(message)}\n`);
}

function stderrLogger() {
  const write = (line: string) => process.stderr.write(`${line}\n`);
  return { info: () => undefined, debug: () => undefined, warn: write, error: write };
}

function boot(): void {
  if (isMainThread) return;
  const handoff = getEnvironmentData(HANDOFF_KEY) as WorkerHandoff | undefined;
  if (handoff === undefined || handoff.config.providers.length === 0) return;
  patchWorkerConstructor(import.meta.url);

  let runtime: Promise<GuardRuntime> | undefined;
  const openRuntime = (): Promise<GuardRuntime> => {
    runtime ??= import("./guard-runtime.ts").then(
      ({ GuardRuntime }) =>
        new GuardRuntime(handoff.config, { logger: stderrLogger(), stateDir: handoff.stateDir, agentDirs: handoff.agentDirs }),
    );
    return runtime;
  };
  const routes = new Map<string, TokenGuard>();
  for (const provider of handoff.config.providers) {
    if (routes.has(provider.tokenUrl)) continue;
    const url = provider.tokenUrl;
    routes.set(url, {
      refresh: async (token: string, redeem: Redeem, options: { signal?: AbortSignal | null }) => {
        const guard = (await openRuntime()).routes().get(url);
        if (guard === undefined) throw new Error(`refresh-guard: no route for ${url}`);
        return guard.refresh(token, redeem, options);
      },
    });
  }
  // Only the status record's writer is loaded here, not the guard.
  const noteAttached = (seams: string[]) => {
    void import("./status-record.ts")
      .then(({ recordThreadAttached }) => recordThreadAttached(join(handoff.config.guardDir, "status"), seams))
      .catch(() => undefined);
  };

  const globalSeam = handoff.seams.includes("global-fetch") && typeof globalThis.fetch === "function";
  if (globalSeam) installFetchInterceptor(routes, globalThis as unknown as { fetch: typeof globalThis.fetch });
  observeTokenPosts([...routes.keys()], (url) => {
    const provider = handoff.config.providers.find((p) => p.tokenUrl === url)?.id ?? "unknown";
    void openRuntime()
      .then((guard) => guard.warnUnguarded(provider, url))
      .catch(() => undefined);
  });

  const undiciPath = handoff.hostUndiciPath;
  // 2026.4/5: global fetch is this thread's only seam, attached above and not noted (a line per
  // worker start would be the price).
  if (undiciPath === undefined || !handoff.seams.includes("host-undici")) return;
  const cache = createRequire(import.meta.url).cache;
  const tryWrap = (): boolean => {
    const loaded = cache[undiciPath]?.exports as { fetch?: unknown } | undefined;
    if (loaded === undefined || typeof loaded.fetch !== "function") return false;
    try {
      installFetchInterceptor(routes, loaded as { fetch: typeof globalThis.fetch });
      noteAttached(globalSeam ? ["host-undici", "global-fetch"] : ["host-undici"]);
    } catch (error) {
      notAttached(`wrapping ${undiciPath} failed: ${(error as Error).message}`);
    }
    return true;
  };
  if (tryWrap()) return;
  const onRequire = (message: unknown) => {
    const { id } = message as { id?: unknown };
    // The host asks for "undici/index.js" (2026.9) or "undici" (2026.7); undici's own files are relative.
    if (typeof id !== "string" || !id.startsWith("undici")) return;
    if (tryWrap()) unsubscribe(REQUIRE_END, onRequire);
  };
  subscribe(REQUIRE_END, onRequire);
}

try {
  boot();
} catch (error) {
  // Never break the host's worker.
  notAttached((error as Error).message);
}
