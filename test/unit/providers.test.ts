// Each provider's facts, checked where they act: which POSTs the interceptor hands to the guard
// (xAI's discovered endpoint by pattern, Anthropic's two URLs, OpenAI's one), how the guard reads a
// spent answer (401 refresh_token_reused vs 400 invalid_grant) and replays it, that recovery only
// reports where the provider revokes the whole family, and whose tokens they are.
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { parseConfig } from "../../src/config/parse-config.ts";
import type { GuardEvent, Redeem, RefreshGuard } from "../../src/core/refresh-guard.ts";
import { compileUrlPattern, installFetchInterceptor, type TokenGuard } from "../../src/hosts/global-fetch.ts";
import { anthropic } from "../../src/providers/anthropic.ts";
import { openai } from "../../src/providers/openai.ts";
import type { Provider } from "../../src/providers/provider.ts";
import { PROVIDERS, providerById } from "../../src/providers/registry.ts";
import { xai, xaiIdentity } from "../../src/providers/xai.ts";
import { staticSiblingSource } from "../../src/siblings/sibling-source.ts";
import { openFileGuard } from "../support/file-guard.ts";
import {
  ANTHROPIC_INVALID_BODY,
  type Dialect,
  type StandInEndpoint,
  startStandIn,
  XAI_REVOKED_BODY,
} from "../support/token-endpoint-server.ts";

type Fetch = typeof globalThis.fetch;

let root: string;
let events: GuardEvent[];
let servers: StandInEndpoint[];

beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-providers-"));
  events = [];
  servers = [];
});

afterEach(async () => {
  const text = JSON.stringify(events);
  const leaked = servers.flatMap((server) => server.issuedSecrets()).filter((secret) => text.includes(secret));
  for (const server of servers) await server.stop();
  await fsp.rm(root, { recursive: true, force: true });
  expect(leaked, "events contain issued tokens").toEqual([]);
});

/** The interceptor on a fake host with `provider`'s routes; records what reached the guard and what passed through. */
function interceptFor(provider: Provider): { fetch: Fetch; guarded: string[]; passed: string[] } {
  const guarded: string[] = [];
  const passed: string[] = [];
  const host = {
    fetch: (async (input: unknown) => {
      passed.push(String(input));
      return new Response("{}", { status: 200 });
    }) as Fetch,
  };
  const guard: TokenGuard = {
    async refresh(_token, _redeem) {
      guarded.push("refresh");
      return new Response("{}", { status: 200 });
    },
  };
  const routes = new Map<string, TokenGuard>([[provider.tokenUrl, guard]]);
  for (const url of provider.alsoTokenUrls) routes.set(url, guard);
  installFetchInterceptor(routes, host);
  return {
    fetch: host.fetch,
    guarded,
    passed,
  };
}

const FORM = { "content-type": "application/x-www-form-urlencoded" };
const JSON_TYPE = { "content-type": "application/json" };

function form(fields: Record<string, string>): RequestInit {
  return { method: "POST", headers: FORM, body: new URLSearchParams(fields).toString() };
}

