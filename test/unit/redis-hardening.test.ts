// The Redis backend against hostile or mistaken keyspaces and credentials, on a real redis-server:
// credentials in the URL's query refused and any query hidden; a lock key without expiry replaced
// atomically instead of blocking its token forever; a key prefix with glob characters counts only
// its own keys; oversized or non-string values set aside without being read whole; set-aside that
// compares by hash (the value never goes back to Redis); Redis' refusals named in the error.
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { parseConfig } from "../../src/config/parse-config.ts";
import { BackendUnavailableError } from "../../src/errors/errors.ts";
import type { TokenSet } from "../../src/oauth/token-wire.ts";
import { GuardRuntime } from "../../src/plugin/guard-runtime.ts";
import { escapeGlob, RedisConnection, SCAN_MAX_KEYS } from "../../src/store/redis-connection.ts";
import { RedisCoordination, type RedisCoordinationOptions } from "../../src/store/redis-coordination.ts";
import { redactUrl } from "../../src/store/redis-url.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

const EXPIRES = Date.now() + 3_600_000;
const keyOf = (token: string) => createHash("sha256").update(token).digest("hex");
const set = (refreshToken: string): TokenSet => ({ accessToken: `at-${refreshToken}`, refreshToken, expiresAt: EXPIRES, extra: {} });
const PASSWORD = "pw-hardening-4e1d";

let redis: RedisServer;
let raw: Redis;
const opened: RedisCoordination[] = [];

function options(extra: Partial<RedisCoordinationOptions> = {}): RedisCoordinationOptions {
  return {
    url: redis.url,
    password: PASSWORD,
    keyPrefix: "h:",
    connectTimeoutMs: 1000,
    commandTimeoutMs: 2000,
    leaseMs: 2000,
    renewMs: 1000,
    retentionMs: 86_400_000,
    ...extra,
  };
}

async function coordination(extra: Partial<RedisCoordinationOptions> = {}): Promise<RedisCoordination> {
  const backend = new RedisCoordination(options(extra));
  opened.push(backend);
  await backend.open();
  return backend;
}

async function failure(extra: Partial<RedisCoordinationOptions>): Promise<BackendUnavailableError> {
  const backend = new RedisCoordination(options(extra));
  opened.push(backend);
  const error = await backend.open().then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BackendUnavailableError);
  return error as BackendUnavailableError;
}

beforeAll(async () => {
  redis = await startRedis(["--requirepass", PASSWORD]);
  raw = new Redis(redis.url, { password: PASSWORD });
  // A user that may read and write h:* but not run scripts: NOPERM on the first EVALSHA.
  await raw.call("ACL", "SETUSER", "no-scripts", "on", ">no-scripts-pw", "~h:*", "&h:*", "+@all", "-evalsha", "-eval");
});

afterAll(async () => {
  await Promise.all(opened.map((backend) => backend.close()));
  raw.disconnect();
  await redis.stop();
});

