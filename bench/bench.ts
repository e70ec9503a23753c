// The benchmark: what refresh-guard costs and what it buys, measured in one run over real loopback
// HTTP and real child processes (test/support/agent-pool.ts) against the stand-in token endpoint,
// side by side with OpenClaw's own coordination and with the least any design could cost.
//
//   npm run bench                 32 processes × 8 callers, 10 rotations, scale 1–64 (5–7 min on 2 busy cores)
//   npm run bench -- --quick      8 processes × 4 callers, 3 rotations, scale 1–16 (about 2 min on 2 busy cores)
//   npm run bench -- --json       the same table, then one JSON object as the last line of stdout
//
// It measures and reports; it does not judge: the exit code is 0 even when a target is missed.
// Progress goes to stderr so that stdout holds only the report.
//
// Every absolute number is skewed by other work on the machine (the report gives the load and how
// busy the CPUs were in the second before the run); the ratios compare designs measured in the
// same processes, rotation after rotation, and hold much better. Phases, one after the other:
//   1. hot path: non-token fetches (GET, and POST to a non-token URL) through the interceptor's
//      wrapper vs the original fetch, interleaved request by request, to a server in another process;
//   2. rotations at the headline point: P processes × C callers refresh one credential at once, R
//      times, for each design in turn ("arms", see runPoint): the guard, no coordination (each
//      process presents its own copy), the peer (OpenClaw's own per-profile lock and store
//      re-read) and the floor (one POST, everyone else woken by a watch of one file).
//      waiterP99OverServerMs is the p99, over every caller of every measured rotation (the
//      redeeming caller included), of its latency minus the stand-in's fixed latency;
//      The "redis" arm is the guard with the Redis backend: each process has its own state and
//      guard dir (as if on its own machine) and all share one local redis-server;
//   3. the waiter path at small scale (8 × 4): the same arms plus the guard with its waiter-path
//      optimisation switched off, profiled step by step (the critical path of a rotation);
//   4. scale: 1 … 64 processes × 8 callers, the guard, the peer and the floor;
//   5. crash recovery: the lock holder is SIGKILLed before its request leaves; time until a
//      sibling's caller holds a valid token, with the guard and with the peer.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { arch, cpus, loadavg, platform, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { parseConfig } from "../src/config/parse-config.ts";
import { DEFAULT_TIMING } from "../src/core/refresh-guard.ts";
import { installFetchInterceptor } from "../src/hosts/global-fetch.ts";
import { GuardRuntime } from "../src/plugin/guard-runtime.ts";
import { Agent, type AgentConfig, type CallResult, type Mark, type Mode, startAgents } from "../test/support/agent-pool.ts";
import { ensureHost } from "../test/support/install-host.ts";
import { type RedisServer, startRedis } from "../test/support/redis-server.ts";
import type { LockOptions, PeerConfig } from "../test/support/simulated-agent.ts";
import { type StandInEndpoint, startStandIn } from "../test/support/token-endpoint-server.ts";

const { values: args } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
  },
});
const QUICK = args.quick === true;

/** Callers per process in the scale table. */
const SCALE_CALLERS = 8;
const PLAN = QUICK
  ? {
      processes: 8,
      callers: 4,
      rotations: 3,
      crashRuns: 3,
      hotWarmup: 1500,
      hotRounds: 20,
      hotRequests: 100,
      headlineArms: ["guard", "guardBefore", "bare", "peer", "floor", "redis"] as ArmName[],
      /** the waiter-path profile (before/after): the headline point itself */
      gap: null as { processes: number; callers: number; rotations: number } | null,
      scale: [1, 2, 4, 8, 16],
      scaleRotations: 2,
    }
  : {
      processes: 32,
      callers: 8,
      rotations: 10,
      crashRuns: 5,
      hotWarmup: 1500,
      hotRounds: 30,
      hotRequests: 200,
      headlineArms: ["guard", "bare", "peer", "floor", "redis"] as ArmName[],
      gap: { processes: 8, callers: 4, rotations: 5 } as { processes: number; callers: number; rotations: number } | null,
      scale: [1, 2, 4, 8, 16, 32, 64],
      scaleRotations: 3,
    };
// A smaller plan for the smoke test (test/bench-smoke.test.ts): JSON merged over PLAN.
if (process.env.REFRESH_GUARD_BENCH_PLAN) Object.assign(PLAN, JSON.parse(process.env.REFRESH_GUARD_BENCH_PLAN) as Partial<typeof PLAN>);
/** The stand-in's delay before each token answer: what a caller must wait anyway. */
const LATENCY_MS = 100;
/** Quiet time before each rotation, so every agent is idle (status writes, lock release, GC done). */
const SETTLE_MS = 250;

const TARGETS = {
  redemptionsPerRotation: { op: "=", value: 1 },
  failures: { op: "=", value: 0 },
  waiterP99OverServerMs: { op: "≤", value: 25 },
  hotPathOverheadRatio: { op: "≤", value: 1.02 },
  crashRecoveryMs: { op: "≤", value: 3000 },
  waiterP99VsPeer: { op: "≤", value: 0.5 },
  waiterP99VsFloor: { op: "≤", value: 1.5 },
  crashRecoveryVsPeer: { op: "≤", value: 0.05 },
} as const;
type TargetName = keyof typeof TARGETS;

const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Statistics

function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}
const median = (values: readonly number[]) => quantile(values, 0.5);
const round = (value: number, digits = 1) => Number(value.toFixed(digits));

