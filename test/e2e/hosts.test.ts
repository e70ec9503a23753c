// Real OpenClaw hosts, end to end, with no network: the packed plugin installed with
// `openclaw plugins install`, three agents (own OPENCLAW_AGENT_DIR each, one state dir) holding
// copies of one expired openai-codex credential and probing at once against the stand-in on
// 127.0.0.1:443. A probe passes only with an access token the stand-in issued and still honours.
//
// One file on purpose: every scenario binds port 443, and vitest runs files in parallel. The
// describe blocks run one after another; hosts install (or come from the cache) up front.
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { StatusReport } from "../../src/cli/status-report.ts";
import { createTestTls, type TestTls } from "../support/tls.ts";
import {
  type CodexStandIn,
  type HostUnderTest,
  HostWorld,
  hostUnderTest,
  leakedSecrets,
  type PackedPlugin,
  PLUGIN_ID,
  type ProbeResult,
  packPlugin,
  parseJsonOutput,
  printSummary,
  REFRESH_FAILED,
  recordScenario,
  type ScenarioSummary,
  startCodexStandIn,
} from "./harness.ts";

const AGENTS = ["a1", "a2", "a3"] as const;
const ACCOUNT = "acct_e2e";
const MINUTE = 60_000;

// Hosts and the flags their `plugins install` needs for a local archive without prompting.
const HOSTS: Record<string, string[]> = {
  "2026.4.15": [],
  "2026.5.7": [],
};

let tls: TestTls;
let plugin: PackedPlugin;
const hosts = new Map<string, Promise<HostUnderTest>>();

beforeAll(async () => {
  // Before any host process starts: NODE_EXTRA_CA_CERTS is read at process start.
  tls = createTestTls();
  // Installs run in parallel (network bound); each describe awaits its own, so a host that
  // cannot be installed fails its own tests.
  for (const [version, flags] of Object.entries(HOSTS)) {
    const pending = hostUnderTest(version, flags);
    pending.catch(() => undefined);
    hosts.set(version, pending);
  }
  plugin = await packPlugin();
}, 5 * MINUTE);

afterAll(async () => {
  await printSummary();
  await plugin?.cleanup();
  tls?.cleanup();
});