describe("credentials in the URL", () => {
  const root = { stateDir: "/tmp/rg-unused" };
  it("refuses a password in the query and points to passwordEnv", () => {
    const config = (url: string) => parseConfig({ coordination: { backend: "redis", redis: { url } } }, root);
    expect(() => config("redis://127.0.0.1:6400/?password=s3cret-q")).toThrow(/passwordEnv/);
    expect(() => config("redis://127.0.0.1:6400/0?username=bob&password=s3cret-q")).toThrow(/\?username=/);
    let message = "";
    try {
      config("redis://127.0.0.1:6400/?password=s3cret-q");
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toContain("s3cret-q");
  });

  it("hides any query in what it shows", () => {
    expect(redactUrl("redis://u:pw@127.0.0.1:6400/0?family=6&tls=secret-ish")).toBe("redis://***@127.0.0.1:6400/0?***");
    expect(redactUrl("redis://127.0.0.1:6400")).toBe("redis://127.0.0.1:6400");
  });
});

describe("Redis' refusals are named", () => {
  it("WRONGPASS for a wrong password, without printing it", async () => {
    const error = await failure({ password: "not-the-password-91" });
    expect(error.message).toContain("WRONGPASS");
    expect(error.message).toContain("passwordEnv");
    expect(error.message).not.toContain("not-the-password-91");
  });

  it("status names WRONGPASS too, and never the password", async () => {
    const stateDir = await mkdtemp(join(tmpdir(), "rg-hardening-status-"));
    process.env.RG_HARDENING_WRONG_PW = "wrong-pw-for-status-3b";
    try {
      const parsed = parseConfig(
        {
          coordination: { backend: "redis", redis: { url: redis.url, passwordEnv: "RG_HARDENING_WRONG_PW", connectTimeoutMs: 1000 } },
          providers: { "openai-codex": { tokenUrl: "http://127.0.0.1:1/oauth/token" } },
        },
        { stateDir },
      );
      const quiet = () => undefined;
      const status = await new GuardRuntime(parsed, {
        logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
        stateDir,
      }).report();
      expect(status.coordination.reachable).toBe(false);
      expect(status.coordination.problem).toContain("WRONGPASS");
      expect(JSON.stringify(status)).not.toContain("wrong-pw-for-status-3b");
    } finally {
      delete process.env.RG_HARDENING_WRONG_PW;
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it("NOAUTH when Redis wants a password and none is given", async () => {
    const { password: _unused, ...rest } = options();
    const backend = new RedisCoordination(rest);
    opened.push(backend);
    const error = await backend.open().then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toContain("NOAUTH");
  });

  it("NOPERM when the ACL user may not run a command the backend needs", async () => {
    const backend = await coordination({ username: "no-scripts", password: "no-scripts-pw" });
    const error = await backend.tryLock(keyOf("noperm")).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect(error?.message).toContain("NOPERM");
    expect(error?.message).toContain("docs/redis.md");
  });
});

describe("a hostile keyspace", () => {
  it("a lock key without expiry (PERSIST) is treated as blocked and replaced atomically", async () => {
    const blocked: string[] = [];
    const [a, b] = [await coordination(), await coordination({ events: { onBlocked: (path, what) => blocked.push(`${path} ${what}`) } })];
    const key = keyOf("persisted-lock");
    const held = await a.tryLock(key);
    expect(held).not.toBeNull();
    expect(await raw.persist(`h:lock:${key}`)).toBe(1);
    // A holder that is gone for good (its heartbeat stopped) leaves a lock that never expires.
    await held!.release().catch(() => undefined);
    await raw.set(`h:lock:${key}`, "planted");
    expect(await raw.pttl(`h:lock:${key}`)).toBe(-1);
    const taken = await b.tryLock(key);
    expect(taken).not.toBeNull();
    expect(blocked).toHaveLength(1);
    expect(blocked[0]).toContain("no expiry");
    const ttl = await raw.pttl(`h:lock:${key}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2000);
    await taken!.release();
  });

  it("the owner record is JSON like the file lock's, and status reads its pid and age", async () => {
    const backend = await coordination({ keyPrefix: "json:" });
    const key = keyOf("json-owner");
    const held = await backend.tryLock(key);
    const record = JSON.parse((await raw.get(`json:lock:${key}`))!) as Record<string, unknown>;
    expect(Object.keys(record).sort()).toEqual(["host", "nonce", "pid", "since"]);
    expect(record.pid).toBe(process.pid);
    expect((await backend.holders()).map((h) => h.pid)).toEqual([process.pid]);
    await held!.release();
  });

  it("a key prefix with glob characters counts only its own keys (SCAN MATCH escaped)", async () => {
    const star = await coordination({ keyPrefix: "g*:" });
    const other = await coordination({ keyPrefix: "gX:" });
    const key = keyOf("glob");
    await other.writeEntry(key, "rt-glob", set("rt-glob-next"));
    const held = await other.tryLock(key);
    expect((await star.size()).entries).toBe(0);
    expect(await star.holders()).toEqual([]);
    expect((await other.size()).entries).toBe(1);
    await star.writeEntry(key, "rt-glob", set("rt-glob-star"));
    expect((await star.size()).entries).toBe(1);
    await held!.release();
  });

  it("an entry over 1 MiB is set aside by its size without being read, and the writer then wins", async () => {
    const quarantined: string[] = [];
    const backend = await coordination({ onQuarantine: (error) => quarantined.push(error.message) });
    const key = keyOf("huge");
    await raw.set(`h:entry:${key}`, "x".repeat(2 * 1024 * 1024));
    const monitor = await raw.monitor();
    const sentBack: number[] = [];
    monitor.on("monitor", (_time: string, args: string[]) => sentBack.push(Math.max(...args.map((arg) => arg.length))));
    expect(await backend.readEntry(key, "rt-huge")).toBeNull();
    monitor.disconnect();
    expect(quarantined).toHaveLength(1);
    expect(quarantined[0]).toContain("larger than 1048576 bytes");
    expect(await raw.exists(`h:entry:${key}`)).toBe(0);
    expect(Math.max(...sentBack)).toBeLessThan(10_000);
    const stored = await backend.writeEntry(key, "rt-huge", set("rt-huge-next"));
    expect(stored.refreshToken).toBe("rt-huge-next");
  });

  it("a value of another type is set aside instead of failing every refresh with WRONGTYPE", async () => {
    const backend = await coordination();
    const key = keyOf("wrong-type");
    await raw.hset(`h:spent:${key}`, "a", "b");
    expect(await backend.readSpent(key, "rt-wrong-type")).toBeNull();
    expect(await raw.exists(`h:spent:${key}`)).toBe(0);
  });

  it("set-aside compares by hash inside Redis: the unreadable value is never sent back, and a value that changed stays", async () => {
    const quarantined: string[] = [];
    const backend = await coordination({ onQuarantine: (error) => quarantined.push(error.message) });
    const key = keyOf("garbage");
    const garbage = `garbage-${"g".repeat(5000)}`;
    await raw.set(`h:entry:${key}`, garbage, "PX", 60_000);
    const monitor = await raw.monitor();
    const commands: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[]) => commands.push(args));
    expect(await backend.readEntry(key, "rt-garbage")).toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 100));
    monitor.disconnect();
    expect(quarantined).toHaveLength(1);
    expect(commands.length).toBeGreaterThan(0);
    expect(commands.filter((args) => args.some((arg) => arg.includes(garbage)))).toEqual([]);
    const aside = await raw.keys("h:aside:*");
    expect(aside.length).toBeGreaterThan(0);
    expect(await raw.pttl(aside[0]!)).toBeGreaterThan(0);
  });
});

describe("SCAN bounded", () => {
  it("stops after SCAN_MAX_KEYS keys when the cursor never comes back to 0, and keeps only keys with the exact prefix", async () => {
    const connection = new RedisConnection({ url: redis.url, password: PASSWORD, connectTimeoutMs: 1000, commandTimeoutMs: 1000 });
    let rounds = 0;
    // A server (or proxy) whose cursor never ends and that answers MATCH loosely.
    (connection.client as unknown as { scan: () => Promise<[string, string[]]> }).scan = async () => {
      rounds += 1;
      return [String(rounds), [`s:lock:${rounds}`, `sX:lock:${rounds}`, ...Array.from({ length: 98 }, (_, i) => `s:lock:${rounds}-${i}`)]];
    };
    const { keys, complete } = await connection.scan("s:", "lock:*");
    connection.close();
    expect(complete).toBe(false);
    expect(keys).toHaveLength(SCAN_MAX_KEYS);
    expect(keys.every((key) => key.startsWith("s:"))).toBe(true);
    expect(rounds).toBeLessThanOrEqual(Math.ceil(SCAN_MAX_KEYS / 99) + 1);
    expect(escapeGlob("a*b?[c]\\")).toBe("a\\*b\\?\\[c\\]\\\\");
  });
});
