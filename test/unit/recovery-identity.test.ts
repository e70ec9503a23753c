// Issue 13, case 1: recovery never switches identity. Two users of one team workspace share one
// ChatGPT account id. User A's agent store holds A's refresh token, which was spent outside the
// guard; a sibling store (the Codex CLI file, or another agent's store) holds user B's login in
// the same account. Through the real plugin runtime (config parser, GuardRuntime, RefreshGuard,
// recovery, the real sibling sources reading real files) and the stand-in endpoint over HTTP.
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { parseConfig } from "../../src/config/parse-config.ts";
import { GuardRuntime } from "../../src/plugin/guard-runtime.ts";
import { type Credential, type StandInEndpoint, startStandIn } from "../support/token-endpoint-server.ts";

const ACCOUNT = "acct-team-workspace";
const LOGIN = "openclaw models auth login --provider openai-codex";

let root: string;
let stateDir: string;
let codexFile: string;
let server: StandInEndpoint;
let lines: { level: string; line: string }[];

beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-identity-"));
  stateDir = join(root, "state");
  codexFile = join(root, "home", ".codex", "auth.json");
  lines = [];
  server = await startStandIn();
});

afterEach(async () => {
  const text = JSON.stringify(lines);
  const leaked = server.issuedSecrets().filter((secret) => text.includes(secret));
  await server.stop();
  await fsp.rm(root, { recursive: true, force: true });
  expect(leaked.length, "log lines contain issued tokens").toBe(0);
});

async function writeAgentStore(
  agent: string,
  credential: Credential,
  declared: { accountId?: string; email?: string } = {},
): Promise<void> {
  const dir = join(stateDir, "agents", agent, "agent");
  await fsp.mkdir(dir, { recursive: true });
  const profile: Record<string, unknown> = {
    type: "oauth",
    provider: "openai-codex",
    access: credential.access,
    refresh: credential.refresh,
    expires: credential.expires,
    accountId: declared.accountId ?? credential.accountId,
  };
  if (declared.email !== undefined) profile.email = declared.email;
  await fsp.writeFile(join(dir, "auth-profiles.json"), JSON.stringify({ version: 1, profiles: { "openai-codex:default": profile } }));
}

async function writeCodexFile(tokens: {
  access_token: string;
  refresh_token: string;
  id_token?: string;
  account_id: string;
}): Promise<void> {
  await fsp.mkdir(join(codexFile, ".."), { recursive: true });
  await fsp.writeFile(codexFile, JSON.stringify({ OPENAI_API_KEY: null, tokens, last_refresh: new Date().toISOString() }));
}

function codexTokens(credential: Credential) {
  return {
    access_token: credential.access,
    refresh_token: credential.refresh,
    id_token: credential.idToken,
    account_id: credential.accountId,
  };
}

/** The host's refresh of `refreshToken`, through the plugin runtime exactly as the fetch hook calls it. */
async function hostRefresh(refreshToken: string): Promise<Response> {
  const config = parseConfig(
    { providers: { "openai-codex": { enabled: true, tokenUrl: server.url } }, codexAuthFile: codexFile, guardDir: join(root, "guard") },
    { home: join(root, "home") },
  );
  const log = (level: string) => (line: string) => lines.push({ level, line });
  const runtime = new GuardRuntime(config, {
    logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
    stateDir,
  });
  const guard = runtime.routes().get(server.url);
  if (guard === undefined) throw new Error("no route for the stand-in's token URL");
  return guard.refresh(
    refreshToken,
    (token, signal) =>
      fetch(server.url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: token, client_id: "app_test" }).toString(),
        signal,
      }),
    {},
  );
}

/** A's refresh token, spent outside the guard (a process without the plugin); its successor is lost. */
function spentOutside(credential: Credential): void {
  expect(server.redeemOutside(credential.refresh)).not.toBeNull();
}

