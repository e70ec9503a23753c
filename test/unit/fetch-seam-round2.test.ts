// The fetch seam, second round (issue 18): a token request sent as a Request of the host undici's
// own class is guarded; a Request's own redirect mode is kept (redirect: "manual" never follows a
// 307 and never re-sends the refresh token to its Location); a trailing-dot host or a
// percent-encoded path names the same token URL. A real HTTP server counts what reaches it.
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { Redeem } from "../../src/core/refresh-guard.ts";
import { installFetchInterceptor, normalizeUrl, type TokenGuard } from "../../src/hosts/global-fetch.ts";

type Fetch = typeof globalThis.fetch;

let server: Server;
let base: string;
let hits: { path: string; body: string }[];

beforeEach(async () => {
  hits = [];
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      hits.push({ path: req.url ?? "", body });
      if (req.url === "/oauth/token") {
        res.writeHead(307, { location: "/elsewhere" }).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function formBody(refreshToken: string): string {
  return new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: "app_test" }).toString();
}

/** A guard that redeems once and hands back whatever the endpoint answered. */
function passGuard(): TokenGuard & { tokens: string[] } {
  const tokens: string[] = [];
  return {
    tokens,
    async refresh(refreshToken: string, redeem: Redeem) {
      tokens.push(refreshToken);
      return redeem(refreshToken, new AbortController().signal);
    },
  };
}

/** The undici npm package a real 2026.9.x host loads (installed by the e2e host cache). */
function hostUndici(): { fetch: Fetch; Request: typeof Request } | null {
  const cache = process.env.REFRESH_GUARD_CACHE ?? join(homedir(), ".cache", "refresh-guard");
  const entry = join(cache, "hosts", "openclaw-2026.9.6", "node_modules", "undici", "index.js");
  if (!existsSync(entry)) return null;
  const module = createRequire(entry)(entry) as { fetch: Fetch; Request: typeof Request };
  return { fetch: module.fetch, Request: module.Request };
}

describe("the fetch seam guards what it must and keeps the request's own options", () => {
  it("a redirect: 'manual' Request (no init) does not follow a 307: the refresh token never reaches the Location", async () => {
    const host = { fetch: globalThis.fetch.bind(globalThis) as Fetch };
    const guard = passGuard();
    const installed = installFetchInterceptor(new Map([[`${base}/oauth/token`, guard]]), host);
    try {
      const request = new Request(`${base}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: formBody("rt_manual"),
        redirect: "manual",
      });
      const response = await host.fetch(request);
      expect(guard.tokens).toEqual(["rt_manual"]);
      expect(response.status).toBe(307);
      expect(hits.map((hit) => hit.path)).toEqual(["/oauth/token"]);
    } finally {
      installed.uninstall();
    }
  });

  const undici = hostUndici();
  it.skipIf(undici === null)("a token request sent as the host undici's own Request class is guarded (read through clone())", async () => {
    const module = { fetch: undici!.fetch };
    const guard = passGuard();
    const installed = installFetchInterceptor(new Map([[`${base}/oauth/token`, guard]]), module);
    try {
      const request = new undici!.Request(`${base}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: formBody("rt_undici"),
        redirect: "manual",
      });
      expect(request instanceof Request).toBe(false);
      const response = await module.fetch(request);
      expect(guard.tokens).toEqual(["rt_undici"]);
      expect(response.status).toBe(307);
      expect(hits.map((hit) => hit.path)).toEqual(["/oauth/token"]);
      // The body the guard sent carries the token; the caller's Request body was never consumed.
      expect(hits[0]!.body).toBe(formBody("rt_undici"));
      expect(request.bodyUsed).toBe(false);
    } finally {
      installed.uninstall();
    }
  });

  it("a trailing-dot host or percent-encoded unreserved characters in the path name the same token URL", () => {
    const canonical = normalizeUrl("https://auth.openai.com/oauth/token");
    for (const spelling of [
      "https://auth.openai.com./oauth/token",
      "https://AUTH.openai.com.:443/oauth/%74oken",
      "https://auth.openai.com/%6Fauth/%74%6F%6B%65%6E",
      "https://auth.openai.com/oauth//token/",
    ]) {
      expect(normalizeUrl(spelling), spelling).toBe(canonical);
    }
    // Reserved characters stay encoded: %2F is not a path separator.
    expect(normalizeUrl("https://auth.openai.com/oauth%2Ftoken")).not.toBe(canonical);
  });

  it("a POST to the trailing-dot or percent-encoded spelling is guarded", async () => {
    const host = { fetch: (async () => new Response("{}", { status: 200 })) as Fetch };
    const guard = passGuard();
    installFetchInterceptor(new Map([["https://auth.openai.com/oauth/token", guard]]), host);
    const init = { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" } };
    await host.fetch("https://auth.openai.com./oauth/token", { ...init, body: formBody("rt_dot") });
    await host.fetch("https://auth.openai.com/oauth/%74oken", { ...init, body: formBody("rt_pct") });
    expect(guard.tokens).toEqual(["rt_dot", "rt_pct"]);
  });
});
