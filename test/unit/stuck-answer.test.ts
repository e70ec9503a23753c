// Issue 13, case 2: every wait has a hard bound, whatever the request does. A redemption whose
// answer never ends and ignores its abort signal (another fetch wrapper that drops `signal`) must
// not hold the refresh lock forever; an answer larger than the journal's cap fails cleanly.
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { GuardEvent, Redeem } from "../../src/core/refresh-guard.ts";
import { tokenKey } from "../../src/store/token-crypto.ts";
import { type FileGuard, openFileGuard } from "../support/file-guard.ts";
import { type StandInEndpoint, startStandIn } from "../support/token-endpoint-server.ts";

let root: string;
let guardDir: string;
let server: StandInEndpoint;
let events: GuardEvent[];

beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-stuck-"));
  guardDir = join(root, "guard");
  events = [];
  server = await startStandIn();
});

afterEach(async () => {
  await server.stop();
  await fsp.rm(root, { recursive: true, force: true });
});

const TIMING = { requestTimeoutMs: 200, staleMs: 2000, updateMs: 1000, waitTimeoutMs: 15_000, pollMs: 50, reuseGraceMs: 50 };

function openGuard(): Promise<FileGuard> {
  return openFileGuard({ provider: "openai-codex", guardDir, timing: TIMING, onEvent: (event) => events.push(event) });
}

const realRedeem: Redeem = (refreshToken, signal) =>
  fetch(server.url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken }).toString(),
    signal,
  });

describe("a redemption whose answer never ends and ignores its signal", () => {
  it("times the caller out after requestTimeoutMs, then releases the lock after staleMs so another guard redeems", {
    timeout: 30_000,
  }, async () => {
    const credential = server.issue();
    const first = await openGuard();
    const second = await openGuard();
    let sent = 0;
    // Headers arrive, the body starts and never ends; the signal is ignored (a wrapper dropped it).
    const stuck: Redeem = async () => {
      sent += 1;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"access_token":"'));
        },
      });
      return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
    };

    const error = await first.refresh(credential.refresh, stuck).then(
      () => null,
      (reason: unknown) => reason as Error,
    );
    expect(error?.name).toBe("TimeoutError");
    expect(sent).toBe(1);
    expect(events.some((event) => event.type === "failed" && event.reason === "endpoint_timeout")).toBe(true);
    // The request may still be on its way: the lock stays for now (no second send meanwhile)…
    expect((await first.holders()).map((holder) => holder.key)).toEqual([tokenKey(credential.refresh)]);

    // …and is released after staleMs: another guard instance then takes it and redeems once.
    const response = await second.refresh(credential.refresh, realRedeem);
    expect(response.status).toBe(200);
    expect(server.counters.redemptions).toBe(1);
    expect(await first.holders()).toEqual([]);
  });
});

describe("a token answer larger than the journal's cap", () => {
  it("fails cleanly: the caller gets an error naming the limit, nothing is journaled, the lock is free", async () => {
    const credential = server.issue();
    const guard = await openGuard();
    const huge: Redeem = async () =>
      new Response(JSON.stringify({ access_token: "a", refresh_token: "r", expires_in: 3600, id_token: "x".repeat(2 * 1024 * 1024) }), {
        status: 200,
        headers: { "content-type": "application/json" },
      });

    const error = await guard.refresh(credential.refresh, huge).then(
      () => null,
      (reason: unknown) => reason as Error & { code?: string },
    );
    expect(error?.code).toBe("ERR_RESPONSE_TOO_LARGE");
    expect(error?.message).toMatch(/larger than \d+ bytes/);
    expect(await guard.coordination.hasEntry(tokenKey(credential.refresh))).toBe(false);
    expect(await guard.holders()).toEqual([]);
    // Nothing stuck: the same token still redeems normally.
    expect((await guard.refresh(credential.refresh, realRedeem)).status).toBe(200);
    expect(server.counters.redemptions).toBe(1);
  });
});
