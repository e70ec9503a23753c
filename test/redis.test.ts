// Processes that share no disk, coordinated only through a real Redis: every simulated agent has a
// guard directory of its own (as if on its own machine) and the same Redis, started by the test on
// a free port. Without Redis those processes race and reuse the token; with it they redeem once.
// Then the faults: a holder killed or frozen past its lease, frozen after sending, Redis restarted
// mid-rotation, Redis unreachable (fail closed, or the file fallback when asked for).
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { formatStatus } from "../src/cli/status-report.ts";
import { parseConfig } from "../src/config/parse-config.ts";
import { GuardRuntime } from "../src/plugin/guard-runtime.ts";
import { Agent, type AgentConfig } from "./support/agent-pool.ts";
import { freePort, startRedis } from "./support/redis-server.ts";
import { type StandInEndpoint, startStandIn } from "./support/token-endpoint-server.ts";

const keyOf = (token: string) => createHash("sha256").update(token).digest("hex");
const servers: StandInEndpoint[] = [];
const allAgents: Agent[] = [];
const outputs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  await Promise.all(allAgents.map((agent) => agent.stop()));
  await Promise.all(cleanups.map((cleanup) => cleanup()));
});

/** A stand-in endpoint, a Redis of its own, and agents each with a guard directory of its own. */
async function scenario(options: { latencyMs?: number; redis?: boolean; redisArgs?: string[] } = {}) {
  const server = await startStandIn({ latencyMs: options.latencyMs ?? 20 });
  servers.push(server);
  const redis = options.redis === false ? null : await startRedis(options.redisArgs);
  const root = await mkdtemp(join(tmpdir(), "rg-redis-machines-"));
  cleanups.push(async () => {
    await server.stop();
    await redis?.stop();
    await rm(root, { recursive: true, force: true });
  });
  let machines = 0;
  /** `count` processes, each on its own "machine" (own state and guard dir). */
  const agents = async (count: number, extra: Partial<AgentConfig> = {}) => {
    const started: Agent[] = [];
    for (let i = 0; i < count; i += 1) {
      machines += 1;
      const stateDir = join(root, `machine-${machines}`);
      started.push(new Agent({ tokenUrl: server.url, stateDir, ...(redis ? { redis: { url: redis.url } } : {}), ...extra }));
    }
    allAgents.push(...started);
    await Promise.all(started.map((agent) => agent.ready));
    return started;
  };
  return { server, redis: redis!, root, agents };
}

function record<T extends { error?: string }[]>(results: T): T {
  for (const result of results) if (result.error) outputs.push(result.error);
  return results;
}