function distribution(values: readonly number[], digits = 1) {
  return {
    n: values.length,
    min: round(Math.min(...values), digits),
    p50: round(median(values), digits),
    p90: round(quantile(values, 0.9), digits),
    p99: round(quantile(values, 0.99), digits),
    max: round(Math.max(...values), digits),
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Hot path: what the interceptor adds to a fetch that is not a token refresh.
//
// Both arms call a fetch function through the same call site, taking turns request by request
// (which arm goes first rotates every request), so machine drift (a noisy neighbour, frequency
// changes, GC) lands on both arms alike. The "with" arm is the wrapper installFetchInterceptor puts in place,
// installed on a host object holding the real global fetch: exactly the function the host calls
// once the plugin is registered. Swapping globalThis.fetch between batches instead was tried:
// every swap invalidates V8's constant cell for the global, and batch-level alternation leaves
// drift on one arm; an A/A run (original vs original) of that design varied by up to ±12%, this
// one by about 1%, and under 0.3% once each round's two arms are compared with each other (see
// compare()). The A/A control is run here too, interleaved the same way, as the noise floor.

const ECHO_SERVER = `
const server = require("node:http").createServer((req, res) => { req.resume(); req.on("end", () => res.end("ok")); });
server.keepAliveTimeout = 120000;
server.listen(0, "127.0.0.1", () => process.stdout.write(server.address().port + "\\n"));
process.on("disconnect", () => process.exit(0));
`;

interface HotPathResult {
  /** max of the GET and POST ratios */
  ratio: number;
  get: ArmComparison;
  post: ArmComparison;
  /** original vs original, interleaved the same way: the noise floor of `ratio` */
  controlRatio: number;
  /** the wrapper alone, around a fetch that returns at once: ns added per call */
  wrapperNsPerCall: { get: number; post: number };
  rounds: number;
  requestsPerArmPerRound: number;
}

interface ArmComparison {
  /** median over rounds of (this round's median with the interceptor ÷ its median without) */
  ratio: number;
  /** median of the per-round medians with ÷ the same without (noisier: drift between rounds stays in) */
  ratioOfMedians: number;
  withoutUs: number;
  withUs: number;
}

async function measureHotPath(): Promise<HotPathResult> {
  const server = await startEchoServer();
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const original = globalThis.fetch;
    const host = { fetch: original };
    // The plugin's own routes (a real runtime's token URL on the same origin), as register() installs them.
    const stateDir = await mkdtemp(join(tmpdir(), "rg-bench-hot-"));
    const config = parseConfig(
      { guardDir: join(stateDir, "refresh-guard"), providers: { "openai-codex": { tokenUrl: `${base}/oauth/token` } } },
      {},
    );
    const silent = () => undefined;
    const runtime = new GuardRuntime(config, { logger: { info: silent, warn: silent, error: silent }, stateDir });
    installFetchInterceptor(runtime.routes(), host);
    const wrapped = host.fetch;
    if (wrapped === original) throw new Error("bench: the interceptor did not wrap fetch");

    const get = () => [`${base}/v1/models`, undefined] as const;
    const post = () =>
      [`${base}/v1/responses`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"input":"hi"}' }] as const;
    const timeOne = async (fetchImpl: typeof fetch, request: () => readonly [string, RequestInit | undefined]) => {
      const [url, init] = request();
      const started = performance.now();
      const response = await fetchImpl(url, init);
      await response.arrayBuffer();
      return performance.now() - started;
    };
    const arms: Record<string, typeof fetch> = { without: original, with: wrapped, control: original };
    const names = Object.keys(arms);

    // Warm both paths up (JIT, connection) before anything counts.
    for (let i = 0; i < PLAN.hotWarmup; i += 1) {
      for (const name of names) {
        await timeOne(arms[name]!, get);
        await timeOne(arms[name]!, post);
      }
    }

    const perRound: Record<string, { get: number[]; post: number[] }> = {};
    for (const name of names) perRound[name] = { get: [], post: [] };
    for (let r = 0; r < PLAN.hotRounds; r += 1) {
      for (const [kind, request] of [
        ["get", get],
        ["post", post],
      ] as const) {
        const samples: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
        for (let i = 0; i < PLAN.hotRequests; i += 1) {
          // Rotate which arm goes first, so no arm always follows another.
          for (let k = 0; k < names.length; k += 1) {
            const name = names[(i + r + k) % names.length]!;
            samples[name]!.push(await timeOne(arms[name]!, request));
          }
        }
        for (const name of names) perRound[name]![kind].push(median(samples[name]!));
      }
    }
    await rm(stateDir, { recursive: true, force: true });

    // Both arms of a round ran interleaved, at the same time: their ratio cancels whatever the
    // machine did during that round. The median over rounds of those paired ratios varied by
    // ±0.2% in A/A runs; the ratio of the two arms' medians over rounds by up to ±1.7%.
    const compare = (kind: "get" | "post", arm: string): ArmComparison => {
      const without = perRound.without![kind];
      const withArm = perRound[arm]![kind];
      return {
        ratio: round(median(withArm.map((value, r) => value / without[r]!)), 4),
        ratioOfMedians: round(median(withArm) / median(without), 4),
        withoutUs: round(median(without) * 1000),
        withUs: round(median(withArm) * 1000),
      };
    };
    const getCmp = compare("get", "with");
    const postCmp = compare("post", "with");
    const control = Math.max(Math.abs(compare("get", "control").ratio - 1), Math.abs(compare("post", "control").ratio - 1));
    return {
      ratio: Math.max(getCmp.ratio, postCmp.ratio),
      get: getCmp,
      post: postCmp,
      controlRatio: round(1 + control, 4),
      wrapperNsPerCall: wrapperCost(runtime, base),
      rounds: PLAN.hotRounds,
      requestsPerArmPerRound: PLAN.hotRequests,
    };
  } finally {
    server.child.kill();
  }
}

/** The wrapper's own cost per call, around a fetch that returns a settled promise at once. */
function wrapperCost(runtime: GuardRuntime, base: string): { get: number; post: number } {
  const settled = Promise.resolve(new Response("ok"));
  const stub = (() => settled) as unknown as typeof fetch;
  const host = { fetch: stub };
  installFetchInterceptor(runtime.routes(), host);
  const wrapped = host.fetch;
  const postInit: RequestInit = { method: "POST", body: "{}" };
  const loop = (fetchImpl: typeof fetch, isPost: boolean, n: number) => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i += 1) {
      if (isPost) void fetchImpl(`${base}/v1/responses`, postInit);
      else void fetchImpl(`${base}/v1/models`);
    }
    return Number(process.hrtime.bigint() - started) / n;
  };
  const cost = (isPost: boolean) => {
    const bare: number[] = [];
    const wrappedNs: number[] = [];
    for (let r = 0; r < 15; r += 1) {
      bare.push(loop(stub, isPost, 100_000));
      wrappedNs.push(loop(wrapped, isPost, 100_000));
    }
    return round(Math.max(0, median(wrappedNs) - median(bare)), 0);
  };
  return { get: cost(false), post: cost(true) };
}

async function startEchoServer(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ["-e", ECHO_SERVER], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`bench: echo server exited (${code})`)));
    child.stdout!.once("data", (chunk: Buffer) => resolve(Number(String(chunk).trim())));
  });
  return { child, port };
}