describe("token URL matching", () => {
  it("patterns: *.host needs one more label, /* covers the prefix and below, scheme and host exact", () => {
    const any = compileUrlPattern("https://*.x.ai/*");
    expect(any(new URL("https://auth.x.ai/oauth2/token"))).toBe(true);
    expect(any(new URL("https://a.b.x.ai/"))).toBe(true);
    expect(any(new URL("https://AUTH.X.AI/oauth/token?x=1"))).toBe(true);
    expect(any(new URL("https://x.ai/oauth2/token"))).toBe(false);
    expect(any(new URL("https://evilx.ai/oauth2/token"))).toBe(false);
    expect(any(new URL("https://auth.x.ai.evil.test/oauth2/token"))).toBe(false);
    expect(any(new URL("http://auth.x.ai/oauth2/token"))).toBe(false);
    expect(any(new URL("https://auth.x.ai:8443/oauth2/token"))).toBe(false);
    const prefix = compileUrlPattern("https://auth.example.test/oauth/*");
    expect(prefix(new URL("https://auth.example.test/oauth"))).toBe(true);
    expect(prefix(new URL("https://auth.example.test/oauth/token"))).toBe(true);
    expect(prefix(new URL("https://auth.example.test/oauthx"))).toBe(false);
    expect(() => compileUrlPattern("*.x.ai")).toThrow(/not a URL pattern/);
  });

  it("xAI: the refresh POST is guarded wherever discovery points on x.ai; discovery GET, device-code POST and other hosts pass through", async () => {
    const { fetch, guarded, passed } = interceptFor(xai);
    const refresh = { grant_type: "refresh_token", refresh_token: "rt_1", client_id: "b1a00492-073a-47ea-816f-4c329264a828" };
    await fetch("https://auth.x.ai/oauth2/token", form(refresh));
    await fetch("https://auth.x.ai/oauth/token", form(refresh));
    await fetch("https://accounts.x.ai/v2/token", form(refresh));
    expect(guarded).toHaveLength(3);
    await fetch("https://auth.x.ai/.well-known/openid-configuration", { method: "GET" });
    await fetch("https://auth.x.ai/oauth2/token", form({ grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: "d" }));
    await fetch("https://auth.x.ai.evil.test/oauth2/token", form(refresh));
    await fetch("https://api.x.ai/v1/responses", { method: "POST", headers: JSON_TYPE, body: "{}" });
    expect(guarded).toHaveLength(3);
    expect(passed).toEqual([
      "https://auth.x.ai/.well-known/openid-configuration",
      "https://auth.x.ai/oauth2/token",
      "https://auth.x.ai.evil.test/oauth2/token",
      "https://api.x.ai/v1/responses",
    ]);
  });

  it("Anthropic: JSON refresh bodies to platform.claude.com and console.anthropic.com are guarded, nothing else", async () => {
    const { fetch, guarded, passed } = interceptFor(anthropic);
    const body = JSON.stringify({ grant_type: "refresh_token", client_id: "c", refresh_token: "sk-ant-ort01-x" });
    await fetch("https://platform.claude.com/v1/oauth/token", { method: "POST", headers: JSON_TYPE, body });
    await fetch("https://console.anthropic.com/v1/oauth/token", { method: "POST", headers: JSON_TYPE, body });
    expect(guarded).toHaveLength(2);
    const code = JSON.stringify({ grant_type: "authorization_code", client_id: "c", code: "x" });
    await fetch("https://platform.claude.com/v1/oauth/token", { method: "POST", headers: JSON_TYPE, body: code });
    await fetch("https://api.anthropic.com/v1/messages", { method: "POST", headers: JSON_TYPE, body });
    await fetch("https://platform.claude.com/v1/oauth/other", { method: "POST", headers: JSON_TYPE, body });
    expect(guarded).toHaveLength(2);
    expect(passed).toHaveLength(3);
  });

  it("OpenAI keeps its one exact URL", async () => {
    const { fetch, guarded } = interceptFor(openai);
    const refresh = { grant_type: "refresh_token", refresh_token: "rt_1" };
    await fetch("https://auth.openai.com/oauth/token", form(refresh));
    await fetch("https://auth.openai.com/oauth/token2", form(refresh));
    await fetch("https://other.openai.com/oauth/token", form(refresh));
    expect(guarded).toHaveLength(1);
  });
});

describe("the registry and the config", () => {
  it("one line per provider; providers.xai and providers.anthropic enable them with their default endpoints", () => {
    expect(PROVIDERS.map((provider) => provider.id)).toEqual(["openai-codex", "xai", "anthropic"]);
    expect(providerById("xai")).toBe(xai);
    expect(providerById("anthropic")).toBe(anthropic);
    const config = parseConfig(
      { providers: { "openai-codex": {}, xai: { enabled: true }, anthropic: { enabled: true } } },
      { stateDir: root, home: root, env: {} },
    );
    expect(config.providers).toEqual([
      { id: "openai-codex", tokenUrl: "https://auth.openai.com/oauth/token" },
      { id: "xai", tokenUrl: "https://auth.x.ai/oauth2/token" },
      { id: "anthropic", tokenUrl: "https://platform.claude.com/v1/oauth/token" },
    ]);
    const off = parseConfig(
      { providers: { xai: { enabled: false }, anthropic: { enabled: false } } },
      { stateDir: root, home: root, env: {} },
    );
    expect(off.providers).toEqual([]);
  });

  it("spent answers and recoverability, per provider", () => {
    expect([openai, xai, anthropic].map((p) => [p.id, p.spentStatus, p.spentCodes, p.reuseRecoverable])).toEqual([
      ["openai-codex", 401, ["refresh_token_reused", "refresh_token_invalidated", "refresh_token_expired"], true],
      ["xai", 400, ["invalid_grant"], false],
      ["anthropic", 400, ["invalid_grant"], false],
    ]);
  });
});

async function standIn(dialect: Dialect): Promise<StandInEndpoint> {
  const server = await startStandIn({ dialect });
  servers.push(server);
  return server;
}

/** The host's request for each provider: xAI a form body, Anthropic a JSON body. */
function redeemAt(server: StandInEndpoint): Redeem {
  return (refreshToken, signal) =>
    server.dialect === "anthropic"
      ? fetch(server.url, {
          method: "POST",
          headers: JSON_TYPE,
          body: JSON.stringify({ grant_type: "refresh_token", client_id: "c", refresh_token: refreshToken }),
          signal,
        })
      : fetch(server.url, {
          method: "POST",
          headers: FORM,
          body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken }),
          signal,
        });
}

