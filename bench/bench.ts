// The benchmark: what refresh-guard costs and what it buys, measured in one run over real loopback
// HTTP and real child processes (test/support/agent-pool.ts) against the stand-in token endpoint,
// side by side with OpenClaw's own coordination and with the least any design could cost.
//
//   npm run bench                 32 processes × 8 callers, 20 rotations, scale 1–64, crashes
//   npm run bench -- --quick      8 processes × 4 callers, 3 rotations, scale 1–16
//   npm run bench -- --json       the same table, then one JSON object as the last line of stdout
//
// It measures and reports; it does not judge: the exit code is 0 even when a target is missed.
// Progress goes to stderr so that stdout holds only the report. This file runs the phases in
// order; each phase has its module:
//   1. hot-path.ts   non-token fetches through the interceptor's wrapper vs the original fetch;
//   2. rotations.ts  P processes × C callers refresh one credential at once, R times, for each
//                    design in turn (guard, bare, peer, floor, durable floor, Redis) at the headline
//                    point, at 8 × 4 (the waiter path, profiled), at 8 × 1, and at scale 1 … 64;
//   3. crash.ts      a lock holder SIGKILLed 0.1, 1 and 3 s into a sibling's wait, on one machine
//                    and across pid namespaces, and a live holder in another namespace;
//   4. report.ts     the table and the JSON.
// Every absolute number is skewed by other work on the machine (the report gives the load and how
// busy the CPUs were in the second before the run); the ratios compare designs measured in the
// same processes, rotation after rotation, and hold much better.
import { canUnshare, crashRecovery, crossNsLiveHolder } from "./crash.ts";
import { measureHotPath } from "./hot-path.ts";
import { peerHost } from "./peer.ts";
import { PLAN, progress, QUICK, SCALE_CALLERS } from "./plan.ts";
import { type BenchRun, environmentNow, render } from "./report.ts";
import { type RotationResult, runPoint } from "./rotations.ts";

async function main(): Promise<void> {
  const started = performance.now();
  const environment = await environmentNow();
  progress(`${QUICK ? "quick" : "full"} run on node ${environment.node}, ${environment.cpus} CPUs, load ${environment.loadBefore}`);
  await peerHost();

  progress("hot path: non-token fetches with and without the interceptor");
  const hot = await measureHotPath();
  progress(`hot path ratio ${hot.ratio} (GET ${hot.get.ratio}, POST ${hot.post.ratio}, A/A control ${hot.controlRatio})`);

  progress(
    `headline: ${PLAN.processes} processes × ${PLAN.callers} callers × ${PLAN.rotations} rotations (${PLAN.headlineArms.join(", ")})`,
  );
  const headline = await runPoint({
    processes: PLAN.processes,
    callers: PLAN.callers,
    rotations: PLAN.rotations,
    arms: PLAN.headlineArms,
    profile: PLAN.gap === null,
  });
  const gap =
    PLAN.gap === null ? headline : await runPoint({ ...PLAN.gap, arms: ["guard", "bare", "peer", "floor", "durable"], profile: true });
  progress(`${PLAN.c1.processes} processes × ${PLAN.c1.callers} caller: the guard and the peer`);
  const c1 = await runPoint({ ...PLAN.c1, arms: ["guard", "peer", "durable"] });
  const scale: { processes: number; arms: Record<string, RotationResult> }[] = [];
  for (const processes of PLAN.scale) {
    const reuse = processes === PLAN.processes && PLAN.callers === SCALE_CALLERS ? headline : null;
    const arms =
      reuse ?? (await runPoint({ processes, callers: SCALE_CALLERS, rotations: PLAN.scaleRotations, arms: ["guard", "peer", "floor"] }));
    scale.push({ processes, arms });
  }

  const kills = PLAN.crashKillAfterMs.flatMap((ms) => Array.from({ length: PLAN.crashRuns }, () => ms));
  progress(
    `crash recovery on one machine, killed ${PLAN.crashKillAfterMs.join(", ")} ms into the wait, ${PLAN.crashRuns} run(s) each: the guard, then the peer`,
  );
  const crash = await crashRecovery("guard", kills);
  const peerCrash = await crashRecovery("peer", kills);
  const namespaces = canUnshare();
  let crossNs: BenchRun["crossNs"] = null;
  if (namespaces) {
    progress("crash recovery across pid namespaces: the guard, then the peer (the host's stale time is 180 s)");
    const guard = await crashRecovery("guard", PLAN.crashKillAfterMs, { crossNs: true });
    const peer =
      PLAN.peerCrossNsRuns > 0
        ? await crashRecovery("peer", PLAN.crashKillAfterMs.slice(0, PLAN.peerCrossNsRuns), { crossNs: true })
        : null;
    progress("a live holder in another pid namespace, held past the guard's staleMs");
    const live = await crossNsLiveHolder("guard", PLAN.liveHolderRuns, 3000);
    const peerLive = await crossNsLiveHolder("peer", PLAN.liveHolderRuns, 3000);
    crossNs = { guard, peer, live, peerLive };
  } else {
    progress("crash recovery across pid namespaces: skipped (unshare --pid needs root here)");
  }

  render({ environment, durationMs: Math.round(performance.now() - started), hot, headline, gap, c1, scale, crash, peerCrash, crossNs });
}

await main();
// Child processes and servers are stopped; nothing should keep the loop alive, but do not wait on
// it. Exit once stdout has taken everything (on some platforms a pipe is written asynchronously).
process.stdout.write("", () => process.exit(0));
