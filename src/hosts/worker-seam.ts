// The worker-thread seam. OpenClaw 2026.9.x refreshes OAuth tokens in gateway worker threads too
// (the model-catalog worker, agents/prepared-model-catalog.worker.js, resolves provider auth and
// refreshes through that thread's own copy of undici). A worker has its own module registry: the
// wrapper register() puts on the main thread's undici is not there. So every Worker the host
// creates after register() gets `--import <worker-bootstrap.js>` appended to its execArgv (the
// host passes its own execArgv, `[]` for its pools, which is kept), and the parsed plugin config is
// handed over with setEnvironmentData (cloned into each new worker). The bootstrap finds that
// thread's host undici the moment the host loads it and installs the same wrapper.
//
// `Worker` is replaced on the node:worker_threads exports by a subclass (instanceof keeps working),
// and syncBuiltinESMExports() makes the host's `import { Worker } from "node:worker_threads"`
// bindings see it, wherever they were imported before or after.
import { syncBuiltinESMExports } from "node:module";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import workerThreads from "node:worker_threads";

import type { RefreshGuardConfig } from "../config/parse-config.ts";
import { SCRIPT_KEY } from "../store/thread-label.ts";

/** What a worker's bootstrap needs to guard that thread, cloned into each new worker. */
export interface WorkerHandoff {
  config: RefreshGuardConfig;
  stateDir: string;
  agentDirs: string[];
  /** The seams the main thread attached: the worker attaches the same ones. */
  seams: string[];
  /** The host undici module the main thread wrapped (a path; the worker's copy is the same file). */
  hostUndiciPath?: string;
}

export const HANDOFF_KEY = "openclaw-refresh-guard.worker-handoff";
const PATCHED = Symbol.for("openclaw-refresh-guard.worker-seam");

type WorkerCtor = typeof workerThreads.Worker;
type WorkerArgs = ConstructorParameters<WorkerCtor>;

export interface WorkerSeamReport {
  attached: boolean;
  problem?: string;
}

/**
 * Hands `handoff` to every worker created from now on and makes them load the bootstrap. Idempotent:
 * a second call only replaces the handoff (the latest registration's config wins). Never throws.
 */
export function installWorkerSeam(handoff: WorkerHandoff, url: string): WorkerSeamReport {
  try {
    workerThreads.setEnvironmentData(HANDOFF_KEY, structuredClone(handoff));
    patchWorkerConstructor(url);
    return { attached: true };
  } catch (error) {
    return { attached: false, problem: `worker threads: ${(error as Error).message}` };
  }
}

/** True when new workers of this thread get the bootstrap. */
export function workerSeamAttached(): boolean {
  return (workerThreads.Worker as WorkerCtor & { [PATCHED]?: boolean })[PATCHED] === true;
}

/** Wraps node:worker_threads' Worker in this thread (the main thread, or a worker for its own workers). */
export function patchWorkerConstructor(url: string): void {
  const current = workerThreads.Worker as WorkerCtor & { [PATCHED]?: boolean };
  if (current[PATCHED]) return;
  const Original = current;
  class Worker extends Original {
    constructor(...args: WorkerArgs) {
      const [filename, options] = args;
      const given = options ?? {};
      const execArgv = given.execArgv ?? process.execArgv;
      const withBootstrap = execArgv.includes(url) ? execArgv : [...execArgv, "--import", url];
      let named = false;
      try {
        workerThreads.setEnvironmentData(SCRIPT_KEY, scriptName(filename, given.eval === true));
        named = true;
      } catch {
        // A name is only for status; never fail a worker over it.
      }
      try {
        super(filename, { ...given, execArgv: withBootstrap });
      } finally {
        if (named) workerThreads.setEnvironmentData(SCRIPT_KEY, undefined);
      }
    }
  }
  Object.defineProperty(Worker, "name", { value: "Worker" });
  Object.defineProperty(Worker, PATCHED, { value: true });
  (workerThreads as { Worker: WorkerCtor }).Worker = Worker;
  syncBuiltinESMExports();
}

/** The worker's script file name ("prepared-model-catalog.worker.js"), "eval" for inline code. */
export function scriptName(filename: WorkerArgs[0], evalSource: boolean): string {
  if (evalSource) return "eval";
  try {
    if (filename instanceof URL) return filename.protocol === "file:" ? basename(fileURLToPath(filename)) : filename.protocol;
    const text = String(filename);
    return basename(text.startsWith("file:") ? fileURLToPath(text) : text);
  } catch {
    return "unknown";
  }
}
