// OpenClaw 2026.9.6 and the Codex CLI sharing one ChatGPT login (2026.6+ import the Codex CLI's
// login), on a real host's token path, in both orders:
// - OpenClaw rotates first, twice: without refresh-guard the Codex CLI is left holding a spent
//   token (its next refresh: refresh_token_reused, logged out); with it, every rotation is written
//   to ~/.codex/auth.json in the redemption's critical section and the Codex CLI's refresh succeeds.
// - The Codex CLI rotates first: without refresh-guard OpenClaw is fenced; with it OpenClaw adopts
//   the Codex CLI's credential, rotates it later, and the Codex CLI's next refresh still succeeds.
// The Codex CLI is a stand-in: it refreshes whatever its auth.json holds, as the real one does.
//
// Own stand-in address 198.18.0.4:443 (run under `flock /tmp/rg-198.18.0.4-443.lock`), so it can
// run beside hosts-9x.test.ts (198.18.0.1) and hosts.test.ts (127.0.0.1).
import { stat } from "node:fs/promises";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

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
  startCodexStandIn,
} from "./harness.ts";
import {
  codexAuthPath,
  configurePlugin9x,
  ensureLoopbackAddress,
  fencedProfiles,
  INSTALL_FLAGS_9X,
  initState,
  PROFILE,
  prepareStoreLayout,
  probe9x,
  profileOf,
  readCodexAuth,
  readProfile,
  removeStoreTemplates,
  seedStore,
  use9xNetwork,
  writeCodexAuth,
} from "./harness-9x.ts";

const ADDRESS = "198.18.0.4";
const HOST = "2026.9.6";
const ACCOUNT = "acct_codex_coexist";
const MINUTE = 60_000;

let tls: TestTls;
let plugin: PackedPlugin;
let host: HostUnderTest;

beforeAll(async () => {
  ensureLoopbackAddress(ADDRESS);
  tls = createTestTls();
  const pending = hostUnderTest(HOST, INSTALL_FLAGS_9X);
  plugin = await packPlugin();
  host = await pending;
  const layoutWorld = await HostWorld.create(host, tls, "layout");
  use9xNetwork(layoutWorld, { address: ADDRESS });
  try {
    await prepareStoreLayout(layoutWorld);
  } finally {
    await layoutWorld.cleanup();
  }
}, 15 * MINUTE);

afterAll(async () => {
  await plugin?.cleanup();
  await removeStoreTemplates();
  tls?.cleanup();
});

async function world(label: string, withPlugin: boolean): Promise<HostWorld> {
  const created = await HostWorld.create(host, tls, label);
  use9xNetwork(created, { address: ADDRESS });
  if (withPlugin) {
    const install = await created.installPlugin(plugin.tgz);
    expect(install.stdout).toContain(PLUGIN_ID);
    await configurePlugin9x(created);
  } else {
    await initState(created);
  }
  return created;
}

/** The Codex CLI (stand-in) refreshes the token its auth.json holds: true if the endpoint honours it. */
async function codexCliRefreshes(codex: CodexStandIn, home: string): Promise<boolean> {
  const file = await readCodexAuth(home);
  return codex.server.redeemOutside(file.tokens.refresh_token) !== null;
}

/** OpenClaw's stored access token runs out (the stand-in forgets it too). */
async function expireOpenClaw(codex: CodexStandIn, target: HostWorld): Promise<void> {
  const profile = await readProfile(target, PROFILE);
  codex.server.expire({ access: profile.access, expires: profile.expires });
  await seedStore(target, { [PROFILE]: { ...profile, expires: Date.now() - MINUTE } });
}

function probe(target: HostWorld) {
  // The plugin finds the Codex CLI's file in the HOME of the user running OpenClaw.
  return probe9x(target, { HOME: target.homeDir });
}

async function noSecrets(codex: CodexStandIn, worlds: readonly HostWorld[]): Promise<void> {
  const secrets = codex.server.issuedSecrets();
  for (const each of worlds) {
    expect(leakedSecrets(each.runs, secrets)).toEqual([]);
    expect(await each.filesContaining(each.guardDir, secrets)).toEqual([]);
  }
}

