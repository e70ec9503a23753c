// RedisCoordination against a real redis-server (started by the test): the lease lock and its owner
// check, waiters woken by pub/sub rather than by their poll, entries sealed exactly like the file
// journal's, and set-if-absent with the retention as expiry.
import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { LockCompromisedError } from "../../src/errors/errors.ts";
import type { TokenSet } from "../../src/oauth/token-wire.ts";
import { RedisCoordination, type RedisCoordinationOptions } from "../../src/store/redis-coordination.ts";
import { openEntry } from "../../src/store/sealed-entry.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

const EXPIRES = Date.now() + 3_600_000;
const keyOf = (token: string) => createHash("sha256").update(token).digest("hex");
const set = (refreshToken: string): TokenSet => ({ accessToken: `at-${refreshToken}`, refreshToken, expiresAt: EXPIRES, extra: {} });

let redis: RedisServer;
let raw: Redis;
const opened: RedisCoordination[] = [];

async function coordination(extra: Partial<RedisCoordinationOptions> = {}): Promise<RedisCoordination> {
  const backend = new RedisCoordination({
    url: redis.url,
    keyPrefix: "t:",
    connectTimeoutMs: 1000,
    commandTimeoutMs: 2000,
    leaseMs: 2000,
    renewMs: 1000,
    retentionMs: 86_400_000,
    // Long enough that a waiter woken in time was woken by a message, not by its poll.
    fallbackPollMs: 60_000,
    ...extra,
  });
  await backend.open();
  opened.push(backend);
  return backend;
}

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
});

afterAll(async () => {
  await Promise.all(opened.map((backend) => backend.close()));
  raw.disconnect();
  await redis.stop();
});

describe("RedisCoordination", () => {
  it("gives the lock to one owner at a time; only the owner renews or releases it", async () => {
    const [a, b] = [await coordination(), await coordination()];
    const key = keyOf("lock-token");
    const held = await a.tryLock(key);
    expect(held).not.toBeNull();
    expect(await b.tryLock(key)).toBeNull();
    const ttl = await raw.pttl(`t:lock:${key}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2000);
    await held!.assertHeld();
    // Someone else's value at the key (the lease ran out and another took it): not ours any more.
    await raw.set(`t:lock:${key}`, "other-owner", "PX", 5000);
    await expect(held!.assertHeld()).rejects.toBeInstanceOf(LockCompromisedError);
    expect(held!.compromised).toBe(true);
    await held!.release();
    expect(await raw.get(`t:lock:${key}`)).toBe("other-owner");
    await raw.del(`t:lock:${key}`);
  });

  it("renews the lease with a heartbeat while held, so a live holder keeps it past the lease", async () => {
    const a = await coordination({ leaseMs: 600, renewMs: 200 });
    const b = await coordination({ leaseMs: 600, renewMs: 200 });
    const key = keyOf("heartbeat-token");
    const held = await a.tryLock(key);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await b.tryLock(key)).toBeNull();
    await held!.assertHeld();
    await held!.release();
    expect(await raw.exists(`t:lock:${key}`)).toBe(0);
  });

  it("wakes a waiter by pub/sub when the lock is released and when an entry is written, not by its poll", async () => {
    const [a, b] = [await coordination(), await coordination()];
    const key = keyOf("wake-token");
    const held = await a.tryLock(key);
    const waitingForLock = b.waitForChange(key, 50);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await held!.release();
    await waitingForLock;
    const waitingForEntry = b.waitForEntry(key, 60_000);
    await a.writeEntry(key, "wake-token", set("next"));
    await waitingForEntry;
    expect(b.wakeups).toEqual({ message: 2, fallback: 0 });
  });

  it("stores entries sealed like the file journal's, set-if-absent with the retention as expiry: the first writer wins", async () => {
    const [a, b] = [await coordination(), await coordination()];
    const key = keyOf("entry-token");
    expect(await a.writeEntry(key, "entry-token", set("first"))).toEqual(set("first"));
    const second = await b.writeEntry(key, "entry-token", set("second"));
    expect(second.refreshToken).toBe("first");
    const stored = (await raw.get(`t:entry:${key}`))!;
    expect(stored).not.toContain("first");
    expect(openEntry(key, "entry-token", stored)).toMatchObject({ refreshToken: "first" });
    expect("unreadable" in (openEntry(key, "another-token", stored) as object)).toBe(true);
    const ttl = await raw.pttl(`t:entry:${key}`);
    expect(ttl).toBeGreaterThan(86_000_000);
    expect(await b.readEntry(key, "entry-token")).toMatchObject({ refreshToken: "first" });
  });

  it("keeps the first spent marker, readable only with the spent token; a forged one is set aside", async () => {
    const a = await coordination();
    const key = keyOf("spent-token");
    await a.markSpent(key, "spent-token", "refresh_token_reused", '{"error":{"code":"refresh_token_reused"}}');
    await a.markSpent(key, "spent-token", "other", "{}");
    expect(await a.readSpent(key, "spent-token")).toMatchObject({ code: "refresh_token_reused" });
    const forgedKey = keyOf("forged-token");
    await raw.set(`t:spent:${forgedKey}`, JSON.stringify({ v: 1, key: forgedKey, salt: "AA", iv: "AA", tag: "AA", ct: "AA" }));
    expect(await a.readSpent(forgedKey, "forged-token")).toBeNull();
    expect(await raw.exists(`t:spent:${forgedKey}`)).toBe(0);
    expect((await a.size()).quarantined).toBe(1);
  });

  it("lists lock holders by SCAN with their pid, and counts entries and markers", async () => {
    const a = await coordination({ keyPrefix: "sized:" });
    const held = await a.tryLock(keyOf("holder"));
    await a.writeEntry(keyOf("e1"), "e1", set("n1"));
    await a.markSpent(keyOf("s1"), "s1", "refresh_token_reused", "{}");
    expect(await a.holders()).toEqual([{ key: keyOf("holder"), pid: process.pid, ageMs: expect.any(Number) }]);
    const size = await a.size();
    expect(size).toMatchObject({ entries: 1, tombstones: 1, quarantined: 0 });
    expect(size.bytes).toBeGreaterThan(100);
    await held!.release();
  });
});