function openGuard(provider: string, siblings: ReturnType<typeof staticSiblingSource>[] = []): Promise<RefreshGuard> {
  return openFileGuard({
    provider,
    guardDir: join(root, "guard"),
    onEvent: (event) => events.push(event),
    siblingSources: siblings,
    timing: { reuseGraceMs: 50 },
  });
}

describe.each([
  ["xai", "xai" as const, XAI_REVOKED_BODY],
  ["anthropic", "anthropic" as const, ANTHROPIC_INVALID_BODY],
])("%s through the guard", (provider, dialect, spentBody) => {
  it("two processes refreshing one token at once redeem it once and share the successor", async () => {
    const server = await standIn(dialect);
    const login = server.issue("acct-1");
    const [a, b] = await Promise.all([openGuard(provider), openGuard(provider)]);
    const answers = await Promise.all([a.refresh(login.refresh, redeemAt(server)), b.refresh(login.refresh, redeemAt(server))]);
    const bodies = (await Promise.all(answers.map((answer) => answer.json()))) as { refresh_token: string }[];
    expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
    expect(bodies[0]!.refresh_token).toBe(bodies[1]!.refresh_token);
    expect(server.counters).toMatchObject({ redemptions: 1, reuses: 0, invalid: 0 });
    expect(server.refreshLive(bodies[0]!.refresh_token)).toBe(true);
  });

  it("a token spent outside: the 400 invalid_grant is detected, recovery adopts no sibling, and the marker replays the same answer", async () => {
    const server = await standIn(dialect);
    const login = server.issue("acct-1", 3600, { user: "user-1", email: "u1@example.test" });
    server.redeemOutside(login.refresh);
    // A same-identity sibling with a live-looking token: the family is revoked, so it must not be adopted.
    const sibling = server.issue("acct-1", 3600, { user: "user-1", email: "u1@example.test" });
    const source = staticSiblingSource("other store", () => [
      {
        source: "other store",
        accountId: "user-1",
        accessToken: sibling.access,
        refreshToken: sibling.refresh,
        idToken: sibling.idToken,
        expiresAt: sibling.expires,
      },
    ]);
    const guard = await openGuard(provider, [source]);
    const first = await guard.refresh(login.refresh, redeemAt(server));
    expect(first.status).toBe(400);
    expect(await first.text()).toBe(spentBody);
    expect(server.familyRevoked(login.refresh)).toBe(true);
    const failed = events.filter((event) => event.type === "failed");
    expect(failed).toHaveLength(1);
    expect(JSON.stringify(failed[0])).toContain("relogin_required");
    expect(JSON.stringify(failed[0])).toContain("revokes every token of a login");
    expect(JSON.stringify(failed[0])).toContain(`openclaw models auth login --provider ${provider}`);
    expect(events.filter((event) => event.type === "recovered")).toEqual([]);
    expect(server.counters.requests).toBe(1);
    // The next caller gets the same 400 from the spent marker, with no request.
    const again = await guard.refresh(login.refresh, redeemAt(server));
    expect(again.status).toBe(400);
    expect(await again.text()).toBe(spentBody);
    expect(server.counters.requests).toBe(1);
    // The sibling was never touched.
    expect(server.refreshLive(sibling.refresh)).toBe(true);
  });

  it("an answer that does not rotate (no refresh_token) passes through unjournaled, so the same token is sent again next time", async () => {
    const server = await standIn(dialect);
    const login = server.issue("acct-1");
    server.inject("no-refresh-token");
    const guard = await openGuard(provider);
    const answer = await guard.refresh(login.refresh, redeemAt(server));
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { refresh_token?: string }).refresh_token).toBeUndefined();
    const next = await guard.refresh(login.refresh, redeemAt(server));
    expect(next.status).toBe(200);
    expect(server.counters).toMatchObject({ requests: 2, redemptions: 1, faults: 1 });
  });
});

describe("identity", () => {
  it("xAI: sub and email from its JWTs; Anthropic: opaque tokens say nothing", async () => {
    const xaiServer = await standIn("xai");
    const login = xaiServer.issue("x", 3600, { user: "sub-42", email: "Grok@Example.test" });
    expect(xaiIdentity(login.access)).toEqual({ accountId: "sub-42", userId: "sub-42", email: "grok@example.test" });
    expect(xaiIdentity(login.idToken)).toEqual({ accountId: "sub-42", userId: "sub-42", email: "grok@example.test" });
    expect(xaiIdentity("not-a-jwt")).toEqual({});
    const anthropicServer = await standIn("anthropic");
    const claude = anthropicServer.issue("a");
    expect(claude.access.startsWith("sk-ant-oat01-")).toBe(true);
    expect(anthropic.identityOf(claude.access)).toEqual({});
  });
});
