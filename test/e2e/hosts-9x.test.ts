// Real OpenClaw 2026.6 – 2026.9.6 hosts, end to end, on the host's real token path: the SSRF-guarded
// fetch of the host's own undici, DNS pinned to the stand-in on 198.18.0.1:443 (RFC 2544, allowed by
// the host's token policy). Each scenario shows the race and the terminal fence WITHOUT the plugin,
// and WITH it: every refresh ok, one redemption per rotation, no reuse, no fence in any store.
//
// One file on purpose: every scenario binds 198.18.0.1:443 (run it under
// `flock /tmp/rg-198.18.0.1-443.lock`); describe blocks run one after another.
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { StatusReport } from "../../src/cli/status-report.ts";
import { type ConnectProxy, startConnectProxy } from "../support/connect-proxy.ts";
import { startRedis } from "../support/redis-server.ts";
import { createTestTls, type TestTls } from "../support/tls.ts";
import type { Credential } from "../support/token-endpoint-server.ts";
import {
  type CodexStandIn,
  type HostUnderTest,
  HostWorld,
  hostUnderTest,
  leakedSecrets,
  type PackedPlugin,
  PLUGIN_ID,
  packPlugin,
  parseJsonOutput,
  printSummary,
  recordScenario,
  type ScenarioSummary,
  startCodexStandIn,
} from "./harness.ts";
import {
  codexAuthPath,
  configurePlugin9x,
  ensureLoopbackAddress,
  FENCE_PREFIX,
  fencedProfiles,
  INSTALL_FLAGS_9X,
  initState,
  PROFILE,
  prepareStoreLayout,
  probe9x,
  profileOf,
  REFRESH_FAILED_9X,
  readCodexAuth,
  readProfile,
  removeStoreTemplates,
  STAND_IN_ADDRESS,
  seedStore,
  startGateway,
  use9xNetwork,
  writeCodexAuth,
} from "./harness-9x.ts";

/** Terminal colour codes in the host's output (ESC [ … m). */
const ANSI_COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

const ACCOUNT = "acct_e2e_9x";
const MINUTE = 60_000;
const MAIN_HOST = "2026.9.6";
/** Older 9.x-line hosts: the seam attaches and the two-state-dir race is cured. */
const COMPAT_HOSTS = (process.env.RG_E2E_9X_COMPAT ?? "2026.6.6,2026.7.35").split(",").filter(Boolean);

/**
 * How each host reaches the stand-in. 2026.9.6's token policy allows RFC 2544 addresses, so its
 * token POST goes straight to 198.18.0.1 through DNS pinning; 2026.6/2026.7 refuse them and reach
 * it through a managed HTTPS proxy (see use9xNetwork).
 */
/** `plugins install <tgz>` flags each host needs to install without prompting (6.6/7.35 have no --accept-capabilities). */
const INSTALL_FLAGS: Record<string, string[]> = { [MAIN_HOST]: INSTALL_FLAGS_9X };

const NETWORK: Record<string, "rfc2544" | "managed-proxy"> = { [MAIN_HOST]: "rfc2544" };

let tls: TestTls;
let plugin: PackedPlugin;
let proxy: ConnectProxy;
const hosts = new Map<string, Promise<HostUnderTest>>();

beforeAll(async () => {
  ensureLoopbackAddress(STAND_IN_ADDRESS);
  tls = createTestTls();
  proxy = await startConnectProxy({ hosts: ["auth.openai.com", "chatgpt.com"], target: STAND_IN_ADDRESS });
  for (const version of [MAIN_HOST, ...COMPAT_HOSTS]) {
    const pending = hostUnderTest(version, INSTALL_FLAGS[version] ?? ["--force"]);
    pending.catch(() => undefined);
    hosts.set(version, pending);
  }
  plugin = await packPlugin();
}, 5 * MINUTE);

afterAll(async () => {
  await printSummary();
  await plugin?.cleanup();
  await proxy?.stop();
  await removeStoreTemplates();
  tls?.cleanup();
});

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

