// Issue 13, case 3: the fetch wrapper never breaks a request it does not guard, matches every
// spelling of a token URL, keeps the original fetch's own properties visible, and stops guarding
// on uninstall even when another wrapper sits on top of it.
import { describe, expect, it } from "vitest";
import type { Redeem } from "../../src/core/refresh-guard.ts";
import { installFetchInterceptor, type TokenGuard } from "../../src/hosts/global-fetch.ts";

type Fetch = typeof globalThis.fetch;

const TOKEN_URL = "https://auth.example.test/oauth/token";
const OTHER_URL = "https://api.example.test/v1/responses";
const FORM = "application/x-www-form-urlencoded";

function formBody(refreshToken: string): string {
  return new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: "app_test" }).toString();
}

function recordingFetch(): { fetch: Fetch; calls: { input: unknown; init: unknown }[] } {
  const calls: { input: unknown; init: unknown }[] = [];
  const fetch = (async (input: unknown, init?: unknown) => {
    calls.push({ input, init });
    return new Response(null, { status: 204 });
  }) as Fetch;
  return { fetch, calls };
}

function recordingGuard(): TokenGuard & { tokens: string[] } {
  const tokens: string[] = [];
  return {
    tokens,
    async refresh(refreshToken: string, redeem: Redeem) {
      tokens.push(refreshToken);
      await redeem(refreshToken, new AbortController().signal);
      return new Response("{}", { status: 200 });
    },
  };
}

describe("the fetch wrapper never throws for a request it does not guard", () => {
  it("passes a POST whose input is an object with toString (any URL) to the original fetch unchanged", async () => {
    const { fetch, calls } = recordingFetch();
    const host = { fetch };
    installFetchInterceptor(new Map([[TOKEN_URL, recordingGuard()]]), host);
    const input = { toString: () => OTHER_URL };
    const init = { method: "POST", body: "{}" };

    // No synchronous throw: the call returns a promise, and the original sees the very same arguments.
    let result: Promise<Response> | undefined;
    expect(() => {
      result = host.fetch(input as unknown as string, init);
    }).not.toThrow();
    expect((await result!).status).toBe(204);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.input).toBe(input);
    expect(calls[0]!.init).toBe(init);
  });

  it("passes inputs whose properties throw, and a polyfill Request, to the original fetch unchanged", async () => {
    const { fetch, calls } = recordingFetch();
    const host = { fetch };
    const guard = recordingGuard();
    installFetchInterceptor(new Map([[TOKEN_URL, guard]]), host);
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error("no property reads here");
        },
      },
    );
    const polyfillRequest = { url: TOKEN_URL, method: "POST", headers: { "content-type": FORM }, body: formBody("rt_poly") };

    await host.fetch(hostile as unknown as string, { method: "POST" });
    await host.fetch(polyfillRequest as unknown as Request);
    expect(calls).toHaveLength(2);
    expect(calls[0]!.input === hostile).toBe(true);
    expect(calls[1]!.input === polyfillRequest).toBe(true);
    expect(guard.tokens).toEqual([]);
  });

  it("guards a token request whose URL is a URL-like object (a polyfill or another realm's URL)", async () => {
    const { fetch } = recordingFetch();
    const host = { fetch };
    const guard = recordingGuard();
    installFetchInterceptor(new Map([[TOKEN_URL, guard]]), host);
    const urlLike = { href: TOKEN_URL, toString: () => TOKEN_URL };

    await host.fetch(urlLike as unknown as URL, { method: "POST", headers: { "content-type": FORM }, body: formBody("rt_like") });
    expect(guard.tokens).toEqual(["rt_like"]);
  });
});

describe("token URL matching", () => {
  it("guards other spellings of the token URL: host case, default port, repeated slashes", async () => {
    const { fetch } = recordingFetch();
    const host = { fetch };
    const guard = recordingGuard();
    installFetchInterceptor(new Map([["https://auth.openai.com/oauth/token", guard]]), host);
    const spellings = [
      "https://AUTH.openai.com/oauth/token",
      "https://auth.openai.com:443/oauth/token",
      "https://auth.openai.com//oauth/token",
      "HTTPS://Auth.OpenAI.com:443//oauth//token/",
    ];
    for (const [index, url] of spellings.entries()) {
      await host.fetch(url, { method: "POST", headers: { "content-type": FORM }, body: formBody(`rt_${index}`) });
    }
    expect(guard.tokens).toEqual(["rt_0", "rt_1", "rt_2", "rt_3"]);
  });

  it("does not guard a different path or port", async () => {
    const { fetch, calls } = recordingFetch();
    const host = { fetch };
    const guard = recordingGuard();
    installFetchInterceptor(new Map([["https://auth.openai.com/oauth/token", guard]]), host);
    await host.fetch("https://auth.openai.com:8443/oauth/token", {
      method: "POST",
      headers: { "content-type": FORM },
      body: formBody("rt_a"),
    });
    await host.fetch("https://auth.openai.com/oauth/tokens", { method: "POST", headers: { "content-type": FORM }, body: formBody("rt_b") });
    expect(guard.tokens).toEqual([]);
    expect(calls).toHaveLength(2);
  });
});

describe("the wrapper as seen by other code", () => {
  it("keeps the original fetch's own properties visible, including ones set after install", () => {
    const { fetch } = recordingFetch();
    const original = Object.assign(fetch, { preconnect: () => "preconnected", marker: 42 });
    const host: { fetch: Fetch } = { fetch: original };
    installFetchInterceptor(new Map([[TOKEN_URL, recordingGuard()]]), host);
    expect(host.fetch).not.toBe(original);
    const wrapped = host.fetch as unknown as { preconnect: () => string; marker: number; later?: string };
    expect(wrapped.marker).toBe(42);
    expect(wrapped.preconnect()).toBe("preconnected");
    (original as unknown as { later: string }).later = "set afterwards";
    expect(wrapped.later).toBe("set afterwards");
  });

  it("stops guarding on uninstall when another wrapper sits on top of it", async () => {
    const { fetch, calls } = recordingFetch();
    const host: { fetch: Fetch } = { fetch };
    const guard = recordingGuard();
    const installed = installFetchInterceptor(new Map([[TOKEN_URL, guard]]), host);
    const ours = host.fetch;
    const theirs = ((input: Parameters<Fetch>[0], init?: RequestInit) => ours(input, init)) as Fetch;
    host.fetch = theirs;
    installed.uninstall();
    expect(host.fetch).toBe(theirs);

    const init = { method: "POST", headers: { "content-type": FORM }, body: formBody("rt_after") };
    await host.fetch(TOKEN_URL, init);
    expect(guard.tokens).toEqual([]);
    expect(calls).toEqual([{ input: TOKEN_URL, init }]);
  });
});
