// xAI (Grok subscription OAuth) on a real OpenClaw 2026.9.6, end to end. The host discovers the
// token endpoint at https://auth.x.ai/.well-known/openid-configuration and POSTs the refresh grant
// (form body) through its SSRF-guarded fetch, i.e. its own undici. The stand-in follows xAI's rules:
// each refresh token redeems once; a reuse answers 400 invalid_grant and revokes the whole family.
//
// Two state dirs share one xAI login and probe at once over two rotations. WITHOUT the plugin the
// second redeemer reuses the token, the family is revoked and the login is dead in both; WITH it
// (installed from the packed tarball, one guard dir for both) every probe is ok, one redemption per
// rotation, no reuse.
//
// Network: xAI's refresh carries no SSRF policy exception, so the stand-in's RFC 2544 address
// (198.18.0.3) is refused when pinned directly; the host sends xAI's OAuth requests through an
// HTTPS_PROXY from the environment without resolving the name ("trusted_explicit_proxy"), so the
// probes run behind a CONNECT proxy that tunnels the xAI names to the stand-in. Own address, so this
// file runs beside the others (run it under `flock /tmp/rg-198.18.0.3-443.lock`).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { StatusReport } from "../../src/cli/status-report.ts";
import { type ConnectProxy, startConnectProxy } from "../support/connect-proxy.ts";
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
import { ensureLoopbackAddress, fencedProfiles, INSTALL_FLAGS_9X, initState, readStores, seedSharedStore } from "./harness-9x.ts";
import { type ProviderStandIn, startProviderStandIn } from "./provider-stand-ins.ts";

const HOST = "2026.9.6";
const ADDRESS = "198.18.0.3";
const XAI_NAMES = ["auth.x.ai", "api.x.ai", "cli-chat-proxy.grok.com"];
const PROFILE = "xai:default";
const MODEL = "xai/grok-4.7";
const MINUTE = 60_000;

let tls: TestTls;
let plugin: PackedPlugin;
let proxy: ConnectProxy;
let host: HostUnderTest;

beforeAll(async () => {
  ensureLoopbackAddress(ADDRESS);
  tls = createTestTls({ hosts: XAI_NAMES });
  proxy = await startConnectProxy({ hosts: XAI_NAMES, target: ADDRESS });
  const pending = hostUnderTest(HOST, INSTALL_FLAGS_9X);
  plugin = await packPlugin();
  host = await pending;
}, 10 * MINUTE);

afterAll(async () => {
  await printSummary();
  await plugin?.cleanup();
  await proxy?.stop();
  tls?.cleanup();
});

/** A state dir on 2026.9.6 whose default model is xAI's; `plugin`: installed from the tarball and guarding `xai`. */
async function xaiWorld(label: string, options: { plugin: boolean; stateHome?: string }): Promise<HostWorld> {
  const world = await HostWorld.create(host, tls, label, ADDRESS);
  world.extraEnv.RG_DNS_HOSTS = XAI_NAMES.join(",");
  if (options.stateHome !== undefined) world.extraEnv.XDG_STATE_HOME = options.stateHome;
  if (options.plugin) {
    // Generous: a loaded 2-core machine makes `plugins install` take minutes.
    const install = expectOk(await world.cli(["plugins", "install", plugin.tgz, ...host.installFlags], { timeoutMs: 600_000 }));
    expect(install.stdout).toContain(PLUGIN_ID);
    const config = JSON.stringify({ providers: { xai: { enabled: true } } });
    expectOk(await world.cli(["config", "set", `plugins.entries.${PLUGIN_ID}.config`, config, "--strict-json"]));
  } else {
    await initState(world);
  }
  expectOk(await world.cli(["config", "set", "agents.defaults.model.primary", MODEL]));
  return world;
}

function expectOk(run: CliRun): CliRun {
  if (run.code !== 0) throw new Error(`openclaw ${run.args.join(" ")} exited ${run.code}:\n${run.stderr.slice(-2000)}`);
  return run;
}

/**
 * The login as 2026.9.6 stores it after `openclaw models auth login --provider xai` (device code):
 * sub as accountId, email, id token, and the token endpoint discovery gave. `tokenEndpoint`: the
 * legacy one makes the host rediscover it first.
 */
