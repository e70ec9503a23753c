// The report: the table on stdout, and with --json one JSON object as its last line.
import { arch, cpus, loadavg, platform } from "node:os";

import type { CrashResult, LiveHolderResult } from "./crash.ts";
import type { HotPathResult } from "./hot-path.ts";
import { PEER_HOST_VERSION } from "./peer.ts";
import { args, LATENCY_MS, PLAN, QUICK, SCALE_CALLERS, SETTLE_MS, sleep, TARGETS, type TargetName } from "./plan.ts";
import type { RotationResult } from "./rotations.ts";
import { pairedRatio, ratio, round } from "./stats.ts";

/** What the phases measured, for the report. */
export interface BenchRun {
  environment: Awaited<ReturnType<typeof environmentNow>>;
  durationMs: number;
  hot: HotPathResult;
  headline: Record<string, RotationResult>;
  gap: Record<string, RotationResult>;
  c1: Record<string, RotationResult>;
  scale: { processes: number; arms: Record<string, RotationResult> }[];
  crash: CrashResult;
  peerCrash: CrashResult;
  crossNs: { guard: CrashResult; peer: CrashResult | null; live: LiveHolderResult; peerLive: LiveHolderResult } | null;
}

export async function environmentNow() {
  return {
    node: process.version,
    platform: `${platform()} ${arch()}`,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    /** share of all CPUs busy during the second before the run: other work on the machine skews every number */
    busyBefore: await machineBusy(1000),
    /** 1-minute load average when the run started */
    loadBefore: round(loadavg()[0] ?? 0, 2),
  };
}

function crashLine(label: string, result: CrashResult): string {
  return (
    `  ${label} (stale ${result.staleMs} ms): ${result.samplesMs.join(", ")} · redemptions ${result.redemptions}/${result.runs} · ` +
    `reuse answers ${result.reuses} · failures ${result.failures}`
  );
}