function note(summary: ScenarioSummary, codex: CodexStandIn, statuses: string[], ms: number[]): void {
  const { requests, redemptions, reuses, invalid } = codex.server.counters;
  Object.assign(summary, { requests, redemptions, reuses, invalid, modelCalls: { ...codex.modelCalls } });
  summary.statuses.push(statuses);
  summary.probeSeconds.push(ms.map((x) => x / 1000));
}

/** A world on this host, the stand-in reached through the 9.x network path. `plugin`: installed and enabled. */
async function world9x(
  host: HostUnderTest,
  label: string,
  options: { plugin: boolean; stateHome?: string; config?: Record<string, unknown> },
): Promise<HostWorld> {
  await layoutOf(host);
  const world = await HostWorld.create(host, tls, label);
  use9xNetwork(world, networkOptions(host, options.stateHome));
  if (options.plugin) {
    const install = await world.installPlugin(plugin.tgz);
    expect(install.stdout).toContain(PLUGIN_ID);
    await configurePlugin9x(world, options.config);
  } else {
    await initState(world);
  }
  return world;
}

function networkOptions(host: HostUnderTest, stateHome?: string): Parameters<typeof use9xNetwork>[1] {
  return { stateHome, managedProxy: (NETWORK[host.version] ?? "managed-proxy") === "managed-proxy" ? proxy.url : undefined };
}

/** For a failed setup: stop the stand-in (it holds 198.18.0.1:443), then fail. */
function stopAndThrow(codex: CodexStandIn): (error: unknown) => Promise<never> {
  return async (error) => {
    await codex.stop();
    throw error;
  };
}

const layouts = new Map<string, Promise<"shared" | "agent">>();

/** Where this host keeps credentials; made once per host in a throwaway world. */
function layoutOf(host: HostUnderTest): Promise<"shared" | "agent"> {
  let layout = layouts.get(host.version);
  if (layout === undefined) {
    layout = (async () => {
      const world = await HostWorld.create(host, tls, "layout");
      use9xNetwork(world, networkOptions(host));
      try {
        return await prepareStoreLayout(world);
      } finally {
        await world.cleanup();
      }
    })();
    layouts.set(host.version, layout);
  }
  return layout;
}

/** The stand-in forgets the access tokens held in `worlds` and each store marks them expired. */
async function expireEverywhere(codex: CodexStandIn, worlds: readonly HostWorld[]): Promise<void> {
  for (const world of worlds) {
    const profile = await readProfile(world, PROFILE);
    codex.server.expire({
      access: profile.access,
      refresh: profile.refresh,
      idToken: "",
      expires: profile.expires,
      accountId: profile.accountId ?? "",
    });
    await seedStore(world, { [PROFILE]: { ...profile, expires: Date.now() - MINUTE } });
  }
}

async function expectNoSecretsLeaked(codex: CodexStandIn, worlds: readonly HostWorld[]): Promise<void> {
  const secrets = codex.server.issuedSecrets();
  for (const world of worlds) {
    expect(leakedSecrets(world.runs, secrets)).toEqual([]);
    expect(await world.filesContaining(world.guardDir, secrets)).toEqual([]);
  }
}

async function hookAttachedIn(world: HostWorld, run: Parameters<HostWorld["fetchReport"]>[0]): Promise<boolean> {
  const report = await world.fetchReport(run);
  return report.hostUndiciAttached === true;
}

// ---------------------------------------------------------------------------------------------
// Two state dirs holding copies of one expired credential, refreshing at once

