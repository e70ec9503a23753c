// A simulated agent process: it refreshes the way OpenClaw's openai-codex path does (a form POST
// of the refresh token to the token URL with global fetch) when its parent tells it to (IPC),
// with N concurrent callers. With `guard: true` it runs what the plugin's register() runs in every
// host process (config parser, guard runtime, fetch interceptor), with its log lines sent to the
// parent. With `pauseAt` it reports reaching that stage of a redemption and waits there for the
// parent's "continue", so a test can SIGKILL or SIGSTOP it at a named point.
//
// For the benchmark a process also answers refreshes coordinated in other ways (`mode` of a refresh
// message), so that every design runs in the very same processes, rotation after rotation:
//   guard  the plugin (the default when `guard` is not false);
//   bare   a plain POST of the presented token with the process's own fetch, no coordination;
//   peer   what OpenClaw's core does since 2026.4.20 (see peerRefresh);
//   floor  the least any design could cost: one caller POSTs and writes the answer to a file,
//          every other caller waits on a watch of that file, then reads it.
// A "cpu" message answers with the process's CPU time so far.

import { createHash } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, watch, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

import { parseConfig } from "../../src/config/parse-config.ts";
import type { Stage } from "../../src/core/refresh-guard.ts";
import { installFetchInterceptor } from "../../src/hosts/global-fetch.ts";
import { GuardRuntime } from "../../src/plugin/guard-runtime.ts";

export interface AgentConfig {
  guard?: boolean;
  tokenUrl: string;
  stateDir: string;
  /** The plugin's user config (plugins.entries["refresh-guard"].config); the token URL is added. */
  pluginConfig?: Record<string, unknown>;
  pauseAt?: Stage;
  /** Put a fetch wrapper under the guard that drops every request's abort signal (as some wrappers do). */
  dropSignal?: boolean;
  /** Coordinate through this Redis (coordination.backend "redis") instead of the guard directory alone. */
  redis?: {
    url: string;
    onUnavailable?: "fail" | "file";
    commandTimeoutMs?: number;
    connectTimeoutMs?: number;
    passwordEnv?: string;
    [key: string]: unknown;
  };
  /** Benchmark only: how `peer` refreshes are coordinated (the real host's lock module and options). */
  peer?: PeerConfig;
  /** Benchmark only: the directory where `floor` refreshes leave their answer. */
  floorDir?: string;
  /** Benchmark only: false runs the guard with its waiter-path optimisation switched off (the "before"). */
  waiterOptimisation?: boolean;
  /** Benchmark only: time spent in each step of the guard, reported with each result. */
  profile?: boolean;
}

export interface LockOptions {
  retries: { retries: number; factor: number; minTimeout: number; maxTimeout: number; randomize: boolean };
  stale: number;
}

export interface PeerConfig {
  /** File URL or path of the host's `openclaw/plugin-sdk/file-lock` module (acquireFileLock / withFileLock). */
  lockModule: string;
  /** The per-profile refresh lock (`<stateDir>/locks/oauth-refresh/sha256-…`). */
  refreshLockPath: string;
  refreshLock: LockOptions;
  /** The shared credential store (auth-profiles.json) and its own lock's options. */
  storePath: string;
  storeLock: LockOptions;
  profileId: string;
  /** A stored access token is reused only if it stays valid this long (the host's refresh margin). */
  marginMs: number;
}

export type Mode = "guard" | "bare" | "peer" | "floor";

export interface CallResult {
  status: number;
  access?: string;
  refresh?: string;
  error?: string;
  ms: number;
  /** with `profile`: when the caller was answered (ms since the epoch, sub-millisecond) */
  endAt?: number;
}

/** With `profile`: one timed step of this process (ms since the epoch, sub-millisecond). */
export interface Mark {
  label: string;
  start: number;
  end: number;
  /** lock.tryAcquire: whether it took the lock */
  ok?: boolean;
}

/** Per step of the guard: calls and milliseconds spent (with `profile`). */
export type StageTimes = Record<string, { n: number; ms: number }>;

const config = JSON.parse(process.env.AGENT_CONFIG ?? "{}") as AgentConfig;
const send = (message: unknown) => process.send?.(message);
const log = (level: string) => (line: string) => send({ type: "log", level, line });

if (config.dropSignal) {
  const base = globalThis.fetch;
  globalThis.fetch = ((input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    if (init === undefined) return base(input);
    const { signal: _dropped, ...rest } = init;
    return base(input, rest);
  }) as typeof fetch;
}

/** Reports reaching `stage` and waits for the parent's "continue", if `stage` is the configured pause. */
async function pause(stage: Stage): Promise<void> {
  if (stage !== config.pauseAt) return;
  const resumed = new Promise((resolve) => process.once("message", resolve));
  send({ type: "stage", stage, pid: process.pid });
  await resumed;
}

