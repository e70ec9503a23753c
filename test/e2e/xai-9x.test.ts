// exploration draft
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { createTestTls, type TestTls } from "../support/tls.ts";
import { HostWorld, hostUnderTest, type HostUnderTest, type OAuthProfile } from "./harness.ts";
import { ensureLoopbackAddress, INSTALL_FLAGS_9X, initState, readStores, seedSharedStore } from "./harness-9x.ts";
import { startConnectProxy, type ConnectProxy } from "../support/connect-proxy.ts";
import { startProviderStandIn } from "./provider-stand-ins.ts";

const ADDRESS = "198.18.0.3";
const MINUTE = 60_000;
const XAI_HOSTS = ["auth.x.ai", "api.x.ai", "cli-chat-proxy.grok.com"];
let tls: TestTls;
let host: HostUnderTest;
let proxy: ConnectProxy;

beforeAll(async () => {
  ensureLoopbackAddress(ADDRESS);
  tls = createTestTls({ hosts: XAI_HOSTS });
  proxy = await startConnectProxy({ hosts: XAI_HOSTS, target: ADDRESS });
  host = await hostUnderTest("2026.9.6", INSTALL_FLAGS_9X);
}, 5 * MINUTE);
afterAll(async () => {
  await proxy?.stop();
  tls?.cleanup();
});

describe("explore", () => {
  it("probe xai", async () => {
    const xai = await startProviderStandIn("xai", tls, ADDRESS);
    const world = await HostWorld.create(host, tls, "xai-explore", ADDRESS);
    world.extraEnv.RG_DNS_HOSTS = XAI_HOSTS.join(",");
    if (process.env.RG_X_PROXY === "1") world.extraEnv.HTTPS_PROXY = proxy.url;
    await initState(world);
    const set = await world.cli(["config", "set", "agents.defaults.model.primary", "xai/grok-4.7"]);
    console.log("set", set.code, set.stderr.slice(-500));
    const login = xai.server.issue("xai-user-1", 3600, { user: "xai-user-1", email: "grok@example.test" });
    const expired = xai.server.expire(login);
    const profile: OAuthProfile = {
      type: "oauth",
      provider: "xai",
      access: expired.access,
      refresh: login.refresh,
      expires: expired.expires,
      email: login.email,
      accountId: login.userId,
      idToken: login.idToken,
      tokenEndpoint: "https://auth.x.ai/oauth2/token",
      issuer: "https://auth.x.ai",
    };
    seedSharedStore(world, { "xai:default": profile });
    const run = await world.cli(["models", "status", "--probe", "--probe-provider", "xai", "--probe-timeout", "20000", "--json"], { timeoutMs: 240_000 });
    console.log("code", run.code, "stdout", run.stdout.slice(-3000), "stderr", run.stderr.slice(-3000));
    console.log("counters", xai.server.counters, "seen", xai.seen, "other", [...xai.server.otherRequests], "tunnels", [...proxy.tunnels]);
    console.log(JSON.stringify(await readStores(world), null, 1).slice(0, 3000));
    await xai.stop();
    expect(run.code).toBe(0);
  }, 5 * MINUTE);
});