describe(`openclaw ${HOST} and the Codex CLI sharing one login`, () => {
  it(
    "OpenClaw rotates twice: without refresh-guard the Codex CLI is logged out (reuse); with it the Codex CLI's next refresh succeeds",
    async () => {
      const codex = await startCodexStandIn(tls, ADDRESS);
      const worlds: HostWorld[] = [];
      try {
        const [bare, guarded] = await Promise.all([world("coexist-bare", false), world("coexist-guarded", true)]);
        worlds.push(bare, guarded);
        for (const target of worlds) {
          const login = codex.server.expire(codex.server.issue(ACCOUNT));
          await seedStore(target, { [PROFILE]: profileOf(login) });
          await writeCodexAuth(target.homeDir, login);
        }

        // Without: OpenClaw rotates; the Codex CLI's file still holds the spent token.
        const without = await probe(bare);
        expect(without.results[0]?.status).toBe("ok");
        const reusesBefore = codex.server.counters.reuses;
        expect(await codexCliRefreshes(codex, bare.homeDir)).toBe(false);
        expect(codex.server.counters.reuses).toBe(reusesBefore + 1);

        // With: two rotations, each written to the Codex CLI's file.
        const mode = (await stat(codexAuthPath(guarded.homeDir))).mode & 0o777;
        for (let rotation = 1; rotation <= 2; rotation += 1) {
          if (rotation > 1) await expireOpenClaw(codex, guarded);
          const run = await probe(guarded);
          expect(run.results[0], run.run.stderr.slice(-4000)).toEqual({ profile: PROFILE, status: "ok" });
          const profile = await readProfile(guarded);
          const file = await readCodexAuth(guarded.homeDir);
          expect(file.tokens.refresh_token).toBe(profile.refresh);
          expect(codex.server.refreshLive(file.tokens.refresh_token)).toBe(true);
        }
        expect((await stat(codexAuthPath(guarded.homeDir))).mode & 0o777).toBe(mode);
        const reuses = codex.server.counters.reuses;
        expect(await codexCliRefreshes(codex, guarded.homeDir)).toBe(true);
        expect(codex.server.counters.reuses).toBe(reuses);
        expect(await fencedProfiles(guarded)).toEqual([]);
        await noSecrets(codex, worlds);
      } finally {
        await codex.stop();
        await Promise.all(worlds.map((each) => each.cleanup()));
      }
    },
    15 * MINUTE,
  );

  it(
    "the Codex CLI rotates first: without refresh-guard OpenClaw is fenced; with it OpenClaw adopts, rotates later, and the Codex CLI's next refresh still succeeds",
    async () => {
      const codex = await startCodexStandIn(tls, ADDRESS);
      const worlds: HostWorld[] = [];
      try {
        const [bare, guarded] = await Promise.all([world("codex-first-bare", false), world("codex-first-guarded", true)]);
        worlds.push(bare, guarded);
        const held = new Map<HostWorld, Credential>();
        for (const target of worlds) {
          const login = codex.server.expire(codex.server.issue(ACCOUNT));
          await seedStore(target, { [PROFILE]: profileOf(login) });
          // The Codex CLI rotated the shared login; its access token is still valid.
          const rotated = codex.server.redeemOutside(login.refresh, 3600)!;
          await writeCodexAuth(target.homeDir, rotated);
          held.set(target, rotated);
        }

        const without = await probe(bare);
        expect(without.results[0]?.status).not.toBe("ok");
        expect(without.results[0]?.error).toContain("refresh_token_reused");
        expect(await fencedProfiles(bare)).toEqual([expect.stringMatching(/#openai:default$/)]);

        const adopted = await probe(guarded);
        expect(adopted.results[0], adopted.run.stderr.slice(-4000)).toEqual({ profile: PROFILE, status: "ok" });
        expect((await readProfile(guarded)).refresh).toBe(held.get(guarded)!.refresh);
        // Later OpenClaw's copy runs out and it rotates the adopted login through the guard.
        await expireOpenClaw(codex, guarded);
        const rotated = await probe(guarded);
        expect(rotated.results[0], rotated.run.stderr.slice(-4000)).toEqual({ profile: PROFILE, status: "ok" });
        const profile = await readProfile(guarded);
        const file = await readCodexAuth(guarded.homeDir);
        expect(profile.refresh).not.toBe(held.get(guarded)!.refresh);
        expect(file.tokens.refresh_token).toBe(profile.refresh);
        const reuses = codex.server.counters.reuses;
        expect(await codexCliRefreshes(codex, guarded.homeDir)).toBe(true);
        expect(codex.server.counters.reuses).toBe(reuses);
        expect(await fencedProfiles(guarded)).toEqual([]);
        await noSecrets(codex, worlds);
      } finally {
        await codex.stop();
        await Promise.all(worlds.map((each) => each.cleanup()));
      }
    },
    15 * MINUTE,
  );
});
