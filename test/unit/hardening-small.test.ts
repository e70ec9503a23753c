// Issue 13, case 6 (the smaller ones), through the real guard on real files: a blocked lock path,
// a stale lock directory with a file inside, log lines that cannot be forged, stray owner temp
// files, and a 200 without any expiry (opaque access token, no expires_in).
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { parseConfig } from "../../src/config/parse-config.ts";
import type { GuardEvent, Redeem } from "../../src/core/refresh-guard.ts";
import { GuardRuntime } from "../../src/plugin/guard-runtime.ts";
import { RefreshLocks } from "../../src/store/refresh-lock.ts";
import { tokenKey } from "../../src/store/token-crypto.ts";
import { type FileGuard, openFileGuard } from "../support/file-guard.ts";
import { type StandInEndpoint, startStandIn } from "../support/token-endpoint-server.ts";

let root: string;
let guardDir: string;
let server: StandInEndpoint;
let events: GuardEvent[];

beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-small-"));
  guardDir = join(root, "guard");
  events = [];
  server = await startStandIn();
});

afterEach(async () => {
  await server.stop();
  await fsp.rm(root, { recursive: true, force: true });
});

const TIMING = { staleMs: 2000, updateMs: 1000, waitTimeoutMs: 5000, reuseGraceMs: 50 };

function openGuard(): Promise<FileGuard> {
  return openFileGuard({ provider: "openai-codex", guardDir, timing: TIMING, onEvent: (event) => events.push(event) });
}

function redeemAt(url: string, sent: string[] = []): Redeem {
  return (refreshToken, signal) => {
    sent.push(refreshToken);
    return fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken }).toString(),
      signal,
    });
  };
}

function warnings(reason: string): GuardEvent[] {
  return events.filter((event) => event.type === "warning" && event.reason === reason);
}

describe("something that is not a lock at the lock path", () => {
  it("a regular file at locks/<key>.lock is moved aside with a lock_blocked warning and the refresh succeeds", async () => {
    const credential = server.issue();
    const guard = await openGuard();
    const lockPath = join(guardDir, "locks", `${tokenKey(credential.refresh)}.lock`);
    await fsp.writeFile(lockPath, "not a lock");

    const response = await guard.refresh(credential.refresh, redeemAt(server.url));
    expect(response.status).toBe(200);
    expect(server.counters.redemptions).toBe(1);
    expect(warnings("lock_blocked")).toHaveLength(1);
    const aside = (await fsp.readdir(join(guardDir, "locks"))).filter((name) => name.startsWith(".aside-"));
    expect(aside).toHaveLength(1);
    expect(await fsp.readFile(join(guardDir, "locks", aside[0]!), "utf8")).toBe("not a lock");
  });

  it("a stale lock directory with a file inside is taken over (moved aside) and the refresh succeeds", async () => {
    const credential = server.issue();
    const guard = await openGuard();
    const lockPath = join(guardDir, "locks", `${tokenKey(credential.refresh)}.lock`);
    await fsp.mkdir(lockPath, { mode: 0o700 });
    await fsp.writeFile(join(lockPath, "left-behind"), "x");
    const anHourAgo = new Date(Date.now() - 60 * 60 * 1000);
    await fsp.utimes(lockPath, anHourAgo, anHourAgo);

    const response = await guard.refresh(credential.refresh, redeemAt(server.url));
    expect(response.status).toBe(200);
    expect(server.counters.redemptions).toBe(1);
    expect(warnings("lock_blocked")).toHaveLength(1);
  });
});

describe("log lines", () => {
  it("an endpoint error code containing a newline yields one log line per event, never a forged one", async () => {
    const lines: string[] = [];
    const config = parseConfig(
      { providers: { "openai-codex": { enabled: true, tokenUrl: server.url } }, guardDir, codexAuthFile: false },
      { stateDir: root },
    );
    const log = (line: string) => lines.push(line);
    const runtime = new GuardRuntime(config, { logger: { debug: log, info: log, warn: log, error: log }, stateDir: root });
    const forged = "bad_request\n[refresh-guard] event=redeemed provider=openai-codex key=deadbeef hops=0 ms=1";
    const redeem: Redeem = async () =>
      new Response(JSON.stringify({ error: { code: forged, message: "x\r\ny" } }), {
        status: 400,
        headers: { "content-type": "application/json" },
      });

    const response = await runtime.routes().get(server.url)!.refresh(server.issue().refresh, redeem, {});
    expect(response.status).toBe(400);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).not.toMatch(/[\r\n\u2028\u2029]/);
    expect(lines.filter((line) => line.includes("event=failed"))).toHaveLength(1);
    expect(lines.some((line) => line.startsWith("[refresh-guard] event=redeemed"))).toBe(false);
  });
});

