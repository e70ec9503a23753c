// The unguarded-refresh observer: a token POST that leaves this thread outside the wrapper is
// reported (undici's `undici:request:create` channel, here Node's own fetch); one that went through
// the wrapper (a guarded redemption, or a login passed on untouched) is not; other URLs never are.
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { installFetchInterceptor, type TokenGuard } from "../../src/hosts/global-fetch.ts";
import { observeTokenPosts } from "../../src/hosts/token-post-observer.ts";
import { type StandInEndpoint, startStandIn } from "../support/token-endpoint-server.ts";

let server: StandInEndpoint;
const seen: string[] = [];

beforeAll(async () => {
  server = await startStandIn();
  observeTokenPosts([server.url], (url) => seen.push(url));
});

afterAll(() => server.stop());

function post(fetchFn: typeof fetch, refresh: string, grant = "refresh_token"): Promise<Response> {
  return fetchFn(server.url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: grant, refresh_token: refresh, client_id: "app_x" }),
  });
}

describe("token POST observer", () => {
  it("reports a refresh POST sent past the wrapper, and only that", async () => {
    seen.length = 0;
    const credential = server.issue("acct-observer");
    const response = await post(globalThis.fetch, credential.refresh);
    await response.arrayBuffer();
    expect(seen).toEqual([server.url]);
    // A GET of the same URL and a POST elsewhere are not token refreshes.
    await (await fetch(server.url)).arrayBuffer();
    await (await fetch(server.url.replace("/oauth/token", "/other"), { method: "POST", body: "x" })).arrayBuffer();
    expect(seen).toEqual([server.url]);
  });

  it("stays quiet for POSTs that went through the wrapper: a guarded redemption and a login passed on", async () => {
    seen.length = 0;
    const host = { fetch: globalThis.fetch.bind(globalThis) as typeof fetch };
    let guarded = 0;
    const guard: TokenGuard = {
      refresh: async (token, redeem) => {
        guarded += 1;
        return redeem(token, new AbortController().signal);
      },
    };
    const installed = installFetchInterceptor(new Map([[server.url, guard]]), host);
    try {
      const credential = server.issue("acct-observer-2");
      const redeemed = await post(host.fetch, credential.refresh);
      expect(redeemed.status).toBe(200);
      await redeemed.arrayBuffer();
      const login = await post(host.fetch, "not-a-refresh", "authorization_code");
      await login.arrayBuffer();
      expect(guarded).toBe(1);
      expect(seen).toEqual([]);
    } finally {
      installed.uninstall();
    }
  });
});