async function expectReloginNoAdoption(response: Response, other: Credential): Promise<void> {
  const body = await response.text();
  expect(response.status).toBe(401);
  expect(JSON.parse(body).error.code).toBe("refresh_token_reused");
  // B's login was neither handed out nor spent.
  expect(body).not.toContain(other.access);
  expect(body).not.toContain(other.refresh);
  expect(server.refreshLive(other.refresh)).toBe(true);
  expect(lines.some(({ line }) => line.includes("event=recovered"))).toBe(false);
  const failure = lines.find(({ line }) => line.includes("reason=relogin_required"));
  expect(failure?.level).toBe("error");
  expect(failure?.line).toContain(LOGIN);
}

describe("recovery with two users of one workspace (same account id)", () => {
  it("does not hand user A the Codex CLI file's login of user B: original 401 and relogin_required", async () => {
    const alice = server.issue(ACCOUNT, 3600, { user: "user-alice", email: "alice@team.test" });
    const bob = server.issue(ACCOUNT, 3600, { user: "user-bob", email: "bob@team.test" });
    await writeAgentStore("main", alice);
    await writeCodexFile(codexTokens(bob));
    spentOutside(alice);

    await expectReloginNoAdoption(await hostRefresh(alice.refresh), bob);
  });

  it("does not hand user A another agent store's login of user B, even with a stale access token to redeem", async () => {
    const alice = server.issue(ACCOUNT, 3600, { user: "user-alice", email: "alice@team.test" });
    const bob = server.expire(server.issue(ACCOUNT, 3600, { user: "user-bob", email: "bob@team.test" }));
    await writeAgentStore("main", alice);
    await writeAgentStore("helper", bob);
    spentOutside(alice);

    await expectReloginNoAdoption(await hostRefresh(alice.refresh), bob);
    expect(server.counters.redemptions).toBe(1);
  });

  it("adopts nothing when a sibling's tokens say nothing of the user (opaque tokens, only the file's account_id)", async () => {
    const alice = server.issue(ACCOUNT, 3600, { user: "user-alice", email: "alice@team.test" });
    const bob = server.issue(ACCOUNT, 3600, { user: "user-bob", email: "bob@team.test" });
    await writeAgentStore("main", alice);
    // The Codex file claims A's account but its tokens are not JWTs: whose login it is cannot be told.
    await writeCodexFile({ access_token: bob.access.split(".")[2]!, refresh_token: bob.refresh, account_id: ACCOUNT });
    spentOutside(alice);

    await expectReloginNoAdoption(await hostRefresh(alice.refresh), bob);
  });

  it("refuses a sibling whose store declares another account than its tokens (a contradiction)", async () => {
    const alice = server.issue(ACCOUNT, 3600, { user: "user-alice", email: "alice@team.test" });
    const aliceElsewhere = server.issue("acct-other", 3600, { user: "user-alice", email: "alice@team.test" });
    await writeAgentStore("main", alice);
    // The store says "A's account", the tokens say another account.
    await writeAgentStore("helper", aliceElsewhere, { accountId: ACCOUNT });
    spentOutside(alice);

    await expectReloginNoAdoption(await hostRefresh(alice.refresh), aliceElsewhere);
  });

  it("still adopts the same user's newer login from the Codex CLI file (control: identity established)", async () => {
    const alice = server.issue(ACCOUNT, 3600, { user: "user-alice", email: "alice@team.test" });
    const bob = server.issue(ACCOUNT, 3600, { user: "user-bob", email: "bob@team.test" });
    await writeAgentStore("main", alice);
    await writeAgentStore("helper", bob);
    // The Codex CLI redeemed A's token itself and holds the successor.
    const successor = server.redeemOutside(alice.refresh)!;
    await writeCodexFile(codexTokens(successor));

    const response = await hostRefresh(alice.refresh);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { access_token: string; refresh_token: string };
    // Compared as booleans so a failure prints no token.
    expect(body.access_token === successor.access, "got the successor's access token").toBe(true);
    expect(body.refresh_token === successor.refresh, "got the successor's refresh token").toBe(true);
    expect(lines.some(({ line }) => line.includes("event=recovered"))).toBe(true);
    expect(server.refreshLive(bob.refresh)).toBe(true);
  });
});
