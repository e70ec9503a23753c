import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { GuardEvent, Redeem } from "../../src/core/refresh-guard.ts";
import { installFetchInterceptor, interceptorAttached, type TokenGuard } from "../../src/hosts/global-fetch.ts";
import { tokenKey } from "../../src/store/token-crypto.ts";
import { type FileGuard, type FileGuardOptions, openFileGuard } from "../support/file-guard.ts";
import { answerGate, type StandInEndpoint, type StandInOptions, startStandIn } from "../support/token-endpoint-server.ts";

type Fetch = typeof globalThis.fetch;

const TOKEN_URL = "https://auth.example.test/oauth/token";
const OTHER_URL = "https://api.example.test/v1/responses";
const FORM = "application/x-www-form-urlencoded";

function formBody(refreshToken: string, grant = "refresh_token"): string {
  return new URLSearchParams({ grant_type: grant, refresh_token: refreshToken, client_id: "app_test" }).toString();
}

/** A fetch that records its exact arguments and answers 204. */
function recordingFetch(): { fetch: Fetch; calls: { input: unknown; init: unknown }[] } {
  const calls: { input: unknown; init: unknown }[] = [];
  const fetch = (async (input: unknown, init?: unknown) => {
    calls.push({ input, init });
    return new Response(null, { status: 204 });
  }) as Fetch;
  return { fetch, calls };
}

/** A guard stand-in that records what it was asked and redeems through the given redeem once. */
function recordingGuard(): TokenGuard & { calls: { token: string; signal: AbortSignal | null | undefined }[]; redeemed: Response[] } {
  const calls: { token: string; signal: AbortSignal | null | undefined }[] = [];
  const redeemed: Response[] = [];
  return {
    calls,
    redeemed,
    async refresh(refreshToken: string, redeem: Redeem, options: { signal?: AbortSignal | null }) {
      calls.push({ token: refreshToken, signal: options.signal });
      const response = await redeem(refreshToken, new AbortController().signal);
      redeemed.push(response);
      return new Response(JSON.stringify({ guarded: true }), { status: 200 });
    },
  };
}