describe("stray files", () => {
  it("prune removes owner-record temp files (.owner.*.tmp) a crash left, and keeps fresh ones", async () => {
    const dir = join(root, "locks");
    await fsp.mkdir(dir, { mode: 0o700 });
    const locks = new RefreshLocks(dir, { staleMs: 2000, updateMs: 1000 });
    const key = tokenKey("rt_prune");
    const old = join(dir, `${key}.owner.0a1b2c3d4e5f.tmp`);
    const fresh = join(dir, `${key}.owner.ffeeddccbbaa.tmp`);
    await fsp.writeFile(old, "{}");
    await fsp.writeFile(fresh, "{}");
    const twentyMinutesAgo = new Date(Date.now() - 20 * 60 * 1000);
    await fsp.utimes(old, twentyMinutesAgo, twentyMinutesAgo);

    await locks.prune(60 * 60 * 1000);
    expect(await fsp.readdir(dir)).toEqual([`${key}.owner.ffeeddccbbaa.tmp`]);
  });
});

describe("a 200 that says nothing of the access token's expiry", () => {
  it("is journaled, so a copy of the spent token gets the successor instead of sending the spent token again", async () => {
    const original = server.issue();
    const successor = server.issue();
    // The endpoint answers with an opaque access token and no expires_in.
    const opaque: Redeem = async () =>
      new Response(JSON.stringify({ access_token: "opaque-access-token", refresh_token: successor.refresh, token_type: "Bearer" }), {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    const first = await openGuard();
    const answered = (await (await first.refresh(original.refresh, opaque)).json()) as Record<string, unknown>;
    expect(answered.refresh_token === successor.refresh).toBe(true);
    expect(answered).not.toHaveProperty("expires_in");
    const entry = await fsp.stat(join(guardDir, "journal", `${tokenKey(original.refresh)}.json`)).catch(() => null);
    expect(entry?.isFile(), "journal entry written").toBe(true);

    // Another process holding a copy of the original token: it must not send the spent token again.
    const second = await openGuard();
    const sent: string[] = [];
    const response = await second.refresh(original.refresh, redeemAt(server.url, sent));
    expect(response.status).toBe(200);
    // Its access token is never handed out from the journal: the successor is redeemed instead.
    expect(sent.map(tokenKey)).toEqual([tokenKey(successor.refresh)]);
  });
});

describe("spent markers and expiry cannot be forged or inflated", () => {
  it("a spent marker written by someone who knows only the token's hash forces no re-login: quarantined, token redeemed", async () => {
    const credential = server.issue();
    const guard = await openGuard();
    const key = tokenKey(credential.refresh);
    // Plain JSON, as anyone with write access to the journal could write it.
    const forged = { v: 1, key, code: "refresh_token_reused", at: Date.now(), body: '{"error":{"code":"refresh_token_reused"}}' };
    await fsp.writeFile(join(guardDir, "journal", `${key}.spent`), JSON.stringify(forged), { mode: 0o600 });

    const response = await guard.refresh(credential.refresh, redeemAt(server.url));
    expect(response.status).toBe(200);
    expect(server.counters.redemptions).toBe(1);
    expect(warnings("journal_quarantined")).toHaveLength(1);
  });

  it("a huge expires_in is bounded by the access token's own lifetime: two hours later the successor is redeemed", async () => {
    const original = server.issue();
    const successor = server.issue();
    const nowSec = Math.floor(Date.now() / 1000);
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const access = `${part({ alg: "none" })}.${part({ iat: nowSec, exp: nowSec + 3600 })}.sig`;
    const inflated: Redeem = async () =>
      new Response(JSON.stringify({ access_token: access, refresh_token: successor.refresh, expires_in: 10 * 365 * 86400 }), {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    const first = await openGuard();
    const body = (await (await first.refresh(original.refresh, inflated)).json()) as { expires_in: number };
    expect(body.expires_in).toBeLessThanOrEqual(3600);

    // A process whose clock says two hours later: the journal's access token is stale, so it redeems the successor.
    const later = await openFileGuard({
      provider: "openai-codex",
      guardDir,
      timing: TIMING,
      now: () => Date.now() + 2 * 60 * 60 * 1000,
    });
    const sent: string[] = [];
    const response = await later.refresh(original.refresh, redeemAt(server.url, sent));
    expect(response.status).toBe(200);
    expect(sent.map(tokenKey)).toEqual([tokenKey(successor.refresh)]);
  });
});