function meets(name: TargetName, value: number): boolean {
  const target = TARGETS[name];
  if (Number.isNaN(value)) return false;
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

export function render(run: BenchRun): void {
  const { environment, durationMs, hot, headline, gap, c1, scale, crash, peerCrash, crossNs } = run;
  const guarded = headline.guard!;
  const baseline = headline.bare!;
  const peer = headline.peer!;
  const floor = headline.floor!;
  const viaRedis = headline.redis;
  const durable = headline.durable;
  const gapDurable = gap.durable;
  const sameHostRatio = ratio(crash.medianMs, peerCrash.medianMs);
  const durableHeadline = durable ? pairedRatio(guarded.perRotationP99OverServerMs, durable.perRotationP99OverServerMs) : null;
  const durableGap = gapDurable ? pairedRatio(gap.guard!.perRotationP99OverServerMs, gapDurable.perRotationP99OverServerMs) : null;
  const c1Ratio = ratio(c1.guard!.overServerMs.p99, c1.peer!.overServerMs.p99);
  const crossNsRatio = crossNs?.peer ? ratio(crossNs.guard.medianMs, crossNs.peer.medianMs) : Number.NaN;
  const metrics: Record<TargetName, number> = {
    redemptionsPerRotation: guarded.redemptionsPerRotation,
    failures: guarded.failures,
    waiterP99OverServerMs: guarded.overServerMs.p99,
    hotPathOverheadRatio: hot.ratio,
    crashRecoveryMs: crash.medianMs,
    waiterP99VsPeer: ratio(guarded.overServerMs.p99, peer.overServerMs.p99),
    waiterP99VsFloor: ratio(guarded.overServerMs.p99, floor.overServerMs.p99),
    waiterP99VsPeerC1: c1Ratio,
    waiterP99VsDurableFloor: durableHeadline?.median ?? Number.NaN,
    waiterP99VsDurableFloor8x4: durableGap?.median ?? Number.NaN,
    waiterCpuVsDurableFloor: durable ? ratio(guarded.cpuMsPerRotation, durable.cpuMsPerRotation) : Number.NaN,
    crashRecoverySameHostVsPeer: sameHostRatio,
    crashRecoverySameHostMaxMs: crash.maxMs,
    crashRecoveryCrossNsVsPeer: crossNsRatio,
    crossNsLiveHolderTakeovers: crossNs ? crossNs.live.takeovers : Number.NaN,
  };
  const targetsMet = Object.fromEntries((Object.keys(TARGETS) as TargetName[]).map((name) => [name, meets(name, metrics[name])])) as Record<
    TargetName,
    boolean
  > & { crashRecoveryMaxMs?: boolean };
  const crashRecoveryVsPeer = sameHostRatio;
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
    row("waiterP99VsPeerC1", `waiterP99VsPeerC1 (${c1.guard!.processes} × 1)`),
    row("waiterP99VsFloor"),
    ["  durable floor: durableFloorP99OverServerMs", String(durable?.overServerMs.p99 ?? "—"), "", ""],
    row(
      "waiterP99VsDurableFloor",
      `waiterP99VsDurableFloor (${PLAN.processes} × ${PLAN.callers}, p10–p90 ${durableHeadline?.p10}–${durableHeadline?.p90})`,
    ),
    row(
      "waiterP99VsDurableFloor8x4",
      `  at ${gap.guard!.processes} × ${gap.guard!.callersPerProcess} (p10–p90 ${durableGap?.p10}–${durableGap?.p90})`,
    ),
    row("waiterCpuVsDurableFloor"),
    ["coldWaiterP99OverServerMs (first measured rotation)", String(guarded.perRotationP99OverServerMs[0] ?? "—"), "", ""],
    ["peerRedemptionsPerRotation", String(peer.redemptionsPerRotation), "", ""],
    ["peerFailures", String(peer.failures), "", ""],
    row("hotPathOverheadRatio"),
    row("crashRecoveryMs", "crashRecoveryMs (median)"),
    row("crashRecoveryMs", "crashRecoveryMs (max)", crash.maxMs),
    ["  peer (host's lock), median", String(peerCrash.medianMs), "", ""],
    row("crashRecoverySameHostVsPeer"),
    row("crashRecoverySameHostMaxMs"),
    ["crashRecoveryCrossNsMs (median)", String(crossNs?.guard.medianMs ?? "—"), "", ""],
    ["  peer: peerCrashRecoveryCrossNsMs", String(crossNs?.peer?.medianMs ?? "— (not run)"), "", ""],
    row("crashRecoveryCrossNsVsPeer"),
    row("crossNsLiveHolderTakeovers"),
    ["  peer: peerCrossNsLiveHolderTakeovers", String(crossNs?.peerLive.takeovers ?? "—"), "(contrast)", ""],
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
  for (const name of ["guard", "bare", "peer", "floor", "durable"] as const) {
    const arm = gap[name];
    if (!arm) continue;
    gapRows.push([
      name === "durable" ? "durable floor" : name,
      String(arm.overServerMs.p50),
      String(arm.overServerMs.p99),
      String(arm.medianRotationP99OverServerMs),
      String(arm.cpuMsPerRotation),
      String(arm.failures),
    ]);
  }
  const timelineLine = (name: "guard") =>
    Object.entries(gap[name]?.timeline ?? {})
      .map(([step, ms]) => `${step.replace(/Ms$/, "")} ${ms}`)
      .join(" · ") || "(not profiled)";
  const stageLines = (name: "guard") =>
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
    `the waiter path at ${gap.guard!.processes} × ${gap.guard!.callersPerProcess} (${gap.guard!.rotations} rotations)`,
    table(gapRows),
    `  steps of the guard per process per rotation: ${stageLines("guard") || "(not profiled)"}`,
    `  critical path (median ms): ${timelineLine("guard")}`,
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
    `crash recovery (holder SIGKILLed before its POST, ${PLAN.crashKillAfterMs.join(" / ")} ms into a sibling's wait; ms from the kill to the sibling's valid tokens)`,
    crashLine("guard, one machine (proven death, else staleMs)", crash),
    crashLine("peer, one machine", peerCrash),
    ...(crossNs
      ? [
          crashLine("guard, holder in another pid namespace (heartbeat only)", crossNs.guard),
          crossNs.peer
            ? crashLine("peer, holder in another pid namespace", crossNs.peer)
            : "  peer, holder in another pid namespace: not run in this plan",
          `  live holder in another pid namespace held 3 s: guard ${crossNs.live.takeovers}/${crossNs.live.runs} taken over (redemptions ${crossNs.live.redemptions}, reuses ${crossNs.live.reuses}, failures ${crossNs.live.failures}); ` +
            `peer ${crossNs.peerLive.takeovers}/${crossNs.peerLive.runs} (redemptions ${crossNs.peerLive.redemptions}, reuses ${crossNs.peerLive.reuses}, failures ${crossNs.peerLive.failures})`,
        ]
      : ["  across pid namespaces: not run (unshare --pid needs root)"]),
  ];
  console.log(lines.join("\n"));

  if (args.json) {
    const summary = (arm: RotationResult | undefined) =>
      arm && {
        redemptionsPerRotation: arm.redemptionsPerRotation,
        failures: arm.failures,
        ...(arm.failures > 0 ? { failureSamples: arm.failureSamples } : {}),
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
      crashRecoveryVsPeer,
      crashRecoverySameHostMs: crash.medianMs,
      peerCrashRecoverySameHostMs: peerCrash.medianMs,
      crashRecoveryCrossNsMs: crossNs?.guard.medianMs ?? null,
      peerCrashRecoveryCrossNsMs: crossNs?.peer?.medianMs ?? null,
      waiterP99VsDurableFloorRange: durableHeadline,
      waiterP99VsDurableFloor8x4Range: durableGap,
      durableFloorP99OverServerMs: durable?.overServerMs.p99,
      peerC1WaiterP99OverServerMs: c1.peer!.overServerMs.p99,
      c1WaiterP99OverServerMs: c1.guard!.overServerMs.p99,
      coldWaiterP99OverServerMs: guarded.perRotationP99OverServerMs[0],
      hotPathWrapperNsPost: hot.wrapperNsPerCall.post,
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
        after: gap.guard,
        durable: gap.durable,
        bare: gap.bare,
        peer: gap.peer,
        floor: gap.floor,
      },
      hotPath: hot,
      crashRecovery: crash,
      peerCrashRecovery: peerCrash,
      durableFloor: durable,
      c1,
      crossNamespace: crossNs,
    };
    console.log(JSON.stringify(report));
  }
}