describe("installFetchInterceptor on a fake host", () => {
  it("passes GETs (also to the token URL) to the original fetch with the very same arguments", async () => {
    const { fetch, calls } = recordingFetch();
    const host = { fetch };
    const guard = recordingGuard();
    installFetchInterceptor(new Map([[TOKEN_URL, guard]]), host);
    expect(host.fetch).not.toBe(fetch);

    const init = { method: "GET", headers: { accept: "application/json" } };
    await host.fetch(OTHER_URL, init);
    await host.fetch(TOKEN_URL);
    const url = new URL(TOKEN_URL);
    await host.fetch(url, init);

    expect(calls).toHaveLength(3);
    expect(calls[0]!.input).toBe(OTHER_URL);
    expect(calls[0]!.init).toBe(init);
    expect(calls[1]!.input).toBe(TOKEN_URL);
    expect(calls[1]!.init).toBeUndefined();
    expect(calls[2]!.input).toBe(url);
    expect(calls[2]!.init).toBe(init);
    expect(guard.calls).toEqual([]);
  });

  it("passes POSTs to other URLs through with the same arguments, refresh grant or not", async () => {
    const { fetch, calls } = recordingFetch();
    const host = { fetch };
    const guard = recordingGuard();
    installFetchInterceptor(new Map([[TOKEN_URL, guard]]), host);

    const init = { method: "POST", headers: { "content-type": FORM }, body: formBody("rt_x") };
    await host.fetch(OTHER_URL, init);
    const request = new Request(OTHER_URL, { method: "POST", body: formBody("rt_y") });
    await host.fetch(request);

    expect(calls).toHaveLength(2);
    expect(calls[0]!.input).toBe(OTHER_URL);
    expect(calls[0]!.init).toBe(init);
    expect(calls[1]!.input).toBe(request);
    expect(request.bodyUsed).toBe(false);
    expect(guard.calls).toEqual([]);
  });

  it("passes non-refresh grants and unreadable bodies to the token URL through untouched", async () => {
    const { fetch, calls } = recordingFetch();
    const host = { fetch };
    const guard = recordingGuard();
    installFetchInterceptor(new Map([[TOKEN_URL, guard]]), host);

    const code = { method: "POST", headers: { "content-type": FORM }, body: "grant_type=authorization_code&code=abc" };
    const json = {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "client_credentials", client_id: "x" }),
    };
    const stream = { method: "POST", body: new ReadableStream(), duplex: "half" } as RequestInit;
    const empty = { method: "POST" };
    for (const init of [code, json, stream, empty]) await host.fetch(TOKEN_URL, init);

    expect(calls.map((call) => call.init)).toEqual([code, json, stream, empty]);
    for (const [i, call] of calls.entries()) expect(call.init).toBe([code, json, stream, empty][i]);
    expect(calls.every((call) => call.input === TOKEN_URL)).toBe(true);
    expect(guard.calls).toEqual([]);
  });

  it("routes a form refresh grant to the guard, which redeems with the same fields through the original fetch", async () => {
    const { fetch, calls } = recordingFetch();
    const host = { fetch };
    const guard = recordingGuard();
    installFetchInterceptor(new Map([[TOKEN_URL, guard]]), host);

    const controller = new AbortController();
    const response = await host.fetch(TOKEN_URL, {
      method: "POST",
      headers: { "content-type": FORM, "content-length": "999", "x-trace": "t1" },
      body: formBody("rt_form"),
      signal: controller.signal,
    });
    expect(await response.json()).toEqual({ guarded: true });
    expect(guard.calls).toEqual([{ token: "rt_form", signal: controller.signal }]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.input).toBe(TOKEN_URL);
    const sent = calls[0]!.init as RequestInit & { headers: Headers };
    expect(sent.method).toBe("POST");
    expect(Object.fromEntries(new URLSearchParams(sent.body as string))).toEqual({
      grant_type: "refresh_token",
      refresh_token: "rt_form",
      client_id: "app_test",
    });
    expect(sent.headers.get("content-type")).toBe(FORM);
    expect(sent.headers.get("x-trace")).toBe("t1");
    expect(sent.headers.has("content-length")).toBe(false);
  });

  it("keeps the caller's other request options (e.g. a proxy dispatcher) on the redemption, but not its signal", async () => {
    const { fetch, calls } = recordingFetch();
    const host = { fetch };
    installFetchInterceptor(new Map([[TOKEN_URL, recordingGuard()]]), host);
    const dispatcher = { name: "proxy-agent" };
    const controller = new AbortController();
    await host.fetch(TOKEN_URL, {
      method: "POST",
      headers: { "content-type": FORM },
      body: formBody("rt_options"),
      keepalive: true,
      signal: controller.signal,
      dispatcher,
    } as unknown as RequestInit);
    const sent = calls[0]!.init as RequestInit & { dispatcher?: unknown };
    expect(sent.dispatcher).toBe(dispatcher);
    expect(sent.keepalive).toBe(true);
    expect(sent.signal).not.toBe(controller.signal);
  });

  it("routes a JSON refresh grant to the guard and redeems with a JSON body", async () => {
    const { fetch, calls } = recordingFetch();
    const host = { fetch };
    const guard = recordingGuard();
    installFetchInterceptor(new Map([[TOKEN_URL, guard]]), host);

    const fields = { grant_type: "refresh_token", refresh_token: "rt_json", client_id: "app_test" };
    await host.fetch(TOKEN_URL, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(fields) });
    expect(guard.calls.map((call) => call.token)).toEqual(["rt_json"]);
    const sent = calls[0]!.init as RequestInit & { headers: Headers };
    expect(JSON.parse(sent.body as string)).toEqual(fields);
    expect(sent.headers.get("content-type")).toBe("application/json");
  });

  it("routes a Request object, a lowercase method, a URL object, and a URL with a query or trailing slash", async () => {
    const { fetch } = recordingFetch();
    const host = { fetch };
    const guard = recordingGuard();
    installFetchInterceptor(new Map([[`${TOKEN_URL}/`, guard]]), host);

    await host.fetch(new Request(TOKEN_URL, { method: "POST", headers: { "content-type": FORM }, body: formBody("rt_1") }));
    await host.fetch(TOKEN_URL, { method: "post", headers: { "content-type": FORM }, body: formBody("rt_2") });
    await host.fetch(new URL(`${TOKEN_URL}?v=1`), { method: "POST", body: new URLSearchParams(formBody("rt_3")) });
    await host.fetch(`${TOKEN_URL}/#x`, { method: "POST", body: new TextEncoder().encode(formBody("rt_4")) });
    expect(guard.calls.map((call) => call.token)).toEqual(["rt_1", "rt_2", "rt_3", "rt_4"]);
  });

  it("keeps the content-type fetch implies for a URLSearchParams body when redeeming", async () => {
    const { fetch, calls } = recordingFetch();
    const host = { fetch };
    installFetchInterceptor(new Map([[TOKEN_URL, recordingGuard()]]), host);

    await host.fetch(TOKEN_URL, { method: "POST", body: new URLSearchParams(formBody("rt_params")) });
    const sent = calls[0]!.init as RequestInit & { headers: Headers };
    // The original request would have gone out as a form; the redemption must too (not text/plain).
    expect(sent.headers.get("content-type")).toMatch(/^application\/x-www-form-urlencoded/);
  });

  it("wraps once when installed twice, takes the new routes, and uninstall restores the original", async () => {
    const { fetch, calls } = recordingFetch();
    const host = { fetch };
    const first = recordingGuard();
    const second = recordingGuard();
    const a = installFetchInterceptor(new Map([[TOKEN_URL, first]]), host);
    const wrapper = host.fetch;
    expect(interceptorAttached(host)).toBe(true);
    const b = installFetchInterceptor(new Map([[`${TOKEN_URL}?x=1`, second]]), host);
    expect(host.fetch).toBe(wrapper);
    expect(b.urls).toEqual([TOKEN_URL]);
    expect(a.urls).toEqual([TOKEN_URL]);

    await host.fetch(TOKEN_URL, { method: "POST", headers: { "content-type": FORM }, body: formBody("rt_twice") });
    // One wrapper: the guard ran once, and redeemed once through the original.
    expect(first.calls).toEqual([]);
    expect(second.calls).toHaveLength(1);
    expect(calls).toHaveLength(1);

    b.uninstall();
    expect(host.fetch).toBe(fetch);
    expect(interceptorAttached(host)).toBe(false);
    a.uninstall();
    expect(host.fetch).toBe(fetch);
  });

  it("does not unhook someone else's wrapper installed over it", async () => {
    const { fetch } = recordingFetch();
    const host: { fetch: Fetch } = { fetch };
    const installed = installFetchInterceptor(new Map([[TOKEN_URL, recordingGuard()]]), host);
    const ours = host.fetch;
    const theirs = ((input: Parameters<Fetch>[0], init?: RequestInit) => ours(input, init)) as Fetch;
    host.fetch = theirs;
    expect(interceptorAttached(host)).toBe(false);
    installed.uninstall();
    expect(host.fetch).toBe(theirs);
  });

  it("routes a token request through a guard once when another wrapper sits between two installs", async () => {
    const { fetch, calls } = recordingFetch();
    const host: { fetch: Fetch } = { fetch };
    const guard = recordingGuard();
    installFetchInterceptor(new Map([[TOKEN_URL, guard]]), host);
    const ours = host.fetch;
    host.fetch = ((input: Parameters<Fetch>[0], init?: RequestInit) => ours(input, init)) as Fetch;
    installFetchInterceptor(new Map([[TOKEN_URL, guard]]), host);

    await host.fetch(TOKEN_URL, { method: "POST", headers: { "content-type": FORM }, body: formBody("rt_layers") });
    // The redemption travels through the older wrapper on its way out: it must not be guarded again.
    expect(guard.calls).toHaveLength(1);
    expect(calls).toHaveLength(1);
  });
});

