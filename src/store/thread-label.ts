// Which thread of a host process is writing: "main", or "worker:<script file name>" for a worker
// thread the plugin's worker seam started (it names the script around the Worker constructor).
// No imports beyond node:worker_threads: worker bootstraps load this on every worker start.
import { getEnvironmentData, isMainThread } from "node:worker_threads";

/** The script of a worker being created, set by the worker seam around the Worker constructor. */
export const SCRIPT_KEY = "openclaw-refresh-guard.worker-script";

/** "main", or "worker:<script>" (file name only, characters outside [\w.@+-] replaced). */
export function threadLabel(): string {
  if (isMainThread) return "main";
  let script: unknown;
  try {
    script = getEnvironmentData(SCRIPT_KEY);
  } catch {
    script = undefined;
  }
  const name = typeof script === "string" && script !== "" ? script.replace(/[^\w.@+-]/g, "_").slice(0, 120) : "unknown";
  return `worker:${name}`;
}