/** `promise`, or a failure after `ms` that shows what each agent logged and printed (for a hang). */
async function within<T>(promise: Promise<T>, ms: number, agents: Agent[]): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const report = agents.map(
        (agent, i) =>
          `agent ${i} pid ${agent.child.pid} exit ${agent.child.exitCode ?? agent.child.signalCode}:\n${[...agent.logs.map(({ line }) => line), ...agent.output].join("\n")}`,
      );
      reject(new Error(`no answer within ${ms} ms\n${report.join("\n")}`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function logLines(agents: Agent[]): string[] {
  return agents.flatMap((agent) => agent.logs.map(({ line }) => line));
}

async function statusOf(config: Record<string, unknown>, stateDir: string) {
  const parsed = parseConfig({ ...config, providers: { "openai-codex": { tokenUrl: "http://127.0.0.1:1/oauth/token" } } }, {});
  const push = (line: string) => outputs.push(line);
  const status = await new GuardRuntime(parsed, { logger: { debug: push, info: push, warn: push, error: push }, stateDir }).report();
  outputs.push(JSON.stringify(status));
  return status;
}

describe("8 processes × 8 callers on separate machines (own guard dirs) sharing one login", () => {
  it("without Redis: each machine's lock coordinates only itself, so the token is reused and callers fail", async () => {
    const { server, agents } = await scenario({ latencyMs: 40, redis: false });
    const workers = await agents(8);
    const credential = server.issue("acct-no-redis");
    const results = record((await Promise.all(workers.map((worker) => worker.refresh(credential.refresh, 8)))).flat());
    expect(server.counters.requests).toBeGreaterThan(1);
    expect(server.counters.reuses).toBeGreaterThan(0);
    expect(results.filter((result) => result.status !== 200).length).toBeGreaterThan(0);
    await Promise.all(workers.map((worker) => worker.stop()));
  });

  it("with Redis: exactly one redemption per rotation over 5 rotations, no reuse, no failure", async () => {
    const { server, agents } = await scenario({ latencyMs: 40 });
    const workers = await agents(8);
    let token = server.issue("acct-redis").refresh;
    for (let rotation = 1; rotation <= 5; rotation += 1) {
      const results = record((await Promise.all(workers.map((worker) => worker.refresh(token, 8)))).flat());
      expect(results).toHaveLength(64);
      expect(results.filter((result) => result.status !== 200).map((result) => result.error)).toEqual([]);
      const successors = new Set(results.map((result) => result.refresh));
      expect(successors.size).toBe(1);
      token = [...successors][0]!;
      expect(server.refreshLive(token)).toBe(true);
      expect(results.every((result) => server.accessValid(result.access!))).toBe(true);
      expect(server.counters.redemptions).toBe(rotation);
    }
    expect(server.counters.reuses).toBe(0);
    expect(server.counters.invalid).toBe(0);
    const events = workers.flatMap((worker) => worker.events);
    expect(events.filter((type) => type === "redeemed")).toHaveLength(5);
    expect(events.filter((type) => type === "failed")).toEqual([]);
    await Promise.all(workers.map((worker) => worker.stop()));
  });
});

describe("a Redis lock holder killed or frozen", () => {
  it("SIGKILL before the request left: another machine takes over when the lease runs out and redeems once", async () => {
    const { server, agents } = await scenario();
    const [holder] = await agents(1, { pauseAt: "before-post" });
    const [sibling] = await agents(1);
    const credential = server.issue("acct-redis-kill");
    void holder!.refresh(credential.refresh, 1);
    await holder!.stage();
    holder!.child.kill("SIGKILL");
    const results = record(await sibling!.refresh(credential.refresh, 4));
    expect(results.map((result) => result.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(results.map((result) => result.refresh)).size).toBe(1);
    expect(server.refreshLive(results[0]!.refresh!)).toBe(true);
    expect(server.counters.redemptions).toBe(1);
    expect(server.counters.reuses).toBe(0);
  });

  it("SIGSTOP past the lease before sending, then SIGCONT: the other machine redeems, the resumed holder steps back", async () => {
    const { server, agents } = await scenario();
    const [holder] = await agents(1, { pauseAt: "before-post" });
    const [sibling] = await agents(1);
    const credential = server.issue("acct-redis-stop");
    const held = holder!.refresh(credential.refresh, 1);
    await holder!.stage();
    holder!.child.kill("SIGSTOP");
    const results = record(await sibling!.refresh(credential.refresh, 2));
    expect(results.map((result) => result.status)).toEqual([200, 200]);
    holder!.child.kill("SIGCONT");
    holder!.resume();
    const [resumed] = record(await held);
    expect(resumed!.status).toBe(200);
    expect(resumed!.refresh).toBe(results[0]!.refresh);
    expect(server.counters.redemptions).toBe(1);
    expect(server.counters.reuses).toBe(0);
    expect(logLines([holder!]).some((line) => line.includes("reason=lock_compromised"))).toBe(true);
  });

  it("lease expiring while the holder is frozen after sending: others fail meanwhile, the resumed holder journals, later callers get its successor", async () => {
    const { server, agents } = await scenario();
    const [holder] = await agents(1, { pauseAt: "response-received" });
    const [sibling, later] = await agents(2);
    const credential = server.issue("acct-redis-stop-late");
    const held = holder!.refresh(credential.refresh, 1);
    await holder!.stage();
    holder!.child.kill("SIGSTOP");
    // The lease (2 s) runs out; the sibling takes the lock and is told the token was reused.
    const [during] = record(await sibling!.refresh(credential.refresh, 1));
    expect(during!.status).toBe(401);
    holder!.child.kill("SIGCONT");
    holder!.resume();
    const [resumed] = record(await held);
    expect(resumed!.status).toBe(200);
    const [after] = record(await later!.refresh(credential.refresh, 1));
    expect(after!.status).toBe(200);
    expect(after!.refresh).toBe(resumed!.refresh);
    expect(server.refreshLive(after!.refresh!)).toBe(true);
    expect(server.counters.redemptions).toBe(1);
  });
});

describe("Redis itself failing", () => {
  it("Redis crashes (SIGKILL) and restarts mid-rotation while the holder waits for the endpoint: one redemption, no reuse, every caller served", async () => {
    const { server, redis, agents } = await scenario();
    const [holder] = await agents(1, { pauseAt: "response-received" });
    const others = await agents(3);
    const credential = server.issue("acct-redis-restart");
    const held = holder!.refresh(credential.refresh, 1);
    await within(holder!.stage(), 20_000, [holder!]);
    const waiting = Promise.all(others.map((agent) => agent.refresh(credential.refresh, 2)));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await within(redis.signal("SIGKILL"), 10_000, []);
    await within(redis.start(), 20_000, []);
    holder!.resume();
    const results = record(
      await within(
        Promise.all([held, waiting]).then(([h, w]) => [...h, ...w.flat()]),
        30_000,
        [holder!, ...others],
      ),
    );
    expect(results.map((result) => result.status)).toEqual(Array(7).fill(200));
    expect(new Set(results.map((result) => result.refresh)).size).toBe(1);
    expect(server.counters.redemptions).toBe(1);
    expect(server.counters.reuses).toBe(0);
    // And the next rotation goes through the restarted server as usual (the holder, if it redeems
    // again, pauses at the same stage: let it go on).
    void holder!.stage().then(() => holder!.resume());
    const next = record(
      (
        await within(Promise.all([holder!, ...others].map((agent) => agent.refresh(results[0]!.refresh!, 2))), 20_000, [holder!, ...others])
      ).flat(),
    );
    expect(next.every((result) => result.status === 200 && result.refresh === next[0]!.refresh)).toBe(true);
    expect(server.counters.redemptions).toBe(2);
    expect(server.counters.reuses).toBe(0);
  });

  it("Redis unreachable, default: the refresh fails closed naming the URL without its password, and nothing is sent", async () => {
    const { server, agents } = await scenario({ redis: false });
    const url = `redis://default:hunter2-secret@127.0.0.1:${await freePort()}`;
    const [agent] = await agents(1, { redis: { url, connectTimeoutMs: 500 } });
    const credential = server.issue("acct-redis-down");
    const results = record(await agent!.refresh(credential.refresh, 2));
    expect(results.map((result) => result.status)).toEqual([0, 0]);
    const shown = url.replace(":hunter2-secret", "");
    for (const result of results) {
      expect(result.error).toContain(`Redis at ${shown}`);
      expect(result.error).toContain("fail closed");
      expect(result.error).toContain('onUnavailable to "file"');
    }
    expect(server.counters.requests).toBe(0);
    const texts = [...logLines([agent!]), ...results.map((result) => result.error!), ...agent!.output];
    expect(texts.some((text) => text.includes("REFRESH_GUARD_BACKEND_UNAVAILABLE"))).toBe(true);
    expect(texts.filter((text) => text.includes("hunter2-secret"))).toEqual([]);
  });

  it('Redis unreachable with onUnavailable "file": falls back to the local file lock with a warning and still redeems once', async () => {
    const { server, agents } = await scenario({ redis: false });
    const url = `redis://127.0.0.1:${await freePort()}`;
    const [agent] = await agents(1, { redis: { url, connectTimeoutMs: 500, onUnavailable: "file" } });
    const credential = server.issue("acct-redis-fallback");
    const results = record(await agent!.refresh(credential.refresh, 4));
    expect(results.map((result) => result.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(results.map((result) => result.refresh)).size).toBe(1);
    expect(server.counters.redemptions).toBe(1);
    const warnings = logLines([agent!]).filter((line) => line.includes("reason=backend_unavailable"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`Redis at ${url} is unreachable; falling back to the local file lock`);
  });
});

describe("credentials", () => {
  it("takes the password from the environment variable passwordEnv names, and never prints it", async () => {
    const password = "pw-from-env-7f3a9c";
    const { server, redis, agents } = await scenario({ redisArgs: ["--requirepass", password] });
    process.env.RG_TEST_REDIS_PASSWORD = password;
    try {
      const [withPassword] = await agents(1, { redis: { url: redis.url, passwordEnv: "RG_TEST_REDIS_PASSWORD" } });
      const [withoutPassword] = await agents(1, { redis: { url: redis.url, connectTimeoutMs: 1000 } });
      const [unset] = await agents(1, { redis: { url: redis.url, passwordEnv: "RG_TEST_REDIS_PASSWORD_UNSET" } });
      const credential = server.issue("acct-redis-auth");
      const [ok] = record(await withPassword!.refresh(credential.refresh, 1));
      expect(ok!.status).toBe(200);
      expect(server.counters.redemptions).toBe(1);
      // Without the password Redis refuses: fail closed, nothing sent; with the variable unset, the config error names it.
      const [refused] = record(await withoutPassword!.refresh(ok!.refresh!, 1));
      expect(refused!.status).toBe(0);
      expect(refused!.error).toContain(`Redis at ${redis.url}`);
      expect(refused!.error).toContain("fail closed");
      const [missing] = record(await unset!.refresh(ok!.refresh!, 1));
      expect(missing!.error).toContain("RG_TEST_REDIS_PASSWORD_UNSET is not set");
      expect(server.counters.requests).toBe(1);
      const texts = [
        ...outputs,
        ...logLines([withPassword!, withoutPassword!, unset!]),
        ...[withPassword!, withoutPassword!, unset!].flatMap((a) => a.output),
      ];
      expect(texts.filter((text) => text.includes(password))).toEqual([]);
    } finally {
      delete process.env.RG_TEST_REDIS_PASSWORD;
    }
  });
});

describe("status", () => {
  it("shows the backend, its reachability and latency, and the held locks and entries in Redis", async () => {
    const { server, redis, root, agents } = await scenario();
    const [agent] = await agents(1, { pauseAt: "journaled" });
    const credential = server.issue("acct-redis-status");
    const pending = agent!.refresh(credential.refresh, 1);
    await agent!.stage();
    const status = await statusOf({ coordination: { backend: "redis", redis: { url: redis.url } } }, join(root, "status-machine"));
    agent!.resume();
    record(await pending);
    expect(status.coordination).toMatchObject({ backend: "redis", location: redis.url, reachable: true, onUnavailable: "fail" });
    expect(status.coordination.latencyMs).toBeGreaterThanOrEqual(0);
    expect(status.locks.map((lock) => lock.key)).toEqual([keyOf(credential.refresh).slice(0, 8)]);
    expect(status.locks[0]!.pid).toBe(agent!.child.pid);
    expect(status.journal.entries).toBe(1);
    const text = formatStatus({
      plugin: { id: "refresh-guard", version: "test" },
      host: { version: null, supported: true, note: "", hook: "attached", seam: "global-fetch", seams: ["global-fetch"] },
      guard: status,
    });
    expect(text).toContain(`coordination: redis ${redis.url} (reachable, ping `);
  });

  it("shows an unreachable Redis and what refreshes do meanwhile", async () => {
    const root = await mkdtemp(join(tmpdir(), "rg-redis-status-"));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const url = `redis://127.0.0.1:${await freePort()}`;
    const status = await statusOf(
      { coordination: { backend: "redis", redis: { url, connectTimeoutMs: 300, onUnavailable: "file" } } },
      root,
    );
    expect(status.coordination).toMatchObject({ backend: "redis", location: url, reachable: false, onUnavailable: "file" });
    expect(status.coordination.problem).toContain(`cannot reach Redis at ${url}`);
    const text = formatStatus({
      plugin: { id: "refresh-guard", version: "test" },
      host: { version: null, supported: true, note: "", hook: "attached", seam: "global-fetch", seams: ["global-fetch"] },
      guard: status,
    });
    expect(text).toContain(`coordination: redis ${url} (UNREACHABLE; when unreachable falls back to the file lock)`);
  });
});

describe("secrets", () => {
  it("no token appears in any log line, error, status or process output of the Redis suite", () => {
    const secrets = servers.flatMap((server) => server.issuedSecrets());
    expect(secrets.length).toBeGreaterThan(20);
    const texts = [...outputs, ...allAgents.flatMap((agent) => [...agent.logs.map(({ line }) => line), ...agent.output])];
    expect(texts.length).toBeGreaterThan(20);
    expect(texts.filter((text) => secrets.some((secret) => text.includes(secret)))).toEqual([]);
  });
});