// The process's own fetch, before the plugin wraps it: what `bare`, `peer` and `floor` use.
const stageTimes: StageTimes = {};
const marks: Mark[] = [];
const epoch = () => performance.timeOrigin + performance.now();
if (config.profile) await profileGuard();
const plainFetch = globalThis.fetch;

if (config.guard !== false) {
  const pluginConfig = parseConfig(
    {
      // The guard dir 0.1.0 defaulted to, so each test's agents share one private dir.
      guardDir: join(config.stateDir, "refresh-guard"),
      ...config.pluginConfig,
      ...(config.redis ? { coordination: { backend: "redis", redis: config.redis } } : {}),
      providers: { "openai-codex": { enabled: true, tokenUrl: config.tokenUrl } },
    },
    { stateDir: config.stateDir },
  );
  const runtime = new GuardRuntime(pluginConfig, {
    logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
    stateDir: config.stateDir,
    stage: pause,
    waiterOptimisation: config.waiterOptimisation !== false,
  });
  installFetchInterceptor(runtime.routes());
}

async function callOnce(refreshToken: string, fetchImpl: typeof fetch = fetch, started = performance.now()): Promise<CallResult> {
  try {
    const response = await fetchImpl(config.tokenUrl, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: "app_test" }).toString(),
    });
    const text = await response.text();
    const ms = performance.now() - started;
    if (response.status !== 200) return { status: response.status, error: text, ms };
    const body = JSON.parse(text) as { access_token?: string; refresh_token?: string };
    if (!body.access_token || !body.refresh_token) return { status: 200, error: "incomplete token response", ms };
    return { status: 200, access: body.access_token, refresh: body.refresh_token, ms };
  } catch (error) {
    return { status: 0, error: `${(error as Error).name}: ${(error as Error).message}`, ms: performance.now() - started };
  }
}

// ---------------------------------------------------------------------------------------------
// peer: OpenClaw's core since 2026.4.20 (2026.5.7: dist/oauth-*.js refreshOAuthTokenWithLock and
// doRefreshOAuthTokenWithLock). Callers of one process queue behind each other per profile; each
// then takes the global per-profile refresh lock, then the store file's lock, re-reads the store,
// returns the stored credential if it is still usable, else refreshes and saves the store
// (temp file, fsync, rename, directory fsync, as the host's saveJsonFile). The locks are the real
// host's: its public `openclaw/plugin-sdk/file-lock`, loaded from the installed host.

type WithFileLock = <T>(path: string, options: LockOptions, fn: () => Promise<T>) => Promise<T>;
const peerLock: Promise<WithFileLock> | null = config.peer
  ? import(config.peer.lockModule.startsWith("file:") ? config.peer.lockModule : pathToFileURL(config.peer.lockModule).href).then(
      (module: { withFileLock: WithFileLock }) => module.withFileLock,
    )
  : null;
let peerQueue: Promise<void> = Promise.resolve();

async function peerCall(): Promise<CallResult> {
  const started = performance.now();
  const previous = peerQueue;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  peerQueue = gate;
  try {
    await previous;
    return await peerRefresh(started);
  } catch (error) {
    return { status: 0, error: `${(error as Error).name}: ${(error as Error).message}`, ms: performance.now() - started };
  } finally {
    release();
  }
}

interface StoredCredential {
  type: "oauth";
  provider: string;
  access: string;
  refresh: string;
  expires: number;
}

async function peerRefresh(started: number): Promise<CallResult> {
  const peer = config.peer!;
  const withFileLock = await peerLock!;
  return withFileLock(peer.refreshLockPath, peer.refreshLock, () =>
    withFileLock(peer.storePath, peer.storeLock, async () => {
      const store = JSON.parse(readFileSync(peer.storePath, "utf8")) as { profiles: Record<string, StoredCredential> };
      const credential = store.profiles[peer.profileId]!;
      if (credential.expires - Date.now() > peer.marginMs) {
        return { status: 200, access: credential.access, refresh: credential.refresh, ms: performance.now() - started };
      }
      await pause("before-post");
      const result = await callOnce(credential.refresh, plainFetch, started);
      if (result.status !== 200 || result.refresh === undefined || result.access === undefined) return result;
      store.profiles[peer.profileId] = { ...credential, access: result.access, refresh: result.refresh, expires: Date.now() + 3600_000 };
      saveJson(peer.storePath, store);
      result.ms = performance.now() - started;
      return result;
    }),
  );
}

