// The race refresh-guard exists for, on this machine, with no network and no OpenClaw install:
// a stand-in OpenAI token endpoint on loopback (single-use refresh tokens, 401
// refresh_token_reused on reuse) and several simulated agent processes, each holding its own
// copy of one expired openai-codex credential, refreshing at the same moment. Run once without
// the guard and once with it; print what the endpoint and the agents saw.
//
//   npm run demo                     (6 agents, 3 rotations)
//   npm run demo -- --agents 8 --rotations 5
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startAgents } from "../support/agent-pool.ts";
import { startStandIn } from "../support/token-endpoint-server.ts";

const { values } = parseArgs({
  options: {
    agents: { type: "string", default: "6" },
    rotations: { type: "string", default: "3" },
    latency: { type: "string", default: "100" },
  },
});
const agents = Number(values.agents);
const rotations = Number(values.rotations);

interface Row {
  mode: string;
  refreshes: number;
  ok: number;
  failed: number;
  redemptions: number;
  reuses: number;
}

async function run(guard: boolean): Promise<Row> {
  const server = await startStandIn({ latencyMs: Number(values.latency) });
  const dir = await mkdtemp(join(tmpdir(), "refresh-guard-demo-"));
  const workers = await startAgents(agents, { guard, stateDir: dir, tokenUrl: server.url });
  // Every agent starts with a copy of the same credential, as after copying auth-profiles.json.
  const first = server.issue("acct-demo");
  const copies = workers.map(() => first.refresh);
  const row: Row = { mode: guard ? "with refresh-guard" : "without guard", refreshes: 0, ok: 0, failed: 0, redemptions: 0, reuses: 0 };
  try {
    for (let rotation = 0; rotation < rotations; rotation += 1) {
      // The access token expired everywhere at once: every agent refreshes its own copy.
      const results = await Promise.all(workers.map((worker, i) => worker.refresh(copies[i]!, 1)));
      results.forEach(([result], i) => {
        row.refreshes += 1;
        if (result!.status === 200) {
          row.ok += 1;
          copies[i] = result!.refresh!;
        } else {
          // What OpenClaw reports here: "OAuth token refresh failed for openai-codex", then failover.
          row.failed += 1;
        }
      });
    }
    row.redemptions = server.counters.redemptions;
    row.reuses = server.counters.reuses;
    return row;
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const rows = [await run(false), await run(true)];
console.log(`${agents} agent processes share one openai-codex login; its access token expires ${rotations} times.\n`);
console.table(
  Object.fromEntries(
    rows.map((row) => [
      row.mode,
      {
        refreshes: row.refreshes,
        succeeded: row.ok,
        "failed over": row.failed,
        "endpoint redemptions": row.redemptions,
        "401 refresh_token_reused": row.reuses,
      },
    ]),
  ),
);
const [without, withGuard] = rows as [Row, Row];
console.log(
  withGuard.failed === 0 && withGuard.reuses === 0 && withGuard.redemptions === rotations
    ? `refresh-guard: every refresh succeeded with one redemption per rotation (without it: ${without.failed} failures).`
    : "refresh-guard did NOT prevent the race in this run; please report it.",
);
process.exitCode = withGuard.failed === 0 && withGuard.reuses === 0 ? 0 : 1;
