// The README's benchmark commands, run as written (`npm run bench`, `-- --quick`, `-- --json`) with
// a plan shrunk through REFRESH_GUARD_BENCH_PLAN (2 processes, 1 rotation, 1 crash run each), so the
// test checks that every phase runs and reports, cheaply. It judges no timing: speed is measured
// only by the benchmark itself.
import { spawn } from "node:child_process";

import { describe, expect, it } from "vitest";

import { ensureHost, REPO_ROOT } from "./support/install-host.ts";

const SMALL = {
  processes: 2,
  callers: 2,
  rotations: 1,
  crashRuns: 1,
  crashKillAfterMs: [100],
  peerCrossNsRuns: 0,
  liveHolderRuns: 1,
  c1: { processes: 2, callers: 1, rotations: 1 },
  hotWarmup: 20,
  hotRounds: 1,
  hotRequests: 5,
  scale: [1, 2],
  scaleRotations: 1,
};

function bench(args: string[], plan: Record<string, unknown>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["run", "bench", ...(args.length > 0 ? ["--", ...args] : [])], {
      cwd: REPO_ROOT,
      env: { ...process.env, REFRESH_GUARD_BENCH_PLAN: JSON.stringify(plan) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

const NEW_FIELDS = [
  "peerWaiterP99OverServerMs",
  "peerRedemptionsPerRotation",
  "peerFailures",
  "waiterP99VsPeer",
  "floorP99OverServerMs",
  "waiterP99VsFloor",
  "crashRecoveryVsPeer",
  "waiterP99VsDurableFloor",
  "waiterP99VsDurableFloor8x4",
  "waiterP99VsDurableFloorRange",
  "waiterCpuVsDurableFloor",
  "waiterP99VsPeerC1",
  "crashRecoverySameHostMs",
  "peerCrashRecoverySameHostMs",
  "crashRecoverySameHostVsPeer",
  "crashRecoverySameHostMaxMs",
  "crashRecoveryCrossNsMs",
  "peerCrashRecoveryCrossNsMs",
  "crashRecoveryCrossNsVsPeer",
  "crossNsLiveHolderTakeovers",
  "coldWaiterP99OverServerMs",
  "hotPathWrapperNsPost",
] as const;
const KEPT_FIELDS = [
  "redemptionsPerRotation",
  "failures",
  "waiterP99OverServerMs",
  "hotPathOverheadRatio",
  "crashRecoveryMs",
  "crashRecoveryMaxMs",
  "baselineWaiterP99OverServerMs",
  "rotations",
  "baseline",
  "hotPath",
  "crashRecovery",
] as const;

describe("npm run bench (shrunk plan)", () => {
  it("npm run bench -- --json: every design once, the table, and one JSON object as the last line", async () => {
    await ensureHost("2026.5.7");
    const run = await bench(["--json"], { ...SMALL, gap: { processes: 2, callers: 2, rotations: 1 } });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    const report = JSON.parse(lines.at(-1)!) as Record<string, unknown> & {
      scale: { processes: number; guard: unknown; peer: unknown; floor: unknown }[];
    };
    for (const field of [...KEPT_FIELDS, ...NEW_FIELDS]) expect(report, field).toHaveProperty(field);
    // One redemption per rotation and no failure, with the guard and with the host's own lock.
    expect(report.redemptionsPerRotation).toBe(1);
    expect(report.failures).toBe(0);
    expect(report.peerRedemptionsPerRotation).toBe(1);
    expect(report.peerFailures).toBe(0);
    expect(report.scale.map((point) => point.processes)).toEqual([1, 2]);
    for (const point of report.scale) {
      for (const arm of [point.guard, point.peer, point.floor]) expect(arm).toMatchObject({ redemptionsPerRotation: 1, failures: 0 });
    }
    expect(report).toMatchObject({
      waiterPath: { after: { failures: 0 }, durable: { redemptionsPerRotation: 1, failures: 0 } },
      crashRecovery: { failures: 0, reuses: 0 },
    });
    expect(run.stdout).toContain("scale: processes × 8 callers");
    expect(run.stdout).toContain("the waiter path at 2 × 2");
  }, 600_000);

  it("npm run bench -- --quick and npm run bench: the table only", async () => {
    await ensureHost("2026.5.7");
    for (const args of [["--quick"], []]) {
      // Quick profiles the waiter path at its headline point; the full plan at a point of its own.
      const run = await bench(args, {
        ...SMALL,
        scale: [1],
        ...(args.length > 0 ? {} : { gap: { processes: 2, callers: 2, rotations: 1 } }),
      });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(args.length > 0 ? "refresh-guard benchmark (quick)" : "refresh-guard benchmark (full)");
      expect(run.stdout).toContain("waiterP99VsPeer");
      expect(() => JSON.parse(run.stdout.trimEnd().split("\n").at(-1)!)).toThrow();
    }
  }, 600_000);
});
