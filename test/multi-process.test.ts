// The core promise with real processes: 8 child processes × 8 concurrent callers hold copies of one
// credential and refresh at once, over 5 rotations, against the stand-in over real HTTP.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Agent, startAgents } from "./support/agent-pool.ts";
import { type StandInEndpoint, startStandIn } from "./support/token-endpoint-server.ts";

const PROCESSES = 8;
const CALLERS = 8;
const ROTATIONS = 5;

describe("many processes sharing one credential", () => {
  let server: StandInEndpoint;
  let workers: Agent[];
  let dir: string;

  beforeAll(async () => {
    server = await startStandIn({ latencyMs: 40 });
    dir = await mkdtemp(join(tmpdir(), "rg-multi-"));
    workers = await startAgents(PROCESSES, { stateDir: dir, tokenUrl: server.url });
  });

  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("redeems once per rotation, sees no reuse, and gives every caller the live successor", async () => {
    let credential = server.issue("acct-multi");
    for (let rotation = 1; rotation <= ROTATIONS; rotation += 1) {
      const results = (await Promise.all(workers.map((worker) => worker.refresh(credential.refresh, CALLERS)))).flat();
      expect(results).toHaveLength(PROCESSES * CALLERS);
      expect(results.filter((result) => result.status !== 200).map((result) => result.error)).toEqual([]);
      const successors = new Set(results.map((result) => result.refresh));
      expect(successors.size).toBe(1);
      const [successor] = [...successors];
      expect(server.refreshLive(successor!)).toBe(true);
      expect(results.every((result) => server.accessValid(result.access!))).toBe(true);
      expect(server.counters.redemptions).toBe(rotation);
      credential = { ...credential, refresh: successor!, access: results[0]!.access! };
    }
    expect(server.counters.reuses).toBe(0);
    expect(server.counters.invalid).toBe(0);
    const outcomes = workers.flatMap((worker) => worker.events);
    expect(outcomes.filter((type) => type === "redeemed")).toHaveLength(ROTATIONS);
    expect(outcomes.filter((type) => type === "shared")).toHaveLength(ROTATIONS * (PROCESSES * CALLERS - 1));
    expect(outcomes.filter((type) => type === "failed")).toEqual([]);
  });

  it("hands a process that slept through three rotations the current credential without redeeming", async () => {
    const late = server.issue("acct-late");
    let head = late.refresh;
    for (let i = 0; i < 3; i += 1) {
      const [result] = await workers[i]!.refresh(head, 1);
      head = result!.refresh!;
    }
    const before = server.counters.redemptions;
    const [lateResult] = await workers[PROCESSES - 1]!.refresh(late.refresh, 1);
    expect(lateResult!.status).toBe(200);
    expect(lateResult!.refresh).toBe(head);
    expect(server.counters.redemptions).toBe(before);
    expect(server.counters.reuses).toBe(0);
  });
});
