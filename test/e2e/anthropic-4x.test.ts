// Anthropic (Claude Pro/Max OAuth) on a real OpenClaw 2026.4.15, end to end. The host refreshes an
// `anthropic` OAuth profile through pi-ai's refreshAnthropicToken: a bare globalThis.fetch POST of a
// JSON body to https://platform.claude.com/v1/oauth/token. The stand-in follows Anthropic's rules:
// each refresh token redeems once; a reuse answers 400 invalid_grant "Refresh token not found or
// invalid" (the same body as for an expired token) and revokes the whole family.
//
// Three agents (own OPENCLAW_AGENT_DIR each, one state dir) hold copies of one login and probe at
// once. WITHOUT the plugin the first redeems and the others reuse it: the family is revoked and the
// login is dead for every agent; WITH it (installed from the packed tarball) every probe is ok over
// two rotations, one redemption per rotation, no reuse.
//
// The stand-in listens on 127.0.0.3:443 (its own address: this file runs beside the others; run it
// under `flock /tmp/rg-127.0.0.3-443.lock`).
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { StatusReport } from "../../src/cli/status-report.ts";
import { createTestTls, type TestTls } from "../support/tls.ts";
import type { Credential } from "../support/token-endpoint-server.ts";
import {
  type CliRun,
  type HostUnderTest,
  HostWorld,
  hostUnderTest,
  leakedSecrets,
  type OAuthProfile,
  type PackedPlugin,
  PLUGIN_ID,
  packPlugin,
  parseJsonOutput,
  printSummary,
  recordScenario,
} from "./harness.ts";
import { type ProviderStandIn, startProviderStandIn } from "./provider-stand-ins.ts";

const HOST = "2026.4.15";
const ADDRESS = "127.0.0.3";
const ANTHROPIC_NAMES = ["platform.claude.com", "console.anthropic.com", "api.anthropic.com"];
const PROFILE = "anthropic:default";
const MODEL = "anthropic/claude-sonnet-4-5";
const AGENTS = ["a1", "a2", "a3"] as const;
const MINUTE = 60_000;
/** How 2026.4.15 reports a failed refresh. */
const REFRESH_FAILED = "OAuth token refresh failed for anthropic";

let tls: TestTls;
let plugin: PackedPlugin;
let host: HostUnderTest;

beforeAll(async () => {
  tls = createTestTls({ hosts: ANTHROPIC_NAMES });
  const pending = hostUnderTest(HOST);
  plugin = await packPlugin();
  host = await pending;
}, 10 * MINUTE);

afterAll(async () => {
  await printSummary();
  await plugin?.cleanup();
  tls?.cleanup();
});

async function anthropicWorld(label: string, withPlugin: boolean): Promise<HostWorld> {
  const world = await HostWorld.create(host, tls, label, ADDRESS);
  world.extraEnv.RG_DNS_HOSTS = ANTHROPIC_NAMES.join(",");
  if (withPlugin) {
    // Generous: a loaded 2-core machine makes `plugins install` take minutes.
    const install = expectOk(await world.cli(["plugins", "install", plugin.tgz, ...host.installFlags], { timeoutMs: 600_000 }));
    expect(install.stdout).toContain(`Installed plugin: ${PLUGIN_ID}`);
    const config = JSON.stringify({ providers: { anthropic: { enabled: true } } });
    expectOk(await world.cli(["config", "set", `plugins.entries.${PLUGIN_ID}.config`, config, "--strict-json"]));
  }
  // The model the probe calls (POST https://api.anthropic.com/v1/messages on the stand-in).
  expectOk(await world.cli(["config", "set", "agents.defaults.model.primary", MODEL]));
  return world;
}

function expectOk(run: CliRun): CliRun {
  if (run.code !== 0) throw new Error(`openclaw ${run.args.join(" ")} exited ${run.code}:\n${run.stderr.slice(-2000)}`);
  return run;
}

function storePath(world: HostWorld, agent: string): string {
  return join(world.agentDir(agent), "auth-profiles.json");
}