function host(version: string): Promise<HostUnderTest> {
  const pending = hosts.get(version);
  if (pending === undefined) throw new Error(`host ${version} is not in HOSTS`);
  return pending;
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

function newSummary(host: HostUnderTest, scenario: string): ScenarioSummary {
  return {
    host: host.version,
    scenario,
    seconds: 0,
    statuses: [],
    probeSeconds: [],
    requests: 0,
    redemptions: 0,
    reuses: 0,
    invalid: 0,
    modelCalls: { ok: 0, denied: 0 },
  };
}

function noteProbes(summary: ScenarioSummary, codex: CodexStandIn, results: readonly ProbeResult[]): void {
  const { requests, redemptions, reuses, invalid } = codex.server.counters;
  Object.assign(summary, { requests, redemptions, reuses, invalid, modelCalls: { ...codex.modelCalls } });
  summary.statuses.push(results.map((result) => result.status));
  summary.probeSeconds.push(results.map((result) => result.ms / 1000));
}

/** `openclaw plugins install <tgz>`, then the user config that enables openai-codex; checks both took. */
async function installAndEnable(world: HostWorld) {
  const install = await world.installPlugin(plugin.tgz);
  expect(install.stdout).toContain(`Installed plugin: ${PLUGIN_ID}`);
  await world.configurePlugin();
  expect((await world.readConfig()).plugins?.entries?.[PLUGIN_ID]).toMatchObject({
    enabled: true,
    config: { providers: { "openai-codex": { enabled: true } } },
  });
  return install;
}

/** Without the plugin the copies race: one agent redeems, the others present a spent token. */
async function expectRaceWithoutPlugin(host: HostUnderTest): Promise<void> {
  const started = Date.now();
  const summary = newSummary(host, "without plugin, 3 agents x 1 rotation");
  const world = await HostWorld.create(host, tls, "bare");
  const codex = await startCodexStandIn(tls);
  try {
    const { server } = codex;
    await world.seedAgents(AGENTS, server.expire(server.issue(ACCOUNT)));
    const results = await world.probeAll(AGENTS);
    noteProbes(summary, codex, results);

    const failed = results.filter((result) => result.status !== "ok");
    expect(failed.length).toBeGreaterThanOrEqual(1);
    for (const result of failed) {
      expect(result.status).toBe("auth");
      expect(result.error).toContain(REFRESH_FAILED);
    }
    expect(server.counters.reuses).toBeGreaterThanOrEqual(1);
    expect(server.counters.redemptions).toBe(1);
    // The stand-in refused no model call: the failed agents never got that far.
    expect(codex.modelCalls.denied).toBe(0);
    for (const result of results) expect((await world.fetchReport(result.run)).hookAttached).toBe(false);
  } finally {
    summary.seconds = (Date.now() - started) / 1000;
    recordScenario(summary);
    await codex.stop();
    await world.cleanup();
  }
}

/**
 * With the plugin installed from the packed tarball and enabled: every agent gets a live credential
 * each rotation, the stand-in sees one token request per rotation and no reuse, and the status
 * command accounts for every refresh without printing a token.
 */
async function expectGuardedRotations(host: HostUnderTest, rotations: number): Promise<void> {
  const started = Date.now();
  const summary = newSummary(host, `with plugin, 3 agents x ${rotations} rotation${rotations === 1 ? "" : "s"}`);
  const world = await HostWorld.create(host, tls, "guarded");
  const codex = await startCodexStandIn(tls);
  try {
    const install = await installAndEnable(world);

    const { server } = codex;
    await world.seedAgents(AGENTS, server.expire(server.issue(ACCOUNT)));
    for (let rotation = 1; rotation <= rotations; rotation += 1) {
      if (rotation > 1) await world.expireAgents(AGENTS, server);
      const results = await world.probeAll(AGENTS);
      noteProbes(summary, codex, results);

      expect(results.map((result) => [result.agent, result.status, result.error])).toEqual(AGENTS.map((agent) => [agent, "ok", undefined]));
      expect(server.counters).toMatchObject({ requests: rotation, redemptions: rotation, reuses: 0, invalid: 0 });
      const profiles = await Promise.all(AGENTS.map((agent) => world.readProfile(agent)));
      const refreshTokens = new Set(profiles.map((profile) => profile.refresh));
      expect(refreshTokens.size).toBe(1);
      expect(server.refreshLive([...refreshTokens][0]!)).toBe(true);
      for (const profile of profiles) {
        expect(server.accessValid(profile.access)).toBe(true);
        expect(profile.expires).toBeGreaterThan(Date.now());
      }
      // The guard sat in front of fetch in every probe process.
      for (const result of results) expect((await world.fetchReport(result.run)).hookAttached).toBe(true);
    }
    expect(codex.modelCalls).toEqual({ ok: AGENTS.length * rotations, denied: 0 });

    const [jsonRun, textRun] = await Promise.all([world.status(true), world.status(false)]);
    const report = parseJsonOutput(jsonRun.stdout) as StatusReport;
    summary.outcomes = { ...report.guard?.outcomes };
    expect(report.host).toMatchObject({ version: host.version, supported: true, hook: "attached" });
    expect(report.configProblem).toBeUndefined();
    expect(report.guard?.providers.map((provider) => provider.id)).toEqual(["openai-codex"]);
    const outcomes = report.guard!.outcomes;
    expect(outcomes).toMatchObject({ redeemed: rotations, recovered: 0, failed: 0 });
    // Every other agent's refresh was answered from the journal.
    expect(outcomes.shared).toBe((AGENTS.length - 1) * rotations);
    expect(report.guard?.locks).toEqual([]);
    expect(textRun.stdout).toContain(`on OpenClaw ${host.version}: hook attached`);
    expect(textRun.stdout).toContain(`outcomes: redeemed ${rotations} `);

    summary.notes = [`install ${seconds(install.ms)} s`, `status ${seconds(jsonRun.ms)} s`];

    const secrets = server.issuedSecrets();
    expect(leakedSecrets(world.runs, secrets)).toEqual([]);
    // The journal is encrypted: no token in plain text anywhere in the guard directory.
    expect(await world.filesContaining(world.guardDir, secrets)).toEqual([]);
  } finally {
    summary.seconds = (Date.now() - started) / 1000;
    recordScenario(summary);
    await codex.stop();
    await world.cleanup();
  }
}

// Hosts whose openai-codex refresh goes through global fetch: the race is real there and the guard
// must close it. 2026.5.7 probes are about twice as cheap as 2026.4.15's.
const GUARDED_HOSTS = [
  { version: "2026.4.15", rotations: 2 },
  { version: "2026.5.7", rotations: 2 },
];

for (const { version, rotations } of GUARDED_HOSTS) {
  describe(`openclaw ${version}`, () => {
    let h: HostUnderTest;
    beforeAll(async () => {
      h = await host(version);
    }, 15 * MINUTE);

    it(
      "without refresh-guard, agents holding copies of one credential race and fail with refresh_token_reused",
      async () => {
        await expectRaceWithoutPlugin(h);
      },
      6 * MINUTE,
    );

    it(
      `with refresh-guard, every agent stays signed in over ${rotations} rotations and each rotation redeems the token once`,
      async () => {
        await expectGuardedRotations(h, rotations);
      },
      10 * MINUTE,
    );
  });
}

// 2026.6 – 2026.9.6: test/e2e/hosts-9x.test.ts (another address, another seam).