function profileOf(login: Credential, tokenEndpoint: string): OAuthProfile {
  return {
    type: "oauth",
    provider: "xai",
    access: login.access,
    refresh: login.refresh,
    expires: login.expires,
    email: login.email,
    accountId: login.userId,
    idToken: login.idToken,
    tokenEndpoint,
    issuer: "https://auth.x.ai",
    authFlow: "device-code",
  };
}

async function readXaiProfile(world: HostWorld): Promise<OAuthProfile> {
  const profile = (await readStores(world)).shared?.[PROFILE];
  if (profile === undefined) throw new Error(`${world.stateDir}: no ${PROFILE} in the shared store`);
  return profile;
}

/** The access token ran out everywhere: the stand-in stops honouring it and each store says so. */
async function expireEverywhere(xai: ProviderStandIn, worlds: readonly HostWorld[]): Promise<void> {
  for (const world of worlds) {
    const profile = await readXaiProfile(world);
    xai.server.expire({ access: profile.access, expires: profile.expires });
    seedSharedStore(world, { [PROFILE]: { ...profile, expires: Date.now() - MINUTE } });
  }
}

interface XaiProbe {
  status: string;
  error?: string;
  run: CliRun;
}

/** Every world probes xai at once (`models status --probe --probe-provider xai`), behind the proxy. */
async function probeAll(worlds: readonly HostWorld[]): Promise<XaiProbe[]> {
  const args = ["models", "status", "--probe", "--probe-provider", "xai", "--probe-timeout", "60000", "--json"];
  const runs = await Promise.all(worlds.map((world) => world.cli(args, { timeoutMs: 600_000, env: { HTTPS_PROXY: proxy.url } })));
  return runs.map((run) => {
    expectOk(run);
    const json = parseJsonOutput(run.stdout) as {
      auth?: { probes?: { results?: { profileId?: string; status?: string; error?: string }[] } };
    };
    const result = json.auth?.probes?.results?.find((entry) => entry.profileId === PROFILE);
    if (result?.status === undefined) throw new Error(`no probe result for ${PROFILE} in\n${run.stdout.slice(0, 2000)}`);
    const probe: XaiProbe = { status: result.status, run };
    if (result.error !== undefined) probe.error = result.error;
    return probe;
  });
}

function summarize(label: string, xai: ProviderStandIn, rounds: XaiProbe[][], started: number, notes: string[]): void {
  const { requests, redemptions, reuses, invalid } = xai.server.counters;
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
    modelCalls: { ...xai.modelCalls },
    notes,
  });
}

