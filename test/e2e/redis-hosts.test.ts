// Real OpenClaw 2026.4.15 hosts on "two machines": two state dirs, each with the packed plugin
// installed and its own guard directory, holding copies of one expired openai-codex credential.
// Without a shared backend each machine's file lock coordinates only itself, so the second machine
// presents a spent token; with coordination.backend "redis" (a real redis-server started here)
// both stay signed in, rotation after rotation, with one redemption each.
//
// The stand-in listens on 127.0.0.2:443 (the DNS preload answers that address), so this file can
// run beside hosts.test.ts, which binds 127.0.0.1:443. Run it alone under
// `flock /tmp/rg-127.0.0.2-443.lock npx vitest run test/e2e/redis-hosts.test.ts`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { StatusReport } from "../../src/cli/status-report.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";
import { createTestTls, type TestTls } from "../support/tls.ts";
import {
  type CodexStandIn,
  HostWorld,
  hostUnderTest,
  leakedSecrets,
  type PackedPlugin,
  PLUGIN_ID,
  packPlugin,
  parseJsonOutput,
  printSummary,
  REFRESH_FAILED,
  recordScenario,
  startCodexStandIn,
} from "./harness.ts";

const VERSION = "2026.4.15";
const ADDRESS = "127.0.0.2";
const AGENT = "a1";
const ACCOUNT = "acct_redis_e2e";
const MINUTE = 60_000;

let tls: TestTls;
let plugin: PackedPlugin;
let redis: RedisServer;
const worlds: HostWorld[] = [];

beforeAll(async () => {
  tls = createTestTls();
  const host = await hostUnderTest(VERSION);
  plugin = await packPlugin();
  redis = await startRedis();
  // Two machines: each its own state dir, so its own guard directory.
  for (const label of ["machine-a", "machine-b"]) {
    const world = await HostWorld.create(host, tls, `redis-${label}`, ADDRESS);
    const install = await world.installPlugin(plugin.tgz);
    expect(install.stdout).toContain(`Installed plugin: ${PLUGIN_ID}`);
    worlds.push(world);
  }
}, 15 * MINUTE);

afterAll(async () => {
  await printSummary();
  await Promise.all(worlds.map((world) => world.cleanup()));
  await redis?.stop();
  await plugin?.cleanup();
  tls?.cleanup();
});

async function probeBoth(): Promise<{ world: HostWorld; status: string; error?: string }[]> {
  const results = await Promise.all(worlds.map(async (world) => ({ world, result: (await world.probeAll([AGENT]))[0]! })));
  return results.map(({ world, result }) => ({
    world,
    status: result.status,
    ...(result.error !== undefined ? { error: result.error } : {}),
  }));
}

describe(`openclaw ${VERSION} on two machines with separate guard directories`, () => {
  it(
    "with only the file backend (no shared disk), the second machine presents a spent token and loses its login",
    async () => {
      const started = Date.now();
      const codex: CodexStandIn = await startCodexStandIn(tls, ADDRESS);
      try {
        for (const world of worlds) await world.configurePlugin();
        const { server } = codex;
        const credential = server.expire(server.issue(`${ACCOUNT}_file`));
        for (const world of worlds) await world.seedAgents([AGENT], credential);
        const results = await probeBoth();
        recordScenario({
          host: VERSION,
          scenario: "two machines, file backend only",
          seconds: (Date.now() - started) / 1000,
          statuses: [results.map((r) => r.status)],
          probeSeconds: [],
          ...server.counters,
          modelCalls: { ...codex.modelCalls },
        });
        expect(results.filter((result) => result.status === "ok")).toHaveLength(1);
        const failed = results.filter((result) => result.status !== "ok");
        expect(failed).toHaveLength(1);
        expect(failed[0]!.error).toContain(REFRESH_FAILED);
        expect(server.counters).toMatchObject({ redemptions: 1, reuses: 1 });
      } finally {
        await codex.stop();
      }
    },
    10 * MINUTE,
  );

  it(
    "coordinated through Redis, both machines stay signed in over two rotations, each redeeming the token once",
    async () => {
      const started = Date.now();
      const codex: CodexStandIn = await startCodexStandIn(tls, ADDRESS);
      const statuses: string[][] = [];
      try {
        for (const world of worlds) await world.configurePlugin({ coordination: { backend: "redis", redis: { url: redis.url } } });
        const { server } = codex;
        const credential = server.expire(server.issue(ACCOUNT));
        for (const world of worlds) await world.seedAgents([AGENT], credential);
        for (let rotation = 1; rotation <= 2; rotation += 1) {
          if (rotation > 1) for (const world of worlds) await world.expireAgents([AGENT], server);
          const results = await probeBoth();
          statuses.push(results.map((r) => r.status));
          expect(results.map((result) => [result.status, result.error])).toEqual([
            ["ok", undefined],
            ["ok", undefined],
          ]);
          expect(server.counters).toMatchObject({ requests: rotation, redemptions: rotation, reuses: 0, invalid: 0 });
          const profiles = await Promise.all(worlds.map((world) => world.readProfile(AGENT)));
          expect(profiles[0]!.refresh).toBe(profiles[1]!.refresh);
          expect(server.refreshLive(profiles[0]!.refresh)).toBe(true);
          for (const profile of profiles) expect(server.accessValid(profile.access)).toBe(true);
        }
        expect(codex.modelCalls).toEqual({ ok: 4, denied: 0 });

        // `openclaw refresh-guard status` (JSON on one machine, text on the other: each run costs a host start):
        // the backend, reachable, its latency, and the journal as Redis holds it.
        const [jsonRun, textRun] = await Promise.all([worlds[0]!.status(true), worlds[1]!.status(false)]);
        {
          const report = parseJsonOutput(jsonRun.stdout) as StatusReport;
          expect(report.configProblem).toBeUndefined();
          expect(report.guard?.coordination).toMatchObject({
            backend: "redis",
            location: redis.url,
            reachable: true,
            onUnavailable: "fail",
          });
          expect(report.guard?.coordination.latencyMs).toBeGreaterThanOrEqual(0);
          expect(report.guard?.journal.entries).toBe(2);
          expect(report.guard?.locks).toEqual([]);
          expect(textRun.stdout).toContain(`coordination: redis ${redis.url} (reachable, ping `);
          expect(textRun.stdout).toContain("journal: 2 entries");
        }
        const secrets = server.issuedSecrets();
        expect(worlds.flatMap((world) => leakedSecrets(world.runs, secrets))).toEqual([]);
        for (const world of worlds) expect(await world.filesContaining(PLUGIN_ID, secrets)).toEqual([]);
        recordScenario({
          host: VERSION,
          scenario: "two machines, Redis backend, 2 rotations",
          seconds: (Date.now() - started) / 1000,
          statuses,
          probeSeconds: [],
          ...server.counters,
          modelCalls: { ...codex.modelCalls },
        });
      } finally {
        await codex.stop();
      }
    },
    15 * MINUTE,
  );
});
