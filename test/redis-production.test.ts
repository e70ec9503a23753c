// Redis the way production runs it, against real servers the test starts on loopback: TLS with a
// private CA (and a client certificate), one ACL user per install (a second tenant gets NOPERM on
// our keys and our processes still redeem once per rotation), and Sentinel failover (the primary
// SIGKILLed while a holder waits for the token endpoint; one redemption per rotation over several
// rotations and failovers). Every server, sentinel and agent is stopped on every path.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { formatStatus } from "../src/cli/status-report.ts";
import { parseConfig } from "../src/config/parse-config.ts";
import { GuardRuntime } from "../src/plugin/guard-runtime.ts";
import { RedisCoordination } from "../src/store/redis-coordination.ts";
import { Agent, type AgentConfig } from "./support/agent-pool.ts";
import { freePort, type RedisSentinel, type RedisServer, startRedis, startSentinel } from "./support/redis-server.ts";
import { createTestTls, type TestTls } from "./support/tls.ts";
import { type StandInEndpoint, startStandIn } from "./support/token-endpoint-server.ts";

const keyOf = (token: string) => createHash("sha256").update(token).digest("hex");
const cleanups: (() => Promise<void> | void)[] = [];
const allAgents: Agent[] = [];
const texts: string[] = [];
let secrets: string[] = [];