async function twoStateDirsWithout(host: HostUnderTest): Promise<void> {
  const started = Date.now();
  const summary = newSummary(host, "without plugin, 2 state dirs x 1 rotation");
  const codex = await startCodexStandIn(tls, STAND_IN_ADDRESS);
  const worlds = await Promise.all(["bare-a", "bare-b"].map((label) => world9x(host, label, { plugin: false }))).catch(stopAndThrow(codex));
  try {
    const credential = codex.server.expire(codex.server.issue(ACCOUNT));
    for (const world of worlds) await seedStore(world, { [PROFILE]: profileOf(credential) });
    const probes = await Promise.all(worlds.map((world) => probe9x(world)));
    const statuses = probes.map((probe) => probe.results[0]!.status);
    note(
      summary,
      codex,
      statuses,
      probes.map((probe) => probe.run.ms),
    );

    // 2026.9.6 sends the spent token once; 2026.7.35 retries it (measured: 3 requests).
    expect(codex.server.counters.requests).toBeGreaterThanOrEqual(2);
    expect(codex.server.counters.redemptions).toBe(1);
    expect(codex.server.counters.reuses).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((status) => status === "ok")).toHaveLength(1);
    const loser = probes.find((probe) => probe.results[0]!.status !== "ok")!;
    expect(loser.results[0]!.error).toContain(REFRESH_FAILED_9X);
    expect(loser.results[0]!.error).toContain("refresh_token_reused");
    // The loser is stuck: 2026.9.6 fences its credential for good; 2026.6/2026.7 keep the spent
    // token, which fails every later refresh the same way. A re-login is the only way back.
    const fenced = (await Promise.all(worlds.map((world) => fencedProfiles(world)))).flat();
    const spent = (await Promise.all(worlds.map((world) => readProfile(world)))).filter(
      (profile) => !profile.refresh.startsWith(FENCE_PREFIX) && !codex.server.refreshLive(profile.refresh),
    );
    expect(fenced.length + spent.length).toBe(1);
    if (host.version === MAIN_HOST) expect(fenced).toEqual([expect.stringMatching(/#openai:default$/)]);
    summary.notes = [fenced.length === 1 ? "loser fenced" : "loser keeps a spent token (no fence on this host)"];
    for (const probe of probes) expect(await hookAttachedIn(worlds[probes.indexOf(probe)]!, probe.run)).toBe(false);
  } finally {
    summary.seconds = (Date.now() - started) / 1000;
    recordScenario(summary);
    await codex.stop();
    await Promise.all(worlds.map((world) => world.cleanup()));
  }
}

async function twoStateDirsWith(host: HostUnderTest, rotations: number, checkStatus: boolean): Promise<void> {
  const started = Date.now();
  const summary = newSummary(host, `with plugin, 2 state dirs x ${rotations} rotation${rotations === 1 ? "" : "s"}`);
  const codex = await startCodexStandIn(tls, STAND_IN_ADDRESS);
  // One OS user, two state dirs: the default per-user guard dir is the same for both.
  const user = await mkdtemp(join(tmpdir(), "rg-e2e-user-"));
  const stateHome = join(user, "xdg-state");
  const worlds = await Promise.all(["guarded-a", "guarded-b"].map((label) => world9x(host, label, { plugin: true, stateHome }))).catch(
    stopAndThrow(codex),
  );
  try {
    const credential = codex.server.expire(codex.server.issue(ACCOUNT));
    for (const world of worlds) await seedStore(world, { [PROFILE]: profileOf(credential) });
    for (let rotation = 1; rotation <= rotations; rotation += 1) {
      if (rotation > 1) await expireEverywhere(codex, worlds);
      const probes = await Promise.all(worlds.map((world) => probe9x(world)));
      note(
        summary,
        codex,
        probes.map((probe) => probe.results[0]!.status),
        probes.map((probe) => probe.run.ms),
      );

      expect(probes.map((probe) => probe.results.map((result) => [result.profile, result.status, result.error]))).toEqual(
        worlds.map(() => [[PROFILE, "ok", undefined]]),
      );
      expect(codex.server.counters).toMatchObject({ requests: rotation, redemptions: rotation, reuses: 0, invalid: 0 });
      expect((await Promise.all(worlds.map((world) => fencedProfiles(world)))).flat()).toEqual([]);
      const profiles = await Promise.all(worlds.map((world) => readProfile(world)));
      expect(new Set(profiles.map((profile) => profile.refresh)).size).toBe(1);
      expect(codex.server.refreshLive(profiles[0]!.refresh)).toBe(true);
      for (const profile of profiles) expect(codex.server.accessValid(profile.access)).toBe(true);
      for (const [index, probe] of probes.entries()) expect(await hookAttachedIn(worlds[index]!, probe.run)).toBe(true);
    }
    expect(codex.modelCalls).toEqual({ ok: 2 * rotations, denied: 0 });
    expect((await stat(join(stateHome, "openclaw-refresh-guard"))).mode & 0o777).toBe(0o700);

    if (checkStatus) {
      const [jsonRun, textRun] = await Promise.all([worlds[0]!.status(true), worlds[1]!.status(false)]);
      const report = parseJsonOutput(jsonRun.stdout) as StatusReport;
      summary.outcomes = { ...report.guard?.outcomes };
      expect(report.host).toMatchObject({ version: host.version, supported: true, hook: "attached", seam: "host-undici" });
      expect(report.host.seams).toContain("host-undici");
      expect(report.guard?.guardDir).toBe(join(stateHome, "openclaw-refresh-guard"));
      expect(report.guard?.providers.map((provider) => provider.id)).toEqual(["openai"]);
      // Both state dirs counted in one guard dir: one redemption per rotation, the other shared.
      expect(report.guard?.outcomes).toMatchObject({ redeemed: rotations, shared: rotations, recovered: 0, failed: 0 });
      expect(report.guard?.locks).toEqual([]);
      expect(textRun.stdout).toContain(`on OpenClaw ${host.version}: hook attached (seam host-undici`);
      summary.notes = [`status ${(jsonRun.ms / 1000).toFixed(1)} s`];
    }
    await expectNoSecretsLeaked(codex, worlds);
  } finally {
    summary.seconds = (Date.now() - started) / 1000;
    recordScenario(summary);
    await codex.stop();
    await Promise.all(worlds.map((world) => world.cleanup()));
    await rm(user, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Two machines (two OS users' guard dirs, no shared disk) holding copies of one expired credential:
// with the plugin but only the file backend each guard dir coordinates its own machine and the
// race is lost; coordinated through one Redis, both stay signed in.

async function twoMachinesRedis(host: HostUnderTest): Promise<void> {
  const started = Date.now();
  const summary = newSummary(host, "with plugin, 2 machines (own guard dirs): file backend, then Redis x 2 rotations");
  const redis = await startRedis();
  const codex = await startCodexStandIn(tls, STAND_IN_ADDRESS);
  const machines = await Promise.all(["machine-a", "machine-b"].map(() => mkdtemp(join(tmpdir(), "rg-e2e-machine-"))));
  const worlds = await Promise.all(
    machines.map((machine, index) => world9x(host, `redis-${index}`, { plugin: true, stateHome: join(machine, "xdg-state") })),
  ).catch(stopAndThrow(codex));
  try {
    // File backend only: each machine's guard dir sees only itself.
    const first = codex.server.expire(codex.server.issue(`${ACCOUNT}-file`));
    for (const world of worlds) await seedStore(world, { [PROFILE]: profileOf(first) });
    const raced = await Promise.all(worlds.map((world) => probe9x(world)));
    expect(codex.server.counters).toMatchObject({ redemptions: 1, reuses: 1 });
    expect(raced.map((probe) => probe.results[0]!.status).filter((status) => status === "ok")).toHaveLength(1);
    expect((await Promise.all(worlds.map((world) => fencedProfiles(world)))).flat()).toHaveLength(1);

    // One Redis shared by both: a fresh login, two rotations.
    for (const world of worlds) await configurePlugin9x(world, { coordination: { backend: "redis", redis: { url: redis.url } } });
    const before = { ...codex.server.counters };
    const credential = codex.server.expire(codex.server.issue(ACCOUNT));
    for (const world of worlds) await seedStore(world, { [PROFILE]: profileOf(credential) });
    for (let rotation = 1; rotation <= 2; rotation += 1) {
      if (rotation > 1) await expireEverywhere(codex, worlds);
      const probes = await Promise.all(worlds.map((world) => probe9x(world)));
      note(
        summary,
        codex,
        probes.map((probe) => probe.results[0]!.status),
        probes.map((probe) => probe.run.ms),
      );
      expect(probes.map((probe) => probe.results.map((result) => [result.profile, result.status, result.error]))).toEqual(
        worlds.map(() => [[PROFILE, "ok", undefined]]),
      );
      expect(codex.server.counters.redemptions - before.redemptions).toBe(rotation);
      expect(codex.server.counters.reuses - before.reuses).toBe(0);
      expect((await Promise.all(worlds.map((world) => fencedProfiles(world)))).flat()).toEqual([]);
      const profiles = await Promise.all(worlds.map((world) => readProfile(world)));
      expect(new Set(profiles.map((profile) => profile.refresh)).size).toBe(1);
      expect(codex.server.refreshLive(profiles[0]!.refresh)).toBe(true);
    }
    summary.notes = ["file backend alone: 1 reuse, 1 fence; through Redis: 1 redemption per rotation, 0 reuses, no fence"];
    await expectNoSecretsLeaked(codex, worlds);
  } finally {
    summary.seconds = (Date.now() - started) / 1000;
    recordScenario(summary);
    await codex.stop();
    await redis.stop();
    await Promise.all(worlds.map((world) => world.cleanup()));
    await Promise.all(machines.map((machine) => rm(machine, { recursive: true, force: true })));
  }
}

// ---------------------------------------------------------------------------------------------
// The Codex CLI rotated the login OpenClaw imported: OpenClaw's copy is spent

interface CodexCase {
  label: string;
  /** The Codex CLI's access token is still valid (else it expired too). */
  accessValid: boolean;
}

const CODEX_CASES: readonly CodexCase[] = [
  { label: "access valid", accessValid: true },
  { label: "access expired", accessValid: false },
];

/** OpenClaw holds a spent token; ~/.codex/auth.json holds its successor. */
async function seedCodexRotated(codex: CodexStandIn, world: HostWorld, codexCase: CodexCase): Promise<Credential> {
  const imported = codex.server.expire(codex.server.issue(ACCOUNT));
  // Expired: the Codex CLI's access token ran out an hour ago (its JWT says so, as a real one would).
  const held = codex.server.redeemOutside(imported.refresh, codexCase.accessValid ? 3600 : -3600)!;
  await seedStore(world, { [PROFILE]: profileOf(imported) });
  await writeCodexAuth(world.homeDir, held);
  return held;
}

async function codexRotated(host: HostUnderTest): Promise<void> {
  for (const codexCase of CODEX_CASES) {
    const started = Date.now();
    const summary = newSummary(host, `Codex CLI rotated first (${codexCase.label}), without then with plugin`);
    const codex = await startCodexStandIn(tls, STAND_IN_ADDRESS);
    const [bare, guarded] = await Promise.all([
      world9x(host, `codex-bare`, { plugin: false }),
      world9x(host, `codex-guarded`, { plugin: true }),
    ]).catch(stopAndThrow(codex));
    try {
      const heldBare = await seedCodexRotated(codex, bare, codexCase);
      const heldGuarded = await seedCodexRotated(codex, guarded, codexCase);
      const base = { ...codex.server.counters };
      // The plugin reads ~/.codex/auth.json of the user running OpenClaw (HOME).
      const [without, withPlugin] = await Promise.all([probe9x(bare, { HOME: bare.homeDir }), probe9x(guarded, { HOME: guarded.homeDir })]);
      note(summary, codex, [without.results[0]!.status, withPlugin.results[0]!.status], [without.run.ms, withPlugin.run.ms]);

      // Without: OpenClaw presents its spent copy, loses, and fences the profile.
      expect(without.results[0]!.status).not.toBe("ok");
      expect(without.results[0]!.error).toContain("refresh_token_reused");
      expect(await fencedProfiles(bare)).toEqual([expect.stringMatching(/#openai:default$/)]);
      // Bare's Codex CLI file is untouched.
      expect((await readCodexAuth(bare.homeDir)).tokens.refresh_token).toBe(heldBare.refresh);

      // With: the reuse is answered with the Codex CLI's credential (adopted, or redeemed once).
      expect(withPlugin.results[0], withPlugin.run.stderr.slice(-4000)).toEqual({ profile: PROFILE, status: "ok" });
      expect(await fencedProfiles(guarded)).toEqual([]);
      const profile = await readProfile(guarded);
      expect(codex.server.accessValid(profile.access)).toBe(true);
      const codexFile = await readCodexAuth(guarded.homeDir);
      const mode = (await stat(codexAuthPath(guarded.homeDir))).mode & 0o777;
      expect(mode).toBe(0o600);
      if (codexCase.accessValid) {
        // Adopted as is: no redemption; both tools hold the same live credential.
        expect(codexFile.tokens.refresh_token).toBe(heldGuarded.refresh);
        expect(profile.refresh).toBe(heldGuarded.refresh);
      } else {
        // Redeemed once by the guard; the successor was written back to the Codex CLI's file.
        expect(codexFile.tokens.refresh_token).not.toBe(heldGuarded.refresh);
        expect(codexFile.tokens.refresh_token).toBe(profile.refresh);
        expect(codexFile.tokens.access_token).toBe(profile.access);
        expect(Date.parse(codexFile.last_refresh)).toBeGreaterThan(started);
        expect(Object.keys(codexFile).sort()).toEqual(["OPENAI_API_KEY", "last_refresh", "tokens"]);
      }
      // Two requests without (both reuse…: bare's 1 reuse) and at most one redemption with.
      const delta = {
        requests: codex.server.counters.requests - base.requests,
        redemptions: codex.server.counters.redemptions - base.redemptions,
      };
      expect(delta.redemptions).toBe(codexCase.accessValid ? 0 : 1);
      // The Codex CLI can go on: the token in its file still redeems.
      expect(codex.server.redeemOutside(codexFile.tokens.refresh_token)).not.toBeNull();
      await expectNoSecretsLeaked(codex, [bare, guarded]);
    } finally {
      summary.seconds = (Date.now() - started) / 1000;
      recordScenario(summary);
      await codex.stop();
      await Promise.all([bare.cleanup(), guarded.cleanup()]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Two profile ids holding one refresh token in one state dir

const PROFILES = [PROFILE, "openai:work"] as const;

async function twoProfileIds(host: HostUnderTest): Promise<void> {
  const started = Date.now();
  const summary = newSummary(host, "2 profile ids, one refresh token, without then with plugin");
  const codex = await startCodexStandIn(tls, STAND_IN_ADDRESS);
  const [bare, guarded] = await Promise.all([
    world9x(host, "ids-bare", { plugin: false }),
    world9x(host, "ids-guarded", { plugin: true }),
  ]).catch(stopAndThrow(codex));
  try {
    for (const world of [bare, guarded]) {
      const profile = profileOf(codex.server.expire(codex.server.issue(ACCOUNT)));
      await seedStore(world, Object.fromEntries(PROFILES.map((id) => [id, profile])));
    }
    const without = await probe9x(bare);
    const afterBare = { ...codex.server.counters };
    const withPlugin = await probe9x(guarded);
    note(
      summary,
      codex,
      [...without.results, ...withPlugin.results].map((result) => `${result.profile}:${result.status}`),
      [without.run.ms, withPlugin.run.ms],
    );

    expect(without.results).toHaveLength(2);
    expect(afterBare).toMatchObject({ requests: 2, redemptions: 1, reuses: 1 });
    // The probe itself may still pass on the winner's in-memory credential (measured: both "ok"),
    // but the loser's stored profile is fenced for good.
    expect(await fencedProfiles(bare)).toHaveLength(1);

    expect(withPlugin.results.map((result) => [result.profile, result.status]).sort()).toEqual(PROFILES.map((id) => [id, "ok"]).sort());
    expect(codex.server.counters.requests - afterBare.requests).toBe(1);
    expect(codex.server.counters.redemptions - afterBare.redemptions).toBe(1);
    expect(codex.server.counters.reuses).toBe(afterBare.reuses);
    expect(await fencedProfiles(guarded)).toEqual([]);
    await expectNoSecretsLeaked(codex, [bare, guarded]);
  } finally {
    summary.seconds = (Date.now() - started) / 1000;
    recordScenario(summary);
    await codex.stop();
    await Promise.all([bare.cleanup(), guarded.cleanup()]);
  }
}

// ---------------------------------------------------------------------------------------------

describe(`openclaw ${MAIN_HOST}`, () => {
  let h: HostUnderTest;
  beforeAll(async () => {
    h = await hosts.get(MAIN_HOST)!;
  }, 15 * MINUTE);

  it(
    "without refresh-guard, two state dirs holding one expired credential race: one refresh_token_reused, one fenced profile",
    async () => {
      await twoStateDirsWithout(h);
    },
    5 * MINUTE,
  );

  it(
    "with refresh-guard, two state dirs stay signed in over 2 rotations, one redemption each; status names the host-undici seam and shows no token",
    async () => {
      await twoStateDirsWith(h, 2, true);
    },
    8 * MINUTE,
  );

  it(
    "on two machines with their own guard dirs the file backend alone loses the race (a fence); coordinated through Redis both stay signed in, one redemption per rotation",
    async () => {
      await twoMachinesRedis(h);
    },
    10 * MINUTE,
  );

  it(
    "a login the Codex CLI already rotated: fenced without refresh-guard; with it, ok and the Codex CLI's file still redeems",
    async () => {
      await codexRotated(h);
    },
    8 * MINUTE,
  );

  it(
    "loads in a running `openclaw gateway` (activation on startup) and attaches the host-undici seam there",
    async () => {
      const started = Date.now();
      const summary = newSummary(h, "gateway: plugin loaded, host-undici seam attached");
      const world = await world9x(h, "gateway", { plugin: true });
      try {
        const gateway = await startGateway(world);
        try {
          const plain = () => gateway.output().replace(ANSI_COLOUR, "");
          expect(plain()).toMatch(/http server listening \([^)]*\brefresh-guard\b/);
          // The observer in the gateway process reports every second; wait for one after "ready".
          const deadline = Date.now() + 15_000;
          let report = await world
            .fetchReport({ args: ["gateway"], pid: gateway.pid, code: null, signal: null, timedOut: false, stdout: "", stderr: "", ms: 0 })
            .catch(() => null);
          while ((report === null || report.hostUndiciAttached !== true) && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 500));
            report = await world
              .fetchReport({
                args: ["gateway"],
                pid: gateway.pid,
                code: null,
                signal: null,
                timedOut: false,
                stdout: "",
                stderr: "",
                ms: 0,
              })
              .catch(() => null);
          }
          expect(report, `${JSON.stringify(report)}\n${plain().slice(-4000)}`).toMatchObject({
            hostUndiciLoaded: true,
            hostUndiciAttached: true,
            hookAttached: true,
          });
          expect(plain()).not.toContain("event=not_attached");
          summary.notes = [`gateway ready in ${((Date.now() - started) / 1000).toFixed(1)} s incl. install`];
        } finally {
          await gateway.stop();
        }
      } finally {
        summary.seconds = (Date.now() - started) / 1000;
        recordScenario(summary);
        await world.cleanup();
      }
    },
    5 * MINUTE,
  );

  it(
    "two profile ids holding one refresh token: a reuse and a fence without refresh-guard; one redemption with it",
    async () => {
      await twoProfileIds(h);
    },
    5 * MINUTE,
  );
});

for (const version of COMPAT_HOSTS) {
  describe(`openclaw ${version}`, () => {
    let h: HostUnderTest;
    beforeAll(async () => {
      h = await hosts.get(version)!;
    }, 15 * MINUTE);

    it(
      "two state dirs race without refresh-guard and are cured with it (seam host-undici)",
      async () => {
        await twoStateDirsWithout(h);
        await twoStateDirsWith(h, 1, true);
      },
      8 * MINUTE,
    );
  });
}