function saveJson(path: string, data: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeFileSync(fd, `${JSON.stringify(data, null, 2)}\n`, "utf8");
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// floor: one event wakes everyone. The redeeming process's first caller POSTs and writes the
// answer (write, rename: no fsync); each process opens one watch of the answer's directory when
// its callers arrive, reads the file once it appears, and hands it to all its callers.

let floorWait: { name: string; answer: Promise<string> } | null = null;

async function floorCall(refreshToken: string, redeems: boolean): Promise<CallResult> {
  const started = performance.now();
  const name = `${createHash("sha256").update(refreshToken).digest("hex").slice(0, 32)}.json`;
  const path = join(config.floorDir!, name);
  if (redeems) {
    const result = await callOnce(refreshToken, plainFetch, started);
    writeFileSync(`${path}.tmp`, JSON.stringify(result));
    renameSync(`${path}.tmp`, path);
    result.ms = performance.now() - started;
    return result;
  }
  if (floorWait?.name !== name) floorWait = { name, answer: waitForFile(config.floorDir!, name) };
  const text = await floorWait.answer;
  const result = JSON.parse(text) as CallResult;
  return { ...result, ms: performance.now() - started };
}

function waitForFile(dir: string, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let done = false;
    const tryRead = () =>
      readFile(join(dir, name), "utf8").then(
        (text) => {
          if (done) return;
          done = true;
          watcher.close();
          resolve(text);
        },
        (error: NodeJS.ErrnoException) => {
          if (error.code !== "ENOENT" && !done) {
            done = true;
            watcher.close();
            reject(error);
          }
        },
      );
    const watcher = watch(dir, { persistent: false }, (_event, filename) => {
      if (filename === null || String(filename) === name) void tryRead();
    });
    // It may have been written before the watch was open.
    void tryRead();
  });
}

// ---------------------------------------------------------------------------------------------
// profile: wraps the guard's steps (prototype methods) to sum the time each takes per rotation.

async function profileGuard(): Promise<void> {
  const { Journal } = await import("../../src/store/journal.ts");
  const { RefreshLocks } = await import("../../src/store/refresh-lock.ts");
  const { DirWatch } = await import("../../src/store/dir-watch.ts");
  const { StatusStore } = await import("../../src/plugin/status-record.ts");
  const wrap = (label: string, proto: object, method: string) => {
    const target = proto as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const original = target[method]!;
    target[method] = async function (this: unknown, ...args: unknown[]) {
      const started = performance.now();
      try {
        return await original.apply(this, args);
      } finally {
        const entry = stageTimes[label] ?? { n: 0, ms: 0 };
        entry.n += 1;
        entry.ms += performance.now() - started;
        stageTimes[label] = entry;
      }
    };
  };
  const mark = (label: string, proto: object, method: string) => {
    const target = proto as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const original = target[method]!;
    target[method] = async function (this: unknown, ...args: unknown[]) {
      const start = epoch();
      let result: unknown;
      try {
        result = await original.apply(this, args);
        return result;
      } finally {
        marks.push({ label, start, end: epoch(), ok: result !== null && result !== undefined });
      }
    };
  };
  mark("journal.write", Journal.prototype, "write");
  mark("lock.tryAcquire", RefreshLocks.prototype, "tryAcquire");
  mark("watch.wait", DirWatch.prototype, "wait");
  // The token POST itself, under the guard's wrapper (which calls the fetch it found installed).
  const fetchBefore = globalThis.fetch;
  globalThis.fetch = async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const start = epoch();
    try {
      return await fetchBefore(input, init);
    } finally {
      marks.push({ label: "post", start, end: epoch() });
    }
  };
  wrap("journal.read", Journal.prototype, "read");
  wrap("journal.has", Journal.prototype, "has");
  wrap("journal.readTombstone", Journal.prototype, "readTombstone");
  wrap("journal.write", Journal.prototype, "write");
  wrap("lock.tryAcquire", RefreshLocks.prototype, "tryAcquire");
  wrap("watch.wait", DirWatch.prototype, "wait");
  wrap("status.record", StatusStore.prototype, "record");
}

function takeStages(): StageTimes {
  const taken = { ...stageTimes };
  for (const key of Object.keys(stageTimes)) delete stageTimes[key];
  return taken;
}

process.on(
  "message",
  async (message: { id: number; type: string; refreshToken: string; callers: number; mode?: Mode; redeems?: boolean }) => {
    if (message.type === "exit") process.exit(0);
    if (message.type === "cpu") {
      const { user, system } = process.cpuUsage();
      send({ type: "cpu", id: message.id, cpuUs: user + system, stages: takeStages(), marks: marks.splice(0) });
      return;
    }
    if (message.type !== "refresh") return;
    if (config.profile) {
      const now = epoch();
      marks.push({ label: "arrival", start: now, end: now });
    }
    const mode = message.mode ?? (config.guard === false ? "bare" : "guard");
    const call = (index: number): Promise<CallResult> => {
      if (mode === "peer") return peerCall();
      if (mode === "floor") return floorCall(message.refreshToken, message.redeems === true && index === 0);
      return callOnce(message.refreshToken, mode === "bare" ? plainFetch : fetch);
    };
    const results = await Promise.all(
      Array.from({ length: message.callers }, (_, index) =>
        call(index).then((result) => (config.profile ? { ...result, endAt: epoch() } : result)),
      ),
    );
    send({ type: "result", id: message.id, results });
  },
);
send({ type: "ready", pid: process.pid });