afterAll(async () => {
  await Promise.all(allAgents.map((agent) => agent.stop()));
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function endpoint(latencyMs = 20): Promise<{ server: StandInEndpoint; root: string }> {
  const server = await startStandIn({ latencyMs });
  const root = await mkdtemp(join(tmpdir(), "rg-redis-prod-"));
  cleanups.push(async () => {
    await server.stop();
    await rm(root, { recursive: true, force: true });
  });
  return { server, root };
}

let machines = 0;
async function agents(root: string, server: StandInEndpoint, count: number, extra: Partial<AgentConfig>): Promise<Agent[]> {
  const started: Agent[] = [];
  for (let i = 0; i < count; i += 1) {
    machines += 1;
    started.push(new Agent({ tokenUrl: server.url, stateDir: join(root, `machine-${machines}`), ...extra }));
  }
  allAgents.push(...started);
  await Promise.all(started.map((agent) => agent.ready));
  return started;
}

function record<T extends { error?: string }[]>(results: T): T {
  for (const result of results) if (result.error) texts.push(result.error);
  return results;
}

async function statusOf(config: Record<string, unknown>, stateDir: string) {
  const parsed = parseConfig({ ...config, providers: { "openai-codex": { tokenUrl: "http://127.0.0.1:1/oauth/token" } } }, { stateDir });
  const push = (line: string) => texts.push(line);
  const status = await new GuardRuntime(parsed, { logger: { debug: push, info: push, warn: push, error: push }, stateDir }).report();
  texts.push(JSON.stringify(status), statusText(status));
  return status;
}

function statusText(status: Awaited<ReturnType<GuardRuntime["report"]>>): string {
  return formatStatus({
    plugin: { id: "refresh-guard", version: "test" },
    host: { version: null, supported: true, note: "", hook: "attached", seam: "global-fetch", seams: ["global-fetch"] },
    guard: status,
  });
}

/** `rotations` rotations of one login by `workers` × `callers`: each must redeem exactly once. */
async function rotate(server: StandInEndpoint, workers: Agent[], first: string, rotations: number, callers = 3): Promise<string> {
  let token = first;
  const before = server.counters.redemptions;
  for (let rotation = 1; rotation <= rotations; rotation += 1) {
    const results = record((await Promise.all(workers.map((worker) => worker.refresh(token, callers)))).flat());
    expect(results.filter((result) => result.status !== 200).map((result) => result.error)).toEqual([]);
    const successors = new Set(results.map((result) => result.refresh));
    expect(successors.size).toBe(1);
    token = [...successors][0] ?? "";
    expect(server.counters.redemptions - before).toBe(rotation);
  }
  expect(server.counters.reuses).toBe(0);
  return token;
}

describe("TLS (rediss://) with a private CA", () => {
  let tls: TestTls;
  let otherCa: TestTls;
  let redis: RedisServer;
  let url: string;
  const password = "tls-pw-5c2e8a";

  async function tlsRedis(): Promise<void> {
    tls = createTestTls({ hosts: ["redis.internal.test"] });
    otherCa = createTestTls({ hosts: ["redis.internal.test"] });
    cleanups.push(
      () => tls.cleanup(),
      () => otherCa.cleanup(),
    );
    const tlsPort = await freePort();
    redis = await startRedis([
      "--port",
      "0",
      "--tls-port",
      String(tlsPort),
      "--tls-cert-file",
      tls.certPath,
      "--tls-key-file",
      tls.keyPath,
      "--tls-ca-cert-file",
      tls.caCertPath,
      "--tls-auth-clients",
      "optional",
      "--requirepass",
      password,
    ]);
    cleanups.push(() => redis.stop());
    url = `rediss://127.0.0.1:${tlsPort}`;
    secrets = [...secrets, password];
  }

  beforeAll(tlsRedis);

  it("processes that trust the CA coordinate over TLS: one redemption per rotation; status says TLS", async () => {
    const { server, root } = await endpoint();
    process.env.RG_TLS_REDIS_PASSWORD = password;
    try {
      const workers = await agents(root, server, 3, {
        redis: { url, passwordEnv: "RG_TLS_REDIS_PASSWORD", tlsCaFile: tls.caCertPath, connectTimeoutMs: 10_000 },
      });
      await rotate(server, workers, server.issue("acct-tls").refresh, 3);
      const status = await statusOf(
        {
          coordination: {
            backend: "redis",
            redis: { url, passwordEnv: "RG_TLS_REDIS_PASSWORD", tlsCaFile: tls.caCertPath, connectTimeoutMs: 10_000 },
          },
        },
        join(root, "status"),
      );
      expect(status.coordination.reachable).toBe(true);
      expect(status.coordination.tls).toBe(true);
      expect(statusText(status)).toContain("TLS");
    } finally {
      delete process.env.RG_TLS_REDIS_PASSWORD;
    }
  });

  it("a wrong CA fails closed with an error that names the URL (no secret) and the certificate problem; nothing is sent", async () => {
    const { server, root } = await endpoint();
    const withPassword = url.replace("rediss://", `rediss://default:${password}@`);
    const [agent] = await agents(root, server, 1, { redis: { url: withPassword, tlsCaFile: otherCa.caCertPath, connectTimeoutMs: 1000 } });
    const results = record(await agent!.refresh(server.issue("acct-tls-wrong-ca").refresh, 2));
    expect(results.map((result) => result.status)).toEqual([0, 0]);
    for (const result of results) {
      expect(result.error).toContain(`Redis at ${url.replace("rediss://", "rediss://default@")}`);
      expect(result.error).toMatch(/certificate/i);
      expect(result.error).toContain("tlsCaFile");
      expect(result.error).toContain("fail closed");
      expect(result.error).not.toContain(password);
    }
    expect(server.counters.requests).toBe(0);
  });

  it("checks the server name: tlsServerName that the certificate carries connects, another one does not", async () => {
    const options = {
      url,
      password,
      keyPrefix: "sni:",
      connectTimeoutMs: 1000,
      commandTimeoutMs: 1000,
      leaseMs: 2000,
      renewMs: 1000,
      retentionMs: 60_000,
    };
    const good = new RedisCoordination({ ...options, tls: { caFile: tls.caCertPath, serverName: "redis.internal.test" } });
    const bad = new RedisCoordination({ ...options, tls: { caFile: tls.caCertPath, serverName: "other.example.test" } });
    try {
      await good.open();
      const error = await bad.open().then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(error?.message).toMatch(/other\.example\.test|altnames|hostname/i);
    } finally {
      await good.close();
      await bad.close();
    }
  });

  it("a server that requires client certificates refuses a client without one and accepts tlsCertFile/tlsKeyFile", async () => {
    const admin = new Redis(url, { password, tls: { ca: readFileSync(tls.caCertPath) }, lazyConnect: true });
    await admin.connect();
    await admin.config("SET", "tls-auth-clients", "yes");
    admin.disconnect();
    const options = {
      url,
      password,
      keyPrefix: "mtls:",
      connectTimeoutMs: 1000,
      commandTimeoutMs: 1000,
      leaseMs: 2000,
      renewMs: 1000,
      retentionMs: 60_000,
    };
    const without = new RedisCoordination({ ...options, tls: { caFile: tls.caCertPath } });
    const withCert = new RedisCoordination({ ...options, tls: { caFile: tls.caCertPath, certFile: tls.certPath, keyFile: tls.keyPath } });
    try {
      await expect(without.open()).rejects.toThrow(/fail closed/);
      await withCert.open();
      const held = await withCert.tryLock(keyOf("mtls"));
      expect(held).not.toBeNull();
      await held!.release();
    } finally {
      await without.close();
      await withCert.close();
    }
  });
});

/** The `ACL SETUSER` line docs/redis.md gives, for `prefix` and `password`. */
function aclLine(prefix: string, user: string, password: string): string[] {
  const doc = readFileSync(new URL("../docs/redis.md", import.meta.url), "utf8");
  const line = doc.split("\n").find((l) => l.startsWith("ACL SETUSER "));
  if (line === undefined) throw new Error("docs/redis.md gives no ACL SETUSER line");
  return line
    .replaceAll("refresh-guard-a:", prefix)
    .replaceAll("refresh-guard-a", user)
    .replaceAll("CHANGE-ME", password)
    .split(" ")
    .slice(2);
}

describe("one ACL user per install (the ACL SETUSER line of docs/redis.md)", () => {
  it("a second tenant gets NOPERM on our keys while our processes redeem once per rotation", async () => {
    const adminPassword = "acl-admin-9d1f";
    const redis = await startRedis(["--requirepass", adminPassword]);
    cleanups.push(() => redis.stop());
    const admin = new Redis(redis.url, { password: adminPassword });
    cleanups.push(() => admin.disconnect());
    const [ours, theirs] = [
      { user: "rg-tenant-a", password: "pw-tenant-a-61b0", prefix: "rg-a:" },
      { user: "rg-tenant-b", password: "pw-tenant-b-0c77", prefix: "rg-b:" },
    ];
    secrets = [...secrets, adminPassword, ours.password, theirs.password];
    for (const tenant of [ours, theirs]) await admin.call("ACL", "SETUSER", ...aclLine(tenant.prefix, tenant.user, tenant.password));
    const { server, root } = await endpoint(150);
    process.env.RG_ACL_USER = ours.user;
    process.env.RG_ACL_PASSWORD = ours.password;
    const intruder = new Redis(redis.url, { username: theirs.user, password: theirs.password });
    cleanups.push(() => intruder.disconnect());
    let stop = false;
    const refusals = new Map<string, number>();
    try {
      // One process names the user in the URL, two through usernameEnv.
      const base = { keyPrefix: ours.prefix, passwordEnv: "RG_ACL_PASSWORD" };
      const workers = [
        ...(await agents(root, server, 1, { redis: { ...base, url: redis.url.replace("redis://", `redis://${ours.user}@`) } })),
        ...(await agents(root, server, 2, { redis: { ...base, url: redis.url, usernameEnv: "RG_ACL_USER" } })),
      ];
      // The other tenant tries, all the while, to delete our lease, plant a lock, and fake a wake-up.
      const attack = (async () => {
        while (!stop) {
          const { keys } = await scanAll(intruder, `${ours.prefix}*`);
          const locks = keys.filter((key) => key.startsWith(`${ours.prefix}lock:`));
          const target = locks[0] ?? `${ours.prefix}lock:${"0".repeat(64)}`;
          for (const [name, attempt] of [
            ["DEL", () => intruder.del(target)],
            ["SET", () => intruder.set(target, "planted")],
            ["PUBLISH", () => intruder.publish(`${ours.prefix}changed`, target.slice(-64))],
          ] as const) {
            await attempt().then(
              () => refusals.set(`${name} allowed`, (refusals.get(`${name} allowed`) ?? 0) + 1),
              (error: Error) => {
                const code = error.message.split(" ")[0] ?? "";
                refusals.set(`${name} ${code}`, (refusals.get(`${name} ${code}`) ?? 0) + 1);
              },
            );
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      await rotate(server, workers, server.issue("acct-acl").refresh, 3);
      stop = true;
      await attack;
      expect([...refusals.keys()].sort()).toEqual(["DEL NOPERM", "PUBLISH NOPERM", "SET NOPERM"]);
      // Our own user cannot touch the other tenant's keys either.
      const ourClient = new Redis(redis.url, { username: ours.user, password: ours.password });
      await expect(ourClient.set(`${theirs.prefix}lock:x`, "x")).rejects.toThrow(/NOPERM/);
      ourClient.disconnect();
    } finally {
      stop = true;
      delete process.env.RG_ACL_USER;
      delete process.env.RG_ACL_PASSWORD;
    }
  });
});

async function scanAll(client: Redis, pattern: string): Promise<{ keys: string[] }> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await client.scan(cursor, "MATCH", pattern, "COUNT", 500);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== "0");
  return { keys };
}

describe("Sentinel: a primary, a replica and three sentinels on loopback", () => {
  it("the primary SIGKILLed while the holder waits for the endpoint, three times: one redemption per rotation, status shows the primary", async () => {
    const MASTER = "rg-primary";
    const first = await startRedis();
    const second = await startRedis(["--replicaof", "127.0.0.1", String(first.port)]);
    const servers = new Map<number, RedisServer>([
      [first.port, first],
      [second.port, second],
    ]);
    cleanups.push(async () => {
      for (const server of servers.values()) await server.stop();
    });
    const sentinels: RedisSentinel[] = [];
    cleanups.push(async () => {
      for (const sentinel of sentinels) await sentinel.stop();
    });
    for (let i = 0; i < 3; i += 1) sentinels.push(await startSentinel(first.port, 2, MASTER));
    const sentinelClient = new Redis(sentinels[0]!.port, "127.0.0.1");
    cleanups.push(() => sentinelClient.disconnect());
    const primaryPort = async () => Number(((await sentinelClient.call("SENTINEL", "get-master-addr-by-name", MASTER)) as string[])[1]);
    /** Until the current primary has a replica in sync (WAIT needs one). */
    const replicated = async () => {
      for (let i = 0; i < 200; i += 1) {
        const port = await primaryPort();
        const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        probe.on("error", () => undefined);
        const info = await probe.info("replication").catch(() => "");
        probe.disconnect();
        if (/role:master/.test(info) && /slave0:.*state=online/.test(info)) return port;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error("no replica in sync with the primary");
    };
    await replicated();

    const { server, root } = await endpoint();
    const redisConfig = {
      url: "redis://rg-primary",
      sentinels: sentinels.map((sentinel) => sentinel.address),
      masterName: MASTER,
      commandTimeoutMs: 8000,
      connectTimeoutMs: 8000,
    };
    const [holder] = await agents(root, server, 1, {
      pauseAt: "response-received",
      redis: redisConfig,
      pluginConfig: { lock: { staleMs: 10_000 } },
    });
    const others = await agents(root, server, 3, { redis: redisConfig, pluginConfig: { lock: { staleMs: 10_000 } } });
    const everyone = [holder!, ...others];
    let token = server.issue("acct-sentinel").refresh;
    const primaries: number[] = [];
    /** From the SIGKILL to the last caller's answer, per rotation (reported, not asserted). */
    const rideOut: number[] = [];
    for (let rotation = 1; rotation <= 3; rotation += 1) {
      const primary = await replicated();
      primaries.push(primary);
      // The holder asks first and alone, so it takes the lease and redeems; it pauses with the answer in hand.
      const held = holder!.refresh(token, 1);
      await holder!.stage();
      const waiting = Promise.all(others.map((agent) => agent.refresh(token, 2)));
      await new Promise((resolve) => setTimeout(resolve, 200));
      // The holder has the endpoint's answer in hand; the primary dies before it can journal it.
      const victim = servers.get(primary)!;
      await victim.signal("SIGKILL");
      const killedAt = Date.now();
      holder!.resume();
      // The old primary comes back (as an operator or an orchestrator would bring it); Sentinel makes it a replica.
      const back = (async () => {
        while ((await primaryPort()) === primary) await new Promise((resolve) => setTimeout(resolve, 100));
        await victim.start();
      })();
      const results = record([...(await held), ...(await waiting).flat()]);
      rideOut.push(Date.now() - killedAt);
      await back;
      expect(results.map((result) => result.status)).toEqual(Array(7).fill(200));
      const successors = new Set(results.map((result) => result.refresh));
      expect(successors.size).toBe(1);
      token = [...successors][0] ?? "";
      expect(server.refreshLive(token)).toBe(true);
      expect(server.counters.redemptions).toBe(rotation);
      expect(server.counters.reuses).toBe(0);
    }
    expect(new Set(primaries).size).toBe(2);
    process.stdout.write(`sentinel failover: primary SIGKILLed to every caller answered, ms per rotation: ${rideOut.join(", ")}\n`);
    const events = everyone.flatMap((agent) => agent.events);
    expect(events.filter((type) => type === "failed")).toEqual([]);
    const status = await statusOf({ coordination: { backend: "redis", redis: redisConfig } }, join(root, "status"));
    expect(status.coordination.reachable).toBe(true);
    expect(status.coordination.primary).toBe(`127.0.0.1:${await primaryPort()}`);
    expect(status.coordination.sentinels).toEqual(redisConfig.sentinels);
    expect(status.coordination.replicaAcks).toBe(1);
    const text = statusText(status);
    expect(text).toContain(`primary 127.0.0.1:${await primaryPort()}`);
    expect(text).toContain(`sentinels ${redisConfig.sentinels.join(", ")}`);
  }, 120_000);
});

describe("replicaAcks without a replica", () => {
  it("fails closed within commandTimeoutMs: the lease is not acknowledged, nothing is sent, the error says why", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const { server, root } = await endpoint();
    const [agent] = await agents(root, server, 1, { redis: { url: redis.url, replicaAcks: 1, commandTimeoutMs: 500 } });
    const results = record(await agent!.refresh(server.issue("acct-no-replica").refresh, 2));
    expect(results.map((result) => result.status)).toEqual([0, 0]);
    for (const result of results) {
      expect(result.error).toContain("only 0 of 1 replicas acknowledged the lease (replicaAcks)");
      expect(result.error).toContain("fail closed");
    }
    expect(server.counters.requests).toBe(0);
    // The lease it could not have acknowledged was released: nothing blocks the token.
    const raw = new Redis(redis.url);
    expect(await raw.keys("refresh-guard:lock:*")).toEqual([]);
    raw.disconnect();
  });
});

describe("secrets", () => {
  it("no password appears in any error, log line or status of this file", () => {
    const output = [...texts, ...allAgents.flatMap((agent) => [...agent.output, ...agent.logs.map(({ line }) => line)])];
    expect(secrets.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(output.filter((line) => line.includes(secret))).toEqual([]);
  });
});