// ---------------------------------------------------------------------------------------------
// 2 and 3. Rotations: every process refreshes one shared credential at the same moment.
//
// One pool of processes per scale point serves every design ("arm"): the guard, no coordination
// (`bare`), the host's own lock (`peer`) and the floor, one rotation of each in turn (the order
// rotates), so that load from elsewhere on the machine lands on all arms alike and their ratios
// hold. Each arm first runs one warm-up rotation on a login of its own: what is measured is then
// a running host (undici loaded, the guard or the host's lock module opened), not processes loading
// and compiling the fetch stack at the same instant. The warm-up is reported on its own.
//
// The peer is OpenClaw's own coordination since 2026.4.20, with the real host's lock code: the
// installed host's public `openclaw/plugin-sdk/file-lock` (an O_EXCL `<file>.lock` holding pid and
// creation time; stale when that pid is dead or the lock is older than `stale`; retries with
// randomised exponential back-off). Its options are the host's (2026.5.7,
// dist/store-CSOk8Bno.js: OAUTH_REFRESH_LOCK_OPTIONS = { retries: { retries: 20, factor: 2,
// minTimeout: 100, maxTimeout: 1e4, randomize: true }, stale: 18e4 } and AUTH_STORE_LOCK_OPTIONS =
// { retries: { retries: 10, … same back-off }, stale: 3e4 }; the same values in 2026.6.6, 2026.7.35
// and 2026.9.6). dist/oauth-DoxNzd4-.js doRefreshOAuthTokenWithLock takes the refresh lock
// (`<stateDir>/locks/oauth-refresh/sha256-…`), then the store's lock, re-reads the store, returns
// the stored credential unless it expires within DEFAULT_OAUTH_REFRESH_MARGIN_MS (300 s), else
// refreshes and saves the store. Note: the host's lock is not proper-lockfile (which is installed
// but not used for it).

const PEER_HOST_VERSION = "2026.5.7";
const OAUTH_REFRESH_LOCK_OPTIONS: LockOptions = {
  retries: { retries: 20, factor: 2, minTimeout: 100, maxTimeout: 10_000, randomize: true },
  stale: 180_000,
};
const AUTH_STORE_LOCK_OPTIONS: LockOptions = {
  retries: { retries: 10, factor: 2, minTimeout: 100, maxTimeout: 10_000, randomize: true },
  stale: 30_000,
};
const PEER_PROFILE_ID = "openai-codex:default";
const PEER_MARGIN_MS = 300_000;

type ArmName = "guard" | "guardBefore" | "bare" | "peer" | "floor" | "redis";
interface Arm {
  name: ArmName;
  mode: Mode;
  /** Runs in the second pool (agents with the waiter-path optimisation switched off). */
  before?: boolean;
  /** Runs in the Redis pool (own guard dir per process, one shared redis-server). */
  redis?: boolean;
}
const ARMS: Record<ArmName, Arm> = {
  guard: { name: "guard", mode: "guard" },
  guardBefore: { name: "guardBefore", mode: "guard", before: true },
  bare: { name: "bare", mode: "bare" },
  peer: { name: "peer", mode: "peer" },
  floor: { name: "floor", mode: "floor" },
  redis: { name: "redis", mode: "guard", redis: true },
};

interface PointPlan {
  processes: number;
  callers: number;
  rotations: number;
  arms: ArmName[];
  profile?: boolean;
}

interface RotationResult {
  processes: number;
  callersPerProcess: number;
  rotations: number;
  startupMs: number;
  redemptions: number;
  redemptionsPerRotation: number;
  reuses: number;
  invalid: number;
  failures: number;
  /** caller latency − stand-in latency, all callers of the measured rotations */
  overServerMs: ReturnType<typeof distribution>;
  /** the same, per rotation: p99 */
  perRotationP99OverServerMs: number[];
  /**
   * The median of those. The processes run in lockstep, so they cross V8's first old-generation
   * limit in the same rotation and all run a major GC at once; that rotation alone can hold every
   * sample above the overall p99 (seen with --trace-gc: one Mark-Compact per agent, same rotation).
   */
  medianRotationP99OverServerMs: number;
  /** caller latency, all callers */
  callerMs: ReturnType<typeof distribution>;
  /** from the parent's send to the last agent's answer, per rotation */
  rotationWallMs: ReturnType<typeof distribution>;
  /** CPU time of all agent processes per rotation (the rotation and the quiet time after it), median */
  cpuMsPerRotation: number;
  /** the untimed first rotation (cold processes), for reference */
  warmup: { p99OverServerMs: number; maxOverServerMs: number; failures: number };
  outcomes?: Record<string, number>;
  /** with profiling: ms per process per rotation in each step of the guard (mean), and calls */
  stages?: Record<string, { callsPerProcess: number; msPerProcess: number }>;
  /** with profiling: the critical path of a rotation, step by step (ms, median over rotations); see timeline() */
  timeline?: Record<string, number>;
}

interface ArmState {
  arm: Arm;
  overServer: number[];
  perRotationP99: number[];
  wall: number[];
  cpuMs: number[];
  failures: number;
  redemptions: number;
  reuses: number;
  invalid: number;
  warmup?: RotationResult["warmup"];
  outcomes: Record<string, number>;
  stages: Record<string, { n: number; ms: number }>;
  timeline: Record<string, number[]>;
  /** guard: the credential every process presents; bare: each process's own copy; floor: the current token */
  copies: string[];
}

