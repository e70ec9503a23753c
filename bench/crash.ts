// Phase 5: crash recovery. A lock holder is SIGKILLed before its request leaves, a set time into a
// sibling's wait; measured: ms from the kill until the sibling's callers hold a valid token, with
// the guard and with the peer, on one machine and across pid namespaces (a holder in a namespace of
// its own, as in a container sharing the volume). And the other side of the same proof: a live
// holder in another namespace must never lose its lock.
//
// Each holder is a fresh process. RefreshGuard.open settles proper-lockfile's mtime-precision probe
// with a throwaway lock, so the holder's real lock is dated "now". On one machine the guard proves
// the holder dead (refresh-lock.ts) and takes over at its next poll; across namespaces nothing can
// be proven and it waits out staleMs. The peer treats a lock whose pid it cannot see as stale.
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

import { DEFAULT_TIMING } from "../src/core/refresh-guard.ts";
import { type Agent, type AgentConfig, startAgents } from "../test/support/agent-pool.ts";
import { startStandIn } from "../test/support/token-endpoint-server.ts";
import { OAUTH_REFRESH_LOCK_OPTIONS, peerConfig, writeStore } from "./peer.ts";
import { LATENCY_MS, progress, SETTLE_MS, sleep } from "./plan.ts";
import { isValid } from "./rotations.ts";
import { median, round } from "./stats.ts";

export interface CrashResult {
  medianMs: number;
  maxMs: number;
  samplesMs: number[];
  /** ms into the sibling's wait at which each holder was killed */
  killAfterMs: number[];
  runs: number;
  failures: number;
  redemptions: number;
  reuses: number;
  staleMs: number;
}

/** Whether this machine lets us start a process in a pid namespace of its own (root, unshare). */
export function canUnshare(): boolean {
  try {
    execFileSync("unshare", ["--pid", "--fork", "--mount-proc", "true"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** One crash per entry of `killAfterMs`; holders in their own pid namespace with `crossNs`. */
export async function crashRecovery(
  mode: "guard" | "peer",
  killAfterMs: readonly number[],
  options: { crossNs?: boolean } = {},
): Promise<CrashResult> {
  const server = await startStandIn({ latencyMs: LATENCY_MS });
  const stateDir = await mkdtemp(join(tmpdir(), `rg-bench-crash-${mode}-`));
  let agents: Agent[] = [];
  try {
    const config: AgentConfig = { stateDir, tokenUrl: server.url };
    if (mode === "peer") {
      config.peer = await peerConfig(stateDir);
      await mkdir(dirname(config.peer.storePath), { recursive: true });
    }
    const holders = await startAgents(
      killAfterMs.length,
      { ...config, pauseAt: "before-post" },
      { pidNamespace: options.crossNs === true },
    );
    const [sibling] = await startAgents(1, config);
    agents = [...holders, sibling!];
    await sleep(500);
    const samples: number[] = [];
    let failures = 0;
    for (const [i, holder] of holders.entries()) {
      await sleep(SETTLE_MS);
      const credential = server.issue(`acct-crash-${i}`);
      if (config.peer) await writeStore(config.peer.storePath, credential.refresh, true);
      void holder.refresh(credential.refresh, 1, { mode });
      await holder.stage();
      // The sibling's callers find the lock held and wait on it, as agents would.
      const answered = sibling!.refresh(credential.refresh, 2, { mode }).then((results) => ({ results, at: performance.now() }));
      await sleep(killAfterMs[i]!);
      const killed = performance.now();
      holder.child.kill("SIGKILL");
      const { results, at } = await answered;
      const ok = results.filter((result) => isValid(server, result)).length;
      failures += results.length - ok;
      samples.push(round(at - killed, 0));
      progress(
        `${mode} crash${options.crossNs ? " (other pid namespace)" : ""} ${samples.length}/${holders.length}, killed ${killAfterMs[i]} ms into the wait: ` +
          `the sibling's callers answered ${samples.at(-1)} ms after the kill (${ok}/${results.length} valid)`,
      );
    }
    return {
      medianMs: median(samples),
      maxMs: Math.max(...samples),
      samplesMs: samples,
      killAfterMs: [...killAfterMs],
      runs: samples.length,
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

export interface LiveHolderResult {
  runs: number;
  /** runs in which a waiter redeemed while the holder in the other namespace was alive and held the lock */
  takeovers: number;
  redemptions: number;
  reuses: number;
  failures: number;
}

/**
 * A live holder in another pid namespace holds the lock for `holdMs` (longer than the guard's
 * staleMs: its heartbeat must keep it), then sends. A takeover is any redemption beyond one per run.
 */
export async function crossNsLiveHolder(mode: "guard" | "peer", runs: number, holdMs: number): Promise<LiveHolderResult> {
  const server = await startStandIn({ latencyMs: LATENCY_MS });
  const stateDir = await mkdtemp(join(tmpdir(), `rg-bench-live-${mode}-`));
  let agents: Agent[] = [];
  try {
    const config: AgentConfig = { stateDir, tokenUrl: server.url };
    if (mode === "peer") {
      config.peer = await peerConfig(stateDir);
      await mkdir(dirname(config.peer.storePath), { recursive: true });
    }
    const holders = await startAgents(runs, { ...config, pauseAt: "before-post" }, { pidNamespace: true });
    const [sibling] = await startAgents(1, config);
    agents = [...holders, sibling!];
    await sleep(500);
    let takeovers = 0;
    let failures = 0;
    for (const [i, holder] of holders.entries()) {
      await sleep(SETTLE_MS);
      const credential = server.issue(`acct-live-${i}`);
      if (config.peer) await writeStore(config.peer.storePath, credential.refresh, true);
      const before = server.counters.redemptions;
      const held = holder.refresh(credential.refresh, 1, { mode });
      await holder.stage();
      const waited = sibling!.refresh(credential.refresh, 2, { mode });
      await sleep(holdMs);
      if (server.counters.redemptions > before) takeovers += 1;
      holder.resume();
      const results = [...(await held), ...(await waited)];
      failures += results.filter((result) => !isValid(server, result)).length;
      progress(`${mode}, live holder in another pid namespace ${i + 1}/${runs}: ${server.counters.redemptions - before} redemption(s)`);
    }
    return { runs, takeovers, redemptions: server.counters.redemptions, reuses: server.counters.reuses, failures };
  } finally {
    await Promise.all(agents.map((agent) => agent.stop()));
    await server.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}