describe(`xAI OAuth on ${HOST}: two state dirs share one login, two rotations`, () => {
  it(
    "without the plugin: the second redemption reuses the token, xAI revokes the family, the login is dead in both",
    async () => {
      const started = Date.now();
      const xai = await startProviderStandIn("xai", tls, ADDRESS);
      const worlds: HostWorld[] = [];
      try {
        worlds.push(await xaiWorld("xai-bare-a", { plugin: false }), await xaiWorld("xai-bare-b", { plugin: false }));
        const login = xai.server.issue("xai-sub-1", 3600, { user: "xai-sub-1", email: "grok-user@example.test" });
        seedSharedStore(worlds[0]!, { [PROFILE]: profileOf(login, "https://auth.x.ai/oauth2/token") });
        seedSharedStore(worlds[1]!, { [PROFILE]: profileOf(login, "https://auth.x.ai/oauth/token") });
        await expireEverywhere(xai, worlds);
        const first = await probeAll(worlds);
        // Both state dirs redeemed the same refresh token: one won, the other reused it.
        expect(xai.server.counters.redemptions).toBe(1);
        expect(xai.server.counters.reuses).toBe(1);
        expect(xai.server.familyRevoked(login.refresh)).toBe(true);
        expect(first.map((probe) => probe.status)).not.toEqual(["ok", "ok"]);
        // Next rotation: every token either state dir holds belongs to the revoked family.
        for (const world of worlds) expect(xai.server.refreshLive((await readXaiProfile(world)).refresh)).toBe(false);
        await expireEverywhere(xai, worlds);
        const second = await probeAll(worlds);
        expect(second.map((probe) => probe.status).filter((status) => status === "ok")).toEqual([]);
        expect(xai.server.counters.redemptions).toBe(1);
        const fences = (await Promise.all(worlds.map((world) => fencedProfiles(world)))).flat();
        summarize("xai two state dirs, no plugin", xai, [first, second], started, [
          `errors: ${[...first, ...second].map((probe) => probe.error ?? "-").join(" | ")}`,
          `fenced: ${fences.length}`,
          `other requests: ${JSON.stringify([...xai.server.otherRequests])}`,
        ]);
      } finally {
        await xai.stop();
        for (const world of worlds) await world.cleanup();
      }
    },
    40 * MINUTE,
  );

  it(
    "with the plugin: every probe ok, one redemption per rotation, no reuse, the discovery GET untouched",
    async () => {
      const started = Date.now();
      const xai = await startProviderStandIn("xai", tls, ADDRESS);
      const stateHome = await mkdtemp(join(tmpdir(), "rg-e2e-xai-guard-"));
      const worlds: HostWorld[] = [];
      try {
        worlds.push(await xaiWorld("xai-guard-a", { plugin: true, stateHome }), await xaiWorld("xai-guard-b", { plugin: true, stateHome }));
        const login = xai.server.issue("xai-sub-2", 3600, { user: "xai-sub-2", email: "grok-user2@example.test" });
        seedSharedStore(worlds[0]!, { [PROFILE]: profileOf(login, "https://auth.x.ai/oauth2/token") });
        // The legacy endpoint: this state dir rediscovers the token endpoint first (a GET the guard leaves alone).
        seedSharedStore(worlds[1]!, { [PROFILE]: profileOf(login, "https://auth.x.ai/oauth/token") });
        const rounds: XaiProbe[][] = [];
        for (let rotation = 1; rotation <= 2; rotation += 1) {
          await expireEverywhere(xai, worlds);
          const round = await probeAll(worlds);
          rounds.push(round);
          expect(round.map((probe) => `${probe.status}${probe.error ? `: ${probe.error}` : ""}`)).toEqual(["ok", "ok"]);
          expect(xai.server.counters.redemptions).toBe(rotation);
          expect(xai.server.counters.reuses).toBe(0);
          // Both state dirs now hold the one live successor.
          const held = await Promise.all(worlds.map(async (world) => (await readXaiProfile(world)).refresh));
          expect(new Set(held).size).toBe(1);
          expect(xai.server.refreshLive(held[0]!)).toBe(true);
        }
        expect(xai.server.counters.invalid).toBe(0);
        expect(xai.server.familyRevoked(login.refresh)).toBe(false);
        expect(xai.server.otherRequests.get("/.well-known/openid-configuration")).toBeGreaterThanOrEqual(1);
        expect((await Promise.all(worlds.map((world) => fencedProfiles(world)))).flat()).toEqual([]);
        // The hook sat on the host's own undici in every probe.
        for (const world of worlds) {
          for (const run of world.runs.filter((entry) => entry.args.includes("--probe"))) {
            expect((await world.fetchReport(run)).hostUndiciAttached).toBe(true);
          }
        }
        // Status names the provider it guards; no token reached output or the guard dir.
        const status = expectOk(await worlds[0]!.cli([PLUGIN_ID, "status", "--json"]));
        const report = parseJsonOutput(status.stdout) as StatusReport;
        expect(report.guard?.providers).toEqual([{ id: "xai", tokenUrl: "https://auth.x.ai/oauth2/token" }]);
        const secrets = xai.server.issuedSecrets();
        for (const world of worlds) {
          expect(leakedSecrets(world.runs, secrets)).toEqual([]);
          expect(await world.filesContaining(world.guardDir, secrets)).toEqual([]);
        }
        summarize("xai two state dirs, plugin", xai, rounds, started, [`other requests: ${JSON.stringify([...xai.server.otherRequests])}`]);
      } finally {
        await xai.stop();
        for (const world of worlds) await world.cleanup();
        await rm(stateHome, { recursive: true, force: true });
      }
    },
    40 * MINUTE,
  );
});
