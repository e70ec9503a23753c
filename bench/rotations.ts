// Phases 2–4: rotations, every process refreshing one shared credential at the same moment, for
// each design ("arm") in the same processes, interleaved.
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

import { Agent, type AgentConfig, type CallResult, type Mark, type Mode, startAgents } from "../test/support/agent-pool.ts";
import { type RedisServer, startRedis } from "../test/support/redis-server.ts";
import { type StandInEndpoint, startStandIn } from "../test/support/token-endpoint-server.ts";
import { PEER_PROFILE_ID, peerConfig, writeStore } from "./peer.ts";
import { LATENCY_MS, progress, SETTLE_MS, sleep } from "./plan.ts";
import { distribution, median, quantile, round } from "./stats.ts";

// ---------------------------------------------------------------------------------------------
// 2 and 3. Rotations: every process refreshes one shared credential at the same moment.
//
// One pool of processes per scale point serves every design ("arm"): the guard, no coordination
// (`bare`), the host's own lock (`peer`), the floor and the durable floor (the least a correct
// design must do: an elected redeemer, fsync, link, directory fsync, a Response per caller; see
// test/support/simulated-agent.ts), one rotation of each in turn (the order
// rotates), so that load from elsewhere on the machine lands on all arms alike and their ratios
// hold. Each arm first runs one warm-up rotation on a login of its own: what is measured is then
// a running host (undici loaded, the guard or the host's lock module opened), not processes loading
// and compiling the fetch stack at the same instant. The warm-up is reported on its own.
//
export type ArmName = "guard" | "bare" | "peer" | "floor" | "durable" | "redis";
interface Arm {
  name: ArmName;
  mode: Mode;
  /** Runs in the Redis pool (own guard dir per process, one shared redis-server). */
  redis?: boolean;
}
const ARMS: Record<ArmName, Arm> = {
  guard: { name: "guard", mode: "guard" },
  bare: { name: "bare", mode: "bare" },
  peer: { name: "peer", mode: "peer" },
  floor: { name: "floor", mode: "floor" },
  durable: { name: "durable", mode: "durable" },
  redis: { name: "redis", mode: "guard", redis: true },
};

export interface PointPlan {
  processes: number;
  callers: number;
  rotations: number;
  arms: ArmName[];
  profile?: boolean;
}

export interface RotationResult {
  processes: number;
  callersPerProcess: number;
  rotations: number;
  startupMs: number;
  redemptions: number;
  redemptionsPerRotation: number;
  reuses: number;
  invalid: number;
  failures: number;
  /** what the first failed callers got (status and error text, no tokens), so a failure can be read */
  failureSamples: string[];
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
  /** the same, per rotation */
  perRotationCpuMs: number[];
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
  failureSamples: string[];
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

export async function runPoint(plan: PointPlan): Promise<Record<string, RotationResult>> {
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
  let viaRedis: Agent[] = [];
  let redisServer: RedisServer | null = null;
  try {
    if (arms.some((arm) => arm.redis)) redisServer = await startRedis();
    const redisUrl = redisServer?.url;
    [main, viaRedis] = await Promise.all([
      startAgents(plan.processes, config),
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
    progress(`${label}: ${main.length + viaRedis.length} agents up in ${Math.round(startupMs)} ms`);
    await sleep(1000);
    const poolOf = (arm: Arm) => (arm.redis ? viaRedis : main);
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
      const eventsBefore = agents.map((agent) => agent.reasons.length);
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
      for (const event of agents.flatMap((agent, i) => agent.reasons.slice(eventsBefore[i]))) events[event] = (events[event] ?? 0) + 1;
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
        failureSamples: flat
          .filter((result) => !isValid(server, result))
          .slice(0, 3)
          .map((result) =>
            `${result.status} ${result.error ?? (result.status === 200 ? "token not valid at the server" : "")}`.slice(0, 200),
          ),
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
      failureSamples: [],
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
        if (state.failureSamples.length < 5) state.failureSamples.push(...done.failureSamples.slice(0, 5 - state.failureSamples.length));
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
        failureSamples: state.failureSamples,
        overServerMs: distribution(state.overServer),
        perRotationP99OverServerMs: state.perRotationP99,
        medianRotationP99OverServerMs: median(state.perRotationP99),
        callerMs: distribution(state.overServer.map((ms) => ms + LATENCY_MS)),
        rotationWallMs: distribution(state.wall),
        cpuMsPerRotation: round(median(state.cpuMs)),
        perRotationCpuMs: state.cpuMs.map((ms) => round(ms)),
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
    await Promise.all([...main, ...viaRedis].map((agent) => agent.stop()));
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

/** A caller holds a valid token: 200, an access token the server honours, a live refresh token. */
export function isValid(server: StandInEndpoint, result: CallResult): boolean {
  return (
    result.status === 200 &&
    result.access !== undefined &&
    result.refresh !== undefined &&
    server.accessValid(result.access) &&
    server.refreshLive(result.refresh)
  );
}
