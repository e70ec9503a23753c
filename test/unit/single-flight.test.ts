// Callers of one process that present the same token while it is being resolved join that
// resolution: one journal walk, one redemption, the leader's tokens for all; if the leader ends in
// a failure, each joined caller resolves on its own as if it had not joined.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { GuardEvent, Redeem } from "../../src/core/refresh-guard.ts";
import { type FileGuard, openFileGuard } from "../support/file-guard.ts";
import { type StandInEndpoint, startStandIn } from "../support/token-endpoint-server.ts";

describe("in-process single flight", () => {
  let server: StandInEndpoint;
  let dir: string;
  let events: GuardEvent[];
  let guard: FileGuard;
  let redeem: Redeem;

  beforeEach(async () => {
    server = await startStandIn({ latencyMs: 80 });
    dir = await mkdtemp(join(tmpdir(), "rg-flight-"));
    events = [];
    guard = await openFileGuard({ provider: "openai-codex", guardDir: dir, onEvent: (event) => events.push(event) });
    redeem = (token, signal) =>
      fetch(server.url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: token }).toString(),
        signal,
      });
  });

  afterEach(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("walks the journal once for twenty concurrent callers and hands all of them the leader's tokens", async () => {
    const credential = server.issue("acct-flight");
    const reads = vi.spyOn(guard.journal, "read");
    const responses = await Promise.all(Array.from({ length: 20 }, () => guard.refresh(credential.refresh, redeem)));
    const bodies = await Promise.all(responses.map((response) => response.json() as Promise<{ refresh_token: string }>));
    expect(new Set(bodies.map((body) => body.refresh_token)).size).toBe(1);
    expect(server.counters.redemptions).toBe(1);
    // The leader reads the presented key (absent) and, after redeeming, nothing else; joiners read nothing.
    expect(reads.mock.calls.length).toBeLessThanOrEqual(2);
    expect(events.filter((event) => event.type === "redeemed")).toHaveLength(1);
    expect(events.filter((event) => event.type === "shared")).toHaveLength(19);
  });

  it("lets joined callers resolve on their own when the leader ends in an endpoint failure", async () => {
    const credential = server.issue("acct-flight-fail");
    server.inject("500");
    const responses = await Promise.all(Array.from({ length: 5 }, () => guard.refresh(credential.refresh, redeem)));
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 500)).toHaveLength(1);
    expect(statuses.filter((status) => status === 200)).toHaveLength(4);
    const bodies = await Promise.all(responses.filter((r) => r.status === 200).map((r) => r.json() as Promise<{ refresh_token: string }>));
    expect(new Set(bodies.map((body) => body.refresh_token)).size).toBe(1);
    expect(server.counters.redemptions).toBe(1);
  });
});