describe("installFetchInterceptor on globalThis with a real guard", () => {
  let server: StandInEndpoint;
  let root: string;
  let guard: FileGuard;
  let events: GuardEvent[];
  let seen: { contentType: string | undefined; body: string }[];
  let uninstall: () => void;
  const originalFetch = globalThis.fetch;

  async function setup(options: StandInOptions = {}, guardOptions: Pick<FileGuardOptions, "stage"> = {}): Promise<void> {
    seen = [];
    server = await startStandIn({
      ...options,
      route: (req, _res, body) => {
        seen.push({ contentType: req.headers["content-type"], body });
        return false;
      },
    });
    guard = await openFileGuard({
      provider: "openai-codex",
      guardDir: join(root, "guard"),
      onEvent: (event) => events.push(event),
      timing: { reuseGraceMs: 50 },
      ...guardOptions,
    });
    uninstall = installFetchInterceptor(new Map([[server.url, guard]])).uninstall;
  }

  beforeEach(async () => {
    root = await fsp.mkdtemp(join(tmpdir(), "rg-intercept-"));
    events = [];
    uninstall = () => undefined;
  });

  afterEach(async () => {
    uninstall();
    globalThis.fetch = originalFetch;
    await server?.stop();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it("replaces globalThis.fetch while installed and restores it on uninstall", async () => {
    await setup();
    expect(globalThis.fetch).not.toBe(originalFetch);
    expect(interceptorAttached()).toBe(true);
    uninstall();
    expect(globalThis.fetch).toBe(originalFetch);
  });

  it("serves 10 concurrent form refreshes of one token with one redemption", async () => {
    await setup({ latencyMs: 30 });
    const credential = server.issue("acct-f");
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        fetch(server.url, { method: "POST", headers: { "content-type": FORM }, body: formBody(credential.refresh) }),
      ),
    );
    const bodies = (await Promise.all(responses.map((response) => response.json()))) as { refresh_token: string }[];
    expect(responses.every((response) => response.status === 200)).toBe(true);
    expect(new Set(bodies.map((body) => body.refresh_token)).size).toBe(1);
    expect(server.counters.redemptions).toBe(1);
    expect(server.counters.requests).toBe(1);
    expect(seen[0]!.contentType).toBe(FORM);
    expect(new URLSearchParams(seen[0]!.body).get("client_id")).toBe("app_test");
  });

  it("guards a JSON refresh body: the endpoint gets JSON, a repeat is answered from the journal", async () => {
    await setup();
    const credential = server.issue("acct-j");
    const request = () =>
      fetch(server.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant_type: "refresh_token", refresh_token: credential.refresh, client_id: "app_json" }),
      });
    const first = (await (await request()).json()) as { refresh_token: string };
    expect(seen).toHaveLength(1);
    expect(seen[0]!.contentType).toBe("application/json");
    const sent = JSON.parse(seen[0]!.body) as Record<string, string>;
    expect(Object.keys(sent).sort()).toEqual(["client_id", "grant_type", "refresh_token"]);
    expect(sent.grant_type).toBe("refresh_token");
    expect(sent.client_id).toBe("app_json");
    expect(sent.refresh_token === credential.refresh).toBe(true);

    const again = await request();
    expect(again.status).toBe(200);
    const repeated = ((await again.json()) as { refresh_token: string }).refresh_token;
    expect(tokenKey(repeated)).toBe(tokenKey(first.refresh_token));
    expect(server.counters.requests).toBe(1);
    expect(server.counters.reuses).toBe(0);
    expect(events.map((event) => event.type)).toEqual(["redeemed", "shared"]);
  });

  it("sends a URLSearchParams body without a content-type to the endpoint as a form", async () => {
    await setup();
    const credential = server.issue("acct-p");
    const response = await fetch(server.url, { method: "POST", body: new URLSearchParams(formBody(credential.refresh)) });
    expect(response.status).toBe(200);
    expect(seen[0]!.contentType).toBe("application/x-www-form-urlencoded;charset=UTF-8");
    expect(events.map((event) => event.type)).toEqual(["redeemed"]);
  });

  it("lets a non-refresh grant to the token URL reach the endpoint unguarded", async () => {
    await setup();
    const response = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": FORM },
      body: "grant_type=authorization_code&code=abc",
    });
    expect(response.status).toBe(400);
    expect(server.counters.requests).toBe(1);
    expect(events).toEqual([]);
  });

  it("lets the caller abort with its signal while the redemption completes and is journaled", async () => {
    // The stand-in holds its answer until the test releases it; the guard says when it journaled.
    const answer = answerGate();
    let journaled!: () => void;
    const written = new Promise<void>((resolve) => (journaled = resolve));
    await setup({ gate: answer.gate }, { stage: (stage) => void (stage === "journaled" && journaled()) });
    const credential = server.issue("acct-a");
    const controller = new AbortController();
    const aborted = expect(
      fetch(server.url, {
        method: "POST",
        headers: { "content-type": FORM },
        body: formBody(credential.refresh),
        signal: controller.signal,
      }),
    ).rejects.toMatchObject({ name: "AbortError" });
    await answer.arrived;
    controller.abort();
    // The caller is released while its redemption is still in flight...
    await aborted;
    expect(server.counters.redemptions).toBe(0);
    // ...which then completes and is journaled.
    answer.release();
    await written;
    const key = tokenKey(credential.refresh);
    expect(await guard.journal.has(key)).toBe(true);
    const response = await fetch(server.url, { method: "POST", headers: { "content-type": FORM }, body: formBody(credential.refresh) });
    expect(response.status).toBe(200);
    expect(server.counters.redemptions).toBe(1);
    expect(server.counters.requests).toBe(1);
  });
});