async function runPoint(plan: PointPlan): Promise<Record<string, RotationResult>> {
  const server = await startStandIn({ latencyMs: LATENCY_MS });
  const stateDir = await mkdtemp(join(tmpdir(), "rg-bench-"));
  const floorDir = join(stateDir, "floor");
  await mkdir(floorDir, { recursive: true });
  const arms = plan.arms.map((name) => ARMS[name]);
  const label = `${plan.processes} × ${plan.callers}`;
  const config: AgentConfig = {
    stateDir,
    tokenUrl: server.url,
    floorDir,
    peer: await peerConfig(stateDir),
    ...(plan.profile ? { profile: true } : {}),
  };
  const storePath = config.peer!.storePath;
  await mkdir(dirname(storePath), { recursive: true });
  const startupStarted = performance.now();
  let main: Agent[] = [];
  let before: Agent[] = [];
  let viaRedis: Agent[] = [];
  let redisServer: RedisServer | null = null;
  try {
    if (arms.some((arm) => arm.redis)) redisServer = await startRedis();
    const redisUrl = redisServer?.url;
    [main, before, viaRedis] = await Promise.all([
      startAgents(plan.processes, config),
      arms.some((arm) => arm.before) ? startAgents(plan.processes, { ...config, waiterOptimisation: false }) : Promise.resolve([]),
      redisUrl === undefined
        ? Promise.resolve([])
        : Promise.all(
            Array.from({ length: plan.processes }, async (_, i) => {
              const agent = new Agent({ ...config, stateDir: join(stateDir, `machine-${i}`), redis: { url: redisUrl } });
              await agent.ready;
              return agent;
            }),
          ),
    ]);
    const startupMs = performance.now() - startupStarted;
    progress(`${label}: ${main.length + before.length + viaRedis.length} agents up in ${Math.round(startupMs)} ms`);
    await sleep(1000);
    const poolOf = (arm: Arm) => (arm.before ? before : arm.redis ? viaRedis : main);
    const lastCpu = new Map<Agent[], Awaited<ReturnType<typeof cpuOf>>>();
    const cpuOf = async (agents: Agent[]) => {
      const usages = await Promise.all(agents.map((agent) => agent.cpu()));
      return {
        cpuMs: usages.reduce((sum, usage) => sum + usage.cpuUs, 0) / 1000,
        stages: usages.map((usage) => usage.stages),
        marks: usages.map((usage) => usage.marks),
      };
    };

    const readStoreRefresh = async () =>
      (JSON.parse(await readFile(storePath, "utf8")) as { profiles: Record<string, { refresh: string }> }).profiles[PEER_PROFILE_ID]!
        .refresh;

    /** One rotation of `arm`; its agents presented `copies`. */
    const rotate = async (state: ArmState) => {
      const agents = poolOf(state.arm);
      // The pool's CPU reading after its previous rotation settled (the quiet time after a rotation
      // counts: lock release, status writes, GC), or taken now before its first.
      const cpuBefore = lastCpu.get(agents) ?? (await cpuOf(agents));
      if (state.arm.mode === "peer") await writeStore(storePath, state.copies[0]!, true);
      const counters = { ...server.counters };
      const eventsBefore = agents.map((agent) => agent.events.length);
      const sent = performance.now();
      const answers = await Promise.all(
        agents.map((agent, i) => agent.refresh(state.copies[i]!, plan.callers, { mode: state.arm.mode, redeems: i === 0 })),
      );
      const wallMs = performance.now() - sent;
      // Quiet time, so every agent is idle before the next rotation (status writes, lock release, GC done).
      await sleep(SETTLE_MS);
      const cpuAfter = await cpuOf(agents);
      lastCpu.set(agents, cpuAfter);
      const flat = answers.flat();
      const events: Record<string, number> = {};
      for (const event of agents.flatMap((agent, i) => agent.events.slice(eventsBefore[i]))) events[event] = (events[event] ?? 0) + 1;
      // Next rotation's credentials. bare: each process keeps its own copy, spent or not.
      answers.forEach((results, i) => {
        const success = results.find((result) => result.status === 200 && result.refresh !== undefined);
        if (success) state.copies[i] = success.refresh!;
      });
      if (state.arm.mode !== "bare") {
        const successor = flat.find((result) => isValid(server, result))?.refresh;
        if (successor !== undefined) state.copies.fill(successor);
      }
      if (state.arm.mode === "peer") state.copies.fill(await readStoreRefresh());
      return {
        timeline: plan.profile && state.arm.mode === "guard" ? timeline(cpuAfter.marks, answers) : null,
        overServer: flat.map((result) => result.ms - LATENCY_MS),
        failures: flat.filter((result) => !isValid(server, result)).length,
        wallMs,
        cpuMs: cpuAfter.cpuMs - cpuBefore.cpuMs,
        stages: cpuAfter.stages,
        events,
        redemptions: server.counters.redemptions - counters.redemptions,
        reuses: server.counters.reuses - counters.reuses,
        invalid: server.counters.invalid - counters.invalid,
      };
    };

    const states: ArmState[] = arms.map((arm) => ({
      arm,
      overServer: [],
      perRotationP99: [],
      wall: [],
      cpuMs: [],
      failures: 0,
      redemptions: 0,
      reuses: 0,
      invalid: 0,
      outcomes: {},
      stages: {},
      timeline: {},
      copies: [],
    }));
    for (const state of states) {
      const login = server.issue(`acct-warmup-${state.arm.name}`);
      state.copies = poolOf(state.arm).map(() => login.refresh);
      const warm = await rotate(state);
      state.warmup = {
        p99OverServerMs: round(quantile(warm.overServer, 0.99)),
        maxOverServerMs: round(Math.max(...warm.overServer)),
        failures: warm.failures,
      };
      const first = server.issue(`acct-${state.arm.name}`);
      state.copies = poolOf(state.arm).map(() => first.refresh);
    }
    for (let rotation = 0; rotation < plan.rotations; rotation += 1) {
      for (let k = 0; k < states.length; k += 1) {
        const state = states[(rotation + k) % states.length]!;
        const done = await rotate(state);
        state.overServer.push(...done.overServer);
        state.perRotationP99.push(round(quantile(done.overServer, 0.99)));
        state.wall.push(done.wallMs);
        state.cpuMs.push(done.cpuMs);
        state.failures += done.failures;
        state.redemptions += done.redemptions;
        state.reuses += done.reuses;
        state.invalid += done.invalid;
        for (const [event, count] of Object.entries(done.events)) state.outcomes[event] = (state.outcomes[event] ?? 0) + count;
        if (done.timeline) {
          for (const [step, value] of Object.entries(done.timeline)) state.timeline[step] = [...(state.timeline[step] ?? []), value];
        }
        for (const perAgent of done.stages) {
          for (const [stage, time] of Object.entries(perAgent)) {
            const entry = state.stages[stage] ?? { n: 0, ms: 0 };
            entry.n += time.n;
            entry.ms += time.ms;
            state.stages[stage] = entry;
          }
        }
      }
      progress(
        `${label} rotation ${rotation + 1}/${plan.rotations}: p99 over server ` +
          states.map((state) => `${state.arm.name} ${state.perRotationP99.at(-1)}`).join(", ") +
          " ms",
      );
    }
    const results: Record<string, RotationResult> = {};
    for (const state of states) {
      const result: RotationResult = {
        processes: plan.processes,
        callersPerProcess: plan.callers,
        rotations: plan.rotations,
        startupMs: Math.round(startupMs),
        redemptions: state.redemptions,
        redemptionsPerRotation: round(state.redemptions / plan.rotations, 3),
        reuses: state.reuses,
        invalid: state.invalid,
        failures: state.failures,
        overServerMs: distribution(state.overServer),
        perRotationP99OverServerMs: state.perRotationP99,
        medianRotationP99OverServerMs: median(state.perRotationP99),
        callerMs: distribution(state.overServer.map((ms) => ms + LATENCY_MS)),
        rotationWallMs: distribution(state.wall),
        cpuMsPerRotation: round(median(state.cpuMs)),
        warmup: state.warmup!,
      };
      if (state.arm.mode === "guard") result.outcomes = state.outcomes;
      if (plan.profile && state.arm.mode === "guard") {
        result.timeline = Object.fromEntries(Object.entries(state.timeline).map(([step, values]) => [step, round(median(values))]));
        const per = plan.processes * plan.rotations;
        result.stages = Object.fromEntries(
          Object.entries(state.stages).map(([stage, time]) => [
            stage,
            { callsPerProcess: round(time.n / per, 2), msPerProcess: round(time.ms / per, 2) },
          ]),
        );
      }
      results[state.arm.name] = result;
    }
    return results;
  } finally {
    await Promise.all([...main, ...before, ...viaRedis].map((agent) => agent.stop()));
    await redisServer?.stop();
    await server.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

/**
 * Where a rotation's time goes under the guard, from the marks of every process (epoch ms; one
 * machine, one clock): the redeeming process from the parent's message to its POST (journal miss,
 * lock), the POST beyond the stand-in's latency, from its answer to the journal entry being linked
 * (buffer, parse, seal, fsync, link), then each waiting process's wake after that link (watch), and
 * each waiting caller's answer after its process woke (journal read, decrypt, answer).
 */
function timeline(marks: Mark[][], answers: CallResult[][]): Record<string, number> | null {
  const redeemer = marks.findIndex((list) => list.some((mark) => mark.label === "post"));
  if (redeemer === -1) return null;
  const own = marks[redeemer]!;
  const arrival = own.find((mark) => mark.label === "arrival")?.start;
  const post = own.find((mark) => mark.label === "post")!;
  const lock = own.find((mark) => mark.label === "lock.tryAcquire" && mark.ok);
  const write = own.find((mark) => mark.label === "journal.write");
  if (arrival === undefined || write === undefined) return null;
  const wakes: number[] = [];
  const answered: number[] = [];
  const polls: number[] = [];
  marks.forEach((list, i) => {
    if (i === redeemer) return;
    const waits = list.filter((mark) => mark.label === "watch.wait");
    polls.push(waits.length);
    const last = waits.at(-1);
    if (last === undefined) return;
    wakes.push(last.end - write.end);
    for (const result of answers[i]!) if (result.endAt !== undefined) answered.push(result.endAt - last.end);
  });
  return {
    toLockMs: (lock?.end ?? post.start) - arrival,
    lockToPostMs: post.start - (lock?.end ?? post.start),
    postOverServerMs: post.end - post.start - LATENCY_MS,
    answerToJournalLinkedMs: write.end - post.end,
    journalWriteMs: write.end - write.start,
    wakeAfterLinkP50Ms: median(wakes),
    wakeAfterLinkMaxMs: Math.max(...wakes),
    answerAfterWakeP50Ms: median(answered),
    answerAfterWakeMaxMs: Math.max(...answered),
    waitsPerWaitingProcess: median(polls),
    // The redeeming process's own callers wait for the whole durable write and the lock release;
    // with few processes they are the slowest callers of a rotation.
    redeemerCallersOverServerMaxMs: Math.max(...answers[redeemer]!.map((result) => result.ms - LATENCY_MS)),
    waitingCallersOverServerMaxMs: Math.max(
      ...answers.flatMap((results, i) => (i === redeemer ? [] : results.map((result) => result.ms - LATENCY_MS))),
    ),
  };
}

/** The peer's paths in `stateDir`: the host's refresh lock and the shared store (auth-profiles.json). */
async function peerConfig(stateDir: string): Promise<PeerConfig> {
  const host = await peerHost();
  return {
    lockModule: host.lockModule,
    // resolveOAuthRefreshLockPath: sha256 of provider, NUL, profile id.
    refreshLockPath: join(
      stateDir,
      "locks",
      "oauth-refresh",
      `sha256-${createHash("sha256").update(`openai-codex\0${PEER_PROFILE_ID}`).digest("hex")}`,
    ),
    refreshLock: OAUTH_REFRESH_LOCK_OPTIONS,
    storePath: join(stateDir, "agents", "main", "agent", "auth-profiles.json"),
    storeLock: AUTH_STORE_LOCK_OPTIONS,
    profileId: PEER_PROFILE_ID,
    marginMs: PEER_MARGIN_MS,
  };
}

/** The shared store holding the profile's credential, expired (a refresh is due) or not. */
async function writeStore(storePath: string, refresh: string, expired: boolean): Promise<void> {
  const credential = {
    type: "oauth",
    provider: "openai-codex",
    access: "expired",
    refresh,
    expires: expired ? Date.now() - 1000 : Date.now() + 3600_000,
  };
  await writeFile(storePath, JSON.stringify({ version: 1, profiles: { [PEER_PROFILE_ID]: credential } }, null, 2));
}

/** The installed host whose lock module the peer uses (installed on first use, then reused). */
let peerHostInstall: Promise<{ lockModule: string }> | null = null;
function peerHost(): Promise<{ lockModule: string }> {
  peerHostInstall ??= (async () => {
    const install = await ensureHost(PEER_HOST_VERSION, { log: progress });
    const lockModule = join(install.dir, "node_modules", "openclaw", "dist", "plugin-sdk", "file-lock.js");
    await readFile(lockModule);
    return { lockModule };
  })();
  return peerHostInstall;
}

/** A caller holds a valid token: 200, an access token the server honours, a live refresh token. */
function isValid(server: StandInEndpoint, result: CallResult): boolean {
  return (
    result.status === 200 &&
    result.access !== undefined &&
    result.refresh !== undefined &&
    server.accessValid(result.access) &&
    server.refreshLive(result.refresh)
  );
}

// ---------------------------------------------------------------------------------------------
// 4. Crash recovery: the holder dies before its request leaves; a sibling is already waiting.
//
// Each holder is a fresh process. RefreshGuard.open settles proper-lockfile's mtime-precision probe
// with a throwaway lock, so the holder's real lock is dated "now", not up to a second ahead:
// expect staleMs − ~100 ms + poll + one redemption, i.e. a little over 2 s here.

interface CrashResult {
  medianMs: number;
  maxMs: number;
  samplesMs: number[];
  failures: number;
  redemptions: number;
  reuses: number;
  staleMs: number;
}

async function crashRecovery(mode: "guard" | "peer"): Promise<CrashResult> {
  const server = await startStandIn({ latencyMs: LATENCY_MS });
  const stateDir = await mkdtemp(join(tmpdir(), `rg-bench-crash-${mode}-`));
  let agents: Agent[] = [];
  try {
    const config: AgentConfig = { stateDir, tokenUrl: server.url };
    if (mode === "peer") {
      config.peer = await peerConfig(stateDir);
      await mkdir(dirname(config.peer.storePath), { recursive: true });
    }
    const holders = await startAgents(PLAN.crashRuns, { ...config, pauseAt: "before-post" });
    const [sibling] = await startAgents(1, config);
    agents = [...holders, sibling!];
    await sleep(500);
    const samples: number[] = [];
    let failures = 0;
    for (const holder of holders) {
      await sleep(SETTLE_MS);
      const credential = server.issue("acct-crash");
      if (config.peer) await writeStore(config.peer.storePath, credential.refresh, true);
      void holder.refresh(credential.refresh, 1, { mode });
      await holder.stage();
      // The sibling's callers find the lock held and wait on it, as agents would.
      const answered = sibling!.refresh(credential.refresh, 2, { mode }).then((results) => ({ results, at: performance.now() }));
      await sleep(100);
      const killed = performance.now();
      holder.child.kill("SIGKILL");
      const { results, at } = await answered;
      const ok = results.filter((result) => isValid(server, result)).length;
      failures += results.length - ok;
      samples.push(round(at - killed, 0));
      progress(`${mode} crash ${samples.length}/${PLAN.crashRuns}: a sibling held a valid token ${samples.at(-1)} ms after the kill`);
    }
    return {
      medianMs: median(samples),
      maxMs: Math.max(...samples),
      samplesMs: samples,
      failures,
      redemptions: server.counters.redemptions,
      reuses: server.counters.reuses,
      staleMs: mode === "guard" ? DEFAULT_TIMING.staleMs : OAUTH_REFRESH_LOCK_OPTIONS.stale,
    };
  } finally {
    await Promise.all(agents.map((agent) => agent.stop()));
    await server.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function meets(name: TargetName, value: number): boolean {
  const target = TARGETS[name];
  return target.op === "=" ? value === target.value : value <= target.value;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** Share of all CPUs' time spent busy over the next `ms`. */
async function machineBusy(ms: number): Promise<number> {
  const sample = () =>
    cpus().reduce(
      (sum, cpu) => {
        const { idle, ...rest } = cpu.times;
        return { idle: sum.idle + idle, total: sum.total + idle + Object.values(rest).reduce((a, b) => a + b, 0) };
      },
      { idle: 0, total: 0 },
    );
  const before = sample();
  await sleep(ms);
  const after = sample();
  const total = after.total - before.total;
  return total > 0 ? round(1 - (after.idle - before.idle) / total, 2) : 0;
}

const fmt = (distribution: { p50: number; p99: number; max: number }) =>
  `p50 ${distribution.p50} · p99 ${distribution.p99} · max ${distribution.max}`;

async function main(): Promise<void> {
  const started = performance.now();
  const environment = {
    node: process.version,
    platform: `${platform()} ${arch()}`,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    /** share of all CPUs busy during the second before the run: other work on the machine skews every number */
    busyBefore: await machineBusy(1000),
    /** 1-minute load average when the run started */
    loadBefore: round(loadavg()[0] ?? 0, 2),
  };
  progress(`${QUICK ? "quick" : "full"} run on node ${environment.node}, ${environment.cpus} CPUs, load ${environment.loadBefore}`);
  await peerHost();

  progress("hot path: non-token fetches with and without the interceptor");
  const hot = await measureHotPath();
  progress(`hot path ratio ${hot.ratio} (GET ${hot.get.ratio}, POST ${hot.post.ratio}, A/A control ${hot.controlRatio})`);

  progress(`headline: ${PLAN.processes} processes × ${PLAN.callers} callers × ${PLAN.rotations} rotations (guard, bare, peer, floor)`);
  const headline = await runPoint({
    processes: PLAN.processes,
    callers: PLAN.callers,
    rotations: PLAN.rotations,
    arms: PLAN.headlineArms,
    profile: PLAN.gap === null,
  });
  const gap =
    PLAN.gap === null ? headline : await runPoint({ ...PLAN.gap, arms: ["guard", "guardBefore", "bare", "peer", "floor"], profile: true });
  const scale: { processes: number; arms: Record<string, RotationResult> }[] = [];
  for (const processes of PLAN.scale) {
    const reuse = processes === PLAN.processes && PLAN.callers === SCALE_CALLERS ? headline : null;
    const arms =
      reuse ?? (await runPoint({ processes, callers: SCALE_CALLERS, rotations: PLAN.scaleRotations, arms: ["guard", "peer", "floor"] }));
    scale.push({ processes, arms });
  }
  progress(`crash recovery, ${PLAN.crashRuns} runs each: the guard, then the peer`);
  const crash = await crashRecovery("guard");
  const peerCrash = await crashRecovery("peer");

  const guarded = headline.guard!;
  const baseline = headline.bare!;
  const peer = headline.peer!;
  const floor = headline.floor!;
  const viaRedis = headline.redis;
  const durationMs = Math.round(performance.now() - started);
  const metrics: Record<TargetName, number> = {
    redemptionsPerRotation: guarded.redemptionsPerRotation,
    failures: guarded.failures,
    waiterP99OverServerMs: guarded.overServerMs.p99,
    hotPathOverheadRatio: hot.ratio,
    crashRecoveryMs: crash.medianMs,
    waiterP99VsPeer: ratio(guarded.overServerMs.p99, peer.overServerMs.p99),
    waiterP99VsFloor: ratio(guarded.overServerMs.p99, floor.overServerMs.p99),
    crashRecoveryVsPeer: ratio(crash.medianMs, peerCrash.medianMs),
  };
  const targetsMet = Object.fromEntries((Object.keys(TARGETS) as TargetName[]).map((name) => [name, meets(name, metrics[name])])) as Record<
    TargetName,
    boolean
  > & { crashRecoveryMaxMs?: boolean };
  targetsMet.crashRecoveryMaxMs = meets("crashRecoveryMs", crash.maxMs);

  const mark = (ok: boolean) => (ok ? "✓ pass" : "✗ MISS");
  const target = (name: TargetName) => `${TARGETS[name].op} ${TARGETS[name].value}`;
  const row = (name: TargetName, label: string = name, value: number = metrics[name]) => [
    label,
    String(value),
    target(name),
    mark(meets(name, value)),
  ];
  const rows: string[][] = [
    ["metric", "value", "target", ""],
    row("redemptionsPerRotation"),
    row("failures"),
    row("waiterP99OverServerMs"),
    ["  peer (host's lock): peerWaiterP99OverServerMs", String(peer.overServerMs.p99), "", ""],
    ["  floor (one watched file): floorP99OverServerMs", String(floor.overServerMs.p99), "", ""],
    ["  without the guard", String(baseline.overServerMs.p99), "(contrast)", ""],
    ...(viaRedis
      ? [
          ["  Redis backend: redisWaiterP99OverServerMs", String(viaRedis.overServerMs.p99), "", ""],
          ["  redisRedemptionsPerRotation · redisFailures", `${viaRedis.redemptionsPerRotation} · ${viaRedis.failures}`, "", ""],
        ]
      : []),
    row("waiterP99VsPeer"),
    row("waiterP99VsFloor"),
    ["peerRedemptionsPerRotation", String(peer.redemptionsPerRotation), "", ""],
    ["peerFailures", String(peer.failures), "", ""],
    row("hotPathOverheadRatio"),
    row("crashRecoveryMs", "crashRecoveryMs (median)"),
    row("crashRecoveryMs", "crashRecoveryMs (max)", crash.maxMs),
    ["  peer (host's lock), median", String(peerCrash.medianMs), "", ""],
    row("crashRecoveryVsPeer"),
  ];

  const scaleRows: string[][] = [
    ["processes × 8", "arm", "redemptions/rot", "failures", "p50 over server", "p99 over server", "CPU ms/rot", "wall ms/rot (p50)"],
  ];
  for (const point of scale) {
    for (const name of ["guard", "peer", "floor"] as const) {
      const arm = point.arms[name];
      if (!arm) continue;
      scaleRows.push([
        name === "guard" ? String(point.processes) : "",
        name,
        String(arm.redemptionsPerRotation),
        String(arm.failures),
        String(arm.overServerMs.p50),
        String(arm.overServerMs.p99),
        String(arm.cpuMsPerRotation),
        String(arm.rotationWallMs.p50),
      ]);
    }
  }

  const gapRows: string[][] = [["arm", "p50 over server", "p99 over server", "median rotation p99", "CPU ms/rot", "failures"]];
  for (const name of ["guardBefore", "guard", "bare", "peer", "floor"] as const) {
    const arm = gap[name];
    if (!arm) continue;
    gapRows.push([
      name === "guardBefore" ? "guard, optimisation off (before)" : name === "guard" ? "guard (after)" : name,
      String(arm.overServerMs.p50),
      String(arm.overServerMs.p99),
      String(arm.medianRotationP99OverServerMs),
      String(arm.cpuMsPerRotation),
      String(arm.failures),
    ]);
  }
  const timelineLine = (name: "guard" | "guardBefore") =>
    Object.entries(gap[name]?.timeline ?? {})
      .map(([step, ms]) => `${step.replace(/Ms$/, "")} ${ms}`)
      .join(" · ") || "(not profiled)";
  const stageLines = (name: "guard" | "guardBefore") =>
    Object.entries(gap[name]?.stages ?? {})
      .map(([stage, time]) => `${stage} ${time.msPerProcess} ms/${time.callsPerProcess}×`)
      .join(" · ");

  const lines = [
    `refresh-guard benchmark (${QUICK ? "quick" : "full"}): ${PLAN.processes} processes × ${PLAN.callers} callers, ` +
      `${PLAN.rotations} rotations, stand-in latency ${LATENCY_MS} ms`,
    `node ${environment.node} · ${environment.platform} · ${environment.cpus} CPUs (${environment.cpuModel}) · total ${(durationMs / 1000).toFixed(1)} s · ` +
      `load ${environment.loadBefore} · CPUs ${Math.round(environment.busyBefore * 100)}% busy before the run` +
      (environment.busyBefore > 0.15 ? " (something else is running: every number is skewed)" : ""),
    "",
    table(rows),
    "",
    `scale: processes × ${SCALE_CALLERS} callers, ${PLAN.scaleRotations} rotations each (the ${PLAN.processes}-process row: ${PLAN.rotations}); ms over the stand-in's ${LATENCY_MS} ms; CPU = all agent processes`,
    table(scaleRows),
    "",
    `the waiter path at ${gap.guard!.processes} × ${gap.guard!.callersPerProcess} (${gap.guard!.rotations} rotations; before: the same guard with the waiter-path optimisation switched off, same run)`,
    table(gapRows),
    `  steps of the guard per process per rotation, before: ${stageLines("guardBefore") || "(not profiled)"}`,
    `  steps of the guard per process per rotation, after:  ${stageLines("guard")}`,
    `  critical path (median ms), before: ${timelineLine("guardBefore")}`,
    `  critical path (median ms), after:  ${timelineLine("guard")}`,
    "",
    "with the guard",
    `  caller latency − ${LATENCY_MS} ms (ms): ${fmt(guarded.overServerMs)} (n=${guarded.overServerMs.n})`,
    `  p99 per rotation (ms): ${guarded.perRotationP99OverServerMs.join(", ")} (median ${guarded.medianRotationP99OverServerMs})`,
    `  rotation wall time (ms): ${fmt(guarded.rotationWallMs)}`,
    `  redemptions ${guarded.redemptions} · reuse answers ${guarded.reuses} · failures ${guarded.failures} · ` +
      `outcomes ${Object.entries(guarded.outcomes ?? {})
        .map(([type, count]) => `${type}=${count}`)
        .join(" ")}`,
    `  ${PLAN.processes} agents started in ${guarded.startupMs} ms; untimed warm-up rotation (cold processes): ` +
      `p99 ${guarded.warmup.p99OverServerMs} ms over server, failures ${guarded.warmup.failures}`,
    `peer: OpenClaw ${PEER_HOST_VERSION}'s own lock (openclaw/plugin-sdk/file-lock, 20 retries 100 ms–10 s, stale 180 s) and a shared store re-read under it`,
    `  caller latency − ${LATENCY_MS} ms (ms): ${fmt(peer.overServerMs)} · p99 per rotation ${peer.perRotationP99OverServerMs.join(", ")} · ` +
      `redemptions ${peer.redemptions} · failures ${peer.failures}`,
    `floor: one POST, one file written, every other caller woken by a watch of it`,
    `  caller latency − ${LATENCY_MS} ms (ms): ${fmt(floor.overServerMs)} · p99 per rotation ${floor.perRotationP99OverServerMs.join(", ")}`,
    ...(viaRedis
      ? [
          "with the guard, Redis backend (each process its own guard dir, one local redis-server)",
          `  caller latency − ${LATENCY_MS} ms (ms): ${fmt(viaRedis.overServerMs)} · p99 per rotation ${viaRedis.perRotationP99OverServerMs.join(", ")} · ` +
            `redemptions ${viaRedis.redemptions} (${viaRedis.redemptionsPerRotation}/rotation) · reuse answers ${viaRedis.reuses} · failures ${viaRedis.failures}`,
        ]
      : []),
    "without the guard (baseline: each process presents its own copy)",
    `  redemptions ${baseline.redemptions} (${baseline.redemptionsPerRotation}/rotation) · reuse answers ${baseline.reuses} · ` +
      `failures ${baseline.failures} of ${baseline.processes * baseline.callersPerProcess * baseline.rotations} callers`,
    `  caller latency − ${LATENCY_MS} ms (ms): ${fmt(baseline.overServerMs)} (every caller is a real request here)`,
    `  p99 per rotation (ms): ${baseline.perRotationP99OverServerMs.join(", ")} (median ${baseline.medianRotationP99OverServerMs}) · ` +
      `warm-up rotation p99 ${baseline.warmup.p99OverServerMs}`,
    `hot path (non-token fetch to a loopback server in another process; ${hot.rounds} rounds × ${hot.requestsPerArmPerRound} requests per arm, interleaved request by request)`,
    `  GET  ${hot.get.withoutUs} µs → ${hot.get.withUs} µs with the interceptor (×${hot.get.ratio} paired per round, ×${hot.get.ratioOfMedians} ratio of medians)`,
    `  POST ${hot.post.withoutUs} µs → ${hot.post.withUs} µs with the interceptor (×${hot.post.ratio} paired per round, ×${hot.post.ratioOfMedians} ratio of medians)`,
    `  A/A noise floor ×${hot.controlRatio} · the wrapper alone adds ${hot.wrapperNsPerCall.get} ns (GET), ${hot.wrapperNsPerCall.post} ns (POST) per call`,
    `crash recovery (holder SIGKILLed ~100 ms after taking the lock, before its POST)`,
    `  guard (staleMs ${crash.staleMs}): ms from kill to a sibling's valid token: ${crash.samplesMs.join(", ")} · redemptions ${crash.redemptions}/${PLAN.crashRuns} · ` +
      `reuse answers ${crash.reuses} · failures ${crash.failures}`,
    `  peer (stale ${peerCrash.staleMs} ms, or at once once the holder's pid is gone): ${peerCrash.samplesMs.join(", ")} · redemptions ${peerCrash.redemptions}/${PLAN.crashRuns} · ` +
      `reuse answers ${peerCrash.reuses} · failures ${peerCrash.failures}`,
  ];
  console.log(lines.join("\n"));

  if (args.json) {
    const summary = (arm: RotationResult | undefined) =>
      arm && {
        redemptionsPerRotation: arm.redemptionsPerRotation,
        failures: arm.failures,
        p50OverServerMs: arm.overServerMs.p50,
        p99OverServerMs: arm.overServerMs.p99,
        cpuMsPerRotation: arm.cpuMsPerRotation,
        rotations: arm.rotations,
      };
    const report = {
      quick: QUICK,
      environment,
      durationMs,
      plan: { ...PLAN, latencyMs: LATENCY_MS, settleMs: SETTLE_MS, scaleCallers: SCALE_CALLERS },
      ...metrics,
      crashRecoveryMaxMs: crash.maxMs,
      baselineWaiterP99OverServerMs: baseline.overServerMs.p99,
      peerWaiterP99OverServerMs: peer.overServerMs.p99,
      peerRedemptionsPerRotation: peer.redemptionsPerRotation,
      peerFailures: peer.failures,
      floorP99OverServerMs: floor.overServerMs.p99,
      peerCrashRecoveryMs: peerCrash.medianMs,
      ...(viaRedis
        ? {
            redisWaiterP99OverServerMs: viaRedis.overServerMs.p99,
            redisRedemptionsPerRotation: viaRedis.redemptionsPerRotation,
            redisFailures: viaRedis.failures,
          }
        : {}),
      targets: TARGETS,
      targetsMet,
      rotations: guarded,
      baseline,
      peer,
      floor,
      redisRotations: viaRedis,
      scale: scale.map((point) => ({
        processes: point.processes,
        callers: SCALE_CALLERS,
        guard: summary(point.arms.guard),
        peer: summary(point.arms.peer),
        floor: summary(point.arms.floor),
      })),
      waiterPath: {
        processes: gap.guard!.processes,
        callers: gap.guard!.callersPerProcess,
        before: gap.guardBefore,
        after: gap.guard,
        bare: gap.bare,
        peer: gap.peer,
        floor: gap.floor,
      },
      hotPath: hot,
      crashRecovery: crash,
      peerCrashRecovery: peerCrash,
    };
    console.log(JSON.stringify(report));
  }
}

function ratio(value: number, reference: number): number {
  return reference > 0 ? round(value / reference, 3) : Number.NaN;
}

await main();
// Child processes and servers are stopped; nothing should keep the loop alive, but do not wait on
// it. Exit once stdout has taken everything (on some platforms a pipe is written asynchronously).
process.stdout.write("", () => process.exit(0));