/** An Anthropic OAuth login as 2026.4.15 stores it (`openclaw models auth login --provider anthropic`): opaque tokens, no account claim. */
async function writeProfile(world: HostWorld, agent: string, profile: OAuthProfile): Promise<void> {
  await mkdir(world.agentDir(agent), { recursive: true });
  const file = storePath(world, agent);
  await writeFile(file, `${JSON.stringify({ version: 1, profiles: { [PROFILE]: profile } }, null, 2)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
}

async function readProfile(world: HostWorld, agent: string): Promise<OAuthProfile> {
  const store = JSON.parse(await readFile(storePath(world, agent), "utf8")) as { profiles: Record<string, OAuthProfile> };
  const profile = store.profiles[PROFILE];
  if (profile === undefined) throw new Error(`agent ${agent}: no ${PROFILE}`);
  return profile;
}

async function seedAgents(world: HostWorld, login: Credential): Promise<void> {
  for (const agent of AGENTS) {
    await writeProfile(world, agent, {
      type: "oauth",
      provider: "anthropic",
      access: login.access,
      refresh: login.refresh,
      expires: login.expires,
    });
  }
}

/** The access token ran out: the stand-in stops honouring it and every agent's store says so. */
async function expireAgents(world: HostWorld, standIn: ProviderStandIn): Promise<void> {
  for (const agent of AGENTS) {
    const profile = await readProfile(world, agent);
    standIn.server.expire({ access: profile.access, expires: profile.expires });
    await writeProfile(world, agent, { ...profile, expires: Date.now() - MINUTE });
  }
}

interface AgentProbe {
  agent: string;
  status: string;
  error?: string;
  run: CliRun;
}

/** Every agent probes anthropic at once. */
async function probeAll(world: HostWorld): Promise<AgentProbe[]> {
  const args = ["models", "status", "--probe", "--probe-provider", "anthropic", "--probe-timeout", "300000", "--json"];
  const runs = await Promise.all(AGENTS.map((agent) => world.cli(args, { agent, timeoutMs: 600_000 })));
  return runs.map((run) => {
    expectOk(run);
    const json = parseJsonOutput(run.stdout) as { auth?: { probes?: { results?: { status?: string; error?: string }[] } } };
    const result = json.auth?.probes?.results?.[0];
    if (result?.status === undefined) throw new Error(`probe of ${run.agent}: no result in\n${run.stdout.slice(0, 2000)}`);
    const probe: AgentProbe = { agent: run.agent ?? "?", status: result.status, run };
    if (result.error !== undefined) probe.error = result.error;
    return probe;
  });
}

function summarize(label: string, standIn: ProviderStandIn, rounds: AgentProbe[][], started: number, notes: string[]): void {
  const { requests, redemptions, reuses, invalid } = standIn.server.counters;
  recordScenario({
    host: HOST,
    scenario: label,
    seconds: (Date.now() - started) / 1000,
    statuses: rounds.map((round) => round.map((probe) => probe.status)),
    probeSeconds: rounds.map((round) => round.map((probe) => probe.run.ms / 1000)),
    requests,
    redemptions,
    reuses,
    invalid,
    modelCalls: { ...standIn.modelCalls },
    notes,
  });
}

describe(`Anthropic OAuth on ${HOST}: three agents share one login`, () => {
  it(
    "without the plugin: the copies reuse the refresh token, Anthropic revokes the family, every agent is signed out",
    async () => {
      const started = Date.now();
      const standIn = await startProviderStandIn("anthropic", tls, ADDRESS);
      const world = await anthropicWorld("anthropic-bare", false);
      try {
        const login = standIn.server.issue("anthropic-acct-1");
        await seedAgents(world, standIn.server.expire(login));
        const first = await probeAll(world);
        expect(standIn.server.counters.redemptions).toBe(1);
        expect(standIn.server.counters.reuses).toBeGreaterThanOrEqual(1);
        expect(standIn.server.familyRevoked(login.refresh)).toBe(true);
        const failed = first.filter((probe) => probe.status !== "ok");
        expect(failed.length).toBeGreaterThanOrEqual(AGENTS.length - 1);
        for (const probe of failed) expect(probe.error ?? "").toContain(REFRESH_FAILED);
        for (const probe of first) expect((await world.fetchReport(probe.run)).hookAttached).toBe(false);
        // Whatever each agent holds now belongs to the revoked family: the next rotation fails everywhere.
        for (const agent of AGENTS) expect(standIn.server.refreshLive((await readProfile(world, agent)).refresh)).toBe(false);
        await expireAgents(world, standIn);
        const second = await probeAll(world);
        expect(second.filter((probe) => probe.status === "ok")).toEqual([]);
        expect(standIn.server.counters.redemptions).toBe(1);
        summarize("anthropic 3 agents, no plugin", standIn, [first, second], started, [
          `errors: ${[...first, ...second].map((probe) => (probe.error ?? "-").slice(0, 160)).join(" | ")}`,
        ]);
      } finally {
        await standIn.stop();
        await world.cleanup();
      }
    },
    40 * MINUTE,
  );

  it(
    "with the plugin: every agent stays signed in over two rotations, one redemption each, no reuse",
    async () => {
      const started = Date.now();
      const standIn = await startProviderStandIn("anthropic", tls, ADDRESS);
      const world = await anthropicWorld("anthropic-guard", true);
      try {
        const login = standIn.server.issue("anthropic-acct-2");
        await seedAgents(world, standIn.server.expire(login));
        const rounds: AgentProbe[][] = [];
        for (let rotation = 1; rotation <= 2; rotation += 1) {
          if (rotation > 1) await expireAgents(world, standIn);
          const round = await probeAll(world);
          rounds.push(round);
          expect(round.map((probe) => [probe.agent, probe.status, probe.error])).toEqual(AGENTS.map((agent) => [agent, "ok", undefined]));
          expect(standIn.server.counters).toMatchObject({ redemptions: rotation, reuses: 0, invalid: 0 });
          const held = new Set(await Promise.all(AGENTS.map(async (agent) => (await readProfile(world, agent)).refresh)));
          expect(held.size).toBe(1);
          expect(standIn.server.refreshLive([...held][0]!)).toBe(true);
          for (const probe of round) expect((await world.fetchReport(probe.run)).hookAttached).toBe(true);
        }
        expect(standIn.modelCalls).toEqual({ ok: AGENTS.length * 2, denied: 0 });
        expect(standIn.server.familyRevoked(login.refresh)).toBe(false);
        const status = expectOk(await world.cli([PLUGIN_ID, "status", "--json"]));
        const report = parseJsonOutput(status.stdout) as StatusReport;
        expect(report.guard?.providers).toEqual([{ id: "anthropic", tokenUrl: "https://platform.claude.com/v1/oauth/token" }]);
        expect(report.guard?.outcomes).toMatchObject({ redeemed: 2, shared: (AGENTS.length - 1) * 2, recovered: 0, failed: 0 });
        const secrets = standIn.server.issuedSecrets();
        expect(leakedSecrets(world.runs, secrets)).toEqual([]);
        expect(await world.filesContaining(world.guardDir, secrets)).toEqual([]);
        summarize("anthropic 3 agents, plugin", standIn, rounds, started, [`outcomes ${JSON.stringify(report.guard?.outcomes)}`]);
      } finally {
        await standIn.stop();
        await world.cleanup();
      }
    },
    40 * MINUTE,
  );
});
