// What one benchmark run does: the command line, the plan (quick or full, or a smaller one from
// REFRESH_GUARD_BENCH_PLAN for the smoke test), the stand-in's latency and the targets.
import { parseArgs } from "node:util";

import type { ArmName } from "./rotations.ts";

export const { values: args } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
  },
});
export const QUICK = args.quick === true;

/** Callers per process in the scale table. */
export const SCALE_CALLERS = 8;
export const PLAN = QUICK
  ? {
      processes: 8,
      callers: 4,
      rotations: 3,
      /** ms into the sibling's wait at which a holder is killed, once each per run */
      crashKillAfterMs: [100, 1000, 3000],
      crashRuns: 1,
      /** the peer across pid namespaces waits out the host's 180 s stale time: measured in the full run only */
      peerCrossNsRuns: 0,
      liveHolderRuns: 1,
      hotWarmup: 1500,
      hotRounds: 20,
      hotRequests: 100,
      headlineArms: ["guard", "bare", "peer", "floor", "durable", "redis"] as ArmName[],
      /** the waiter path against the durable floor at 8 × 4 (null: the headline point is 8 × 4) */
      gap: null as { processes: number; callers: number; rotations: number } | null,
      /** 8 processes × 1 caller: the guard and the peer without in-process sharing */
      c1: { processes: 8, callers: 1, rotations: 3 },
      scale: [1, 2, 4, 8, 16],
      scaleRotations: 2,
    }
  : {
      processes: 32,
      callers: 8,
      rotations: 20,
      crashKillAfterMs: [100, 1000, 3000],
      crashRuns: 3,
      peerCrossNsRuns: 1,
      liveHolderRuns: 2,
      hotWarmup: 1500,
      hotRounds: 30,
      hotRequests: 200,
      headlineArms: ["guard", "bare", "peer", "floor", "durable", "redis"] as ArmName[],
      gap: { processes: 8, callers: 4, rotations: 20 } as { processes: number; callers: number; rotations: number } | null,
      c1: { processes: 8, callers: 1, rotations: 20 },
      scale: [1, 2, 4, 8, 16, 32, 64],
      scaleRotations: 3,
    };
// A smaller plan for the smoke test (test/bench-smoke.test.ts): JSON merged over PLAN.
if (process.env.REFRESH_GUARD_BENCH_PLAN) Object.assign(PLAN, JSON.parse(process.env.REFRESH_GUARD_BENCH_PLAN) as Partial<typeof PLAN>);
/** The stand-in's delay before each token answer: what a caller must wait anyway. */
export const LATENCY_MS = 100;
/** Quiet time before each rotation, so every agent is idle (status writes, lock release, GC done). */
export const SETTLE_MS = 250;

export const TARGETS = {
  redemptionsPerRotation: { op: "=", value: 1 },
  failures: { op: "=", value: 0 },
  waiterP99OverServerMs: { op: "≤", value: 25 },
  hotPathOverheadRatio: { op: "≤", value: 1.02 },
  crashRecoveryMs: { op: "≤", value: 3000 },
  waiterP99VsPeer: { op: "≤", value: 0.5 },
  waiterP99VsPeerC1: { op: "≤", value: 0.5 },
  waiterP99VsFloor: { op: "≤", value: 1.5 },
  /** median of paired per-rotation ratios at the headline point (32 × 8 in the full run) */
  waiterP99VsDurableFloor: { op: "≤", value: 2.0 },
  /** the same at 8 × 4 */
  waiterP99VsDurableFloor8x4: { op: "≤", value: 1.5 },
  waiterCpuVsDurableFloor: { op: "≤", value: 2.5 },
  crashRecoverySameHostVsPeer: { op: "≤", value: 1.0 },
  /** the stand-in's latency + 150 ms */
  crashRecoverySameHostMaxMs: { op: "≤", value: 250 },
  crashRecoveryCrossNsVsPeer: { op: "≤", value: 0.05 },
  crossNsLiveHolderTakeovers: { op: "=", value: 0 },
} as const;
export type TargetName = keyof typeof TARGETS;

export const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
