// Faults with real processes and signals: every fault ends in a valid token or in one clear,
// actionable error, nothing half-written is ever read, and no token reaches any output.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config/parse-config.ts";
import { GuardRuntime } from "../src/plugin/guard-runtime.ts";
import { Journal } from "../src/store/journal.ts";
import { type Agent, type AgentConfig, startAgents } from "./support/agent-pool.ts";
import { type Fault, type StandInEndpoint, type StandInOptions, startStandIn } from "./support/token-endpoint-server.ts";

const LOGIN = "openclaw models auth login --provider openai-codex";
const keyOf = (token: string) => createHash("sha256").update(token).digest("hex");

// Everything any scenario printed, logged, answered or reported, scanned for tokens at the end.
const servers: StandInEndpoint[] = [];
const allAgents: Agent[] = [];
const outputs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

async function scenario(options: StandInOptions = {}) {
  const server = await startStandIn({ latencyMs: 20, ...options });
  const stateDir = await mkdtemp(join(tmpdir(), "rg-fault-"));
  servers.push(server);
  cleanups.push(async () => {
    await server.stop();
    await rm(stateDir, { recursive: true, force: true });
  });
  const base: AgentConfig = { tokenUrl: server.url, stateDir };
  const agents = async (count: number, extra: Partial<AgentConfig> = {}) => {
    const started = await startAgents(count, { ...base, ...extra });
    allAgents.push(...started);
    return started;
  };
  const guardDir = join(stateDir, "refresh-guard");
  const journal = new Journal({ dir: join(guardDir, "journal"), quarantineDir: join(guardDir, "quarantine"), retentionMs: 86_400_000 });
  const report = async () => {
    const config = parseConfig({ guardDir, providers: { "openai-codex": { tokenUrl: server.url } } }, {});
    const status = await new GuardRuntime(config, { logger: silentLogger(), stateDir }).report();
    outputs.push(JSON.stringify(status));
    return status;
  };
  return { server, stateDir, guardDir, journal, agents, report };
}

function silentLogger() {
  const push = (line: string) => outputs.push(line);
  return { debug: push, info: push, warn: push, error: push };
}

function record<T extends { error?: string }[]>(results: T): T {
  for (const result of results) if (result.error) outputs.push(result.error);
  return results;
}

function logLines(agents: Agent[]): string[] {
  return agents.flatMap((agent) => agent.logs.map(({ line }) => line));
}

afterAll(async () => {
  await Promise.all(allAgents.map((agent) => agent.stop()));
  await Promise.all(cleanups.map((cleanup) => cleanup()));
});

describe("a lock holder killed or frozen at each stage", () => {
  it("SIGKILL before the request left: a sibling takes over after staleness and redeems exactly once", async () => {
    const { server, agents, journal } = await scenario();
    const [sibling] = await agents(1);
    const [holder] = await agents(1, { pauseAt: "before-post" });
    const credential = server.issue("acct-kill-1");
    void holder!.refresh(credential.refresh, 1);
    await holder!.stage();
    holder!.child.kill("SIGKILL");
    const started = Date.now();
    const results = record(await sibling!.refresh(credential.refresh, 4));
    expect(results.map((result) => result.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(results.map((result) => result.refresh)).size).toBe(1);
    expect(server.refreshLive(results[0]!.refresh!)).toBe(true);
    expect(server.counters.redemptions).toBe(1);
    expect(server.counters.reuses).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    const names = await readdir(journal.dir);
    expect(names.filter((name) => name.endsWith(".tmp"))).toEqual([]);
    expect(await journal.read(keyOf(credential.refresh), credential.refresh)).not.toBeNull();
  });

  it("SIGKILL after the endpoint answered, before journaling: siblings get the re-login error once, no retry storm", async () => {
    const { server, agents, report } = await scenario();
    const [holder] = await agents(1, { pauseAt: "response-received" });
    const siblings = await agents(2);
    const credential = server.issue("acct-kill-2");
    void holder!.refresh(credential.refresh, 1);
    await holder!.stage();
    expect(server.counters.redemptions).toBe(1);
    holder!.child.kill("SIGKILL");
    const results = record((await Promise.all(siblings.map((agent) => agent.refresh(credential.refresh, 3)))).flat());
    expect(results.every((result) => result.status === 401)).toBe(true);
    expect(results.every((result) => JSON.parse(result.error!).error.code === "refresh_token_reused")).toBe(true);
    // The dead holder's request and one retry by a sibling; every other caller was answered locally.
    expect(server.counters.requests).toBe(2);
    const failures = logLines(siblings).filter((line) => line.includes("event=failed"));
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((line) => line.includes("reason=relogin_required") && line.includes(LOGIN))).toBe(true);
    const [late] = await agents(1);
    expect(record(await late!.refresh(credential.refresh, 1))[0]!.status).toBe(401);
    expect(server.counters.requests).toBe(2);
    const status = await report();
    expect(status.outcomes.failed).toBeGreaterThanOrEqual(results.length);
    expect(status.recent.some((entry) => entry.reason === "relogin_required")).toBe(true);
  });

  it("SIGKILL between writing a journal entry and linking it: no reader ever sees the unlinked entry", async () => {
    const { server, agents, journal, guardDir } = await scenario();
    const [holder] = await agents(1, { pauseAt: "journal-before-link" });
    const [sibling] = await agents(1);
    const credential = server.issue("acct-kill-3");
    void holder!.refresh(credential.refresh, 1);
    await holder!.stage();
    holder!.child.kill("SIGKILL");
    // Written outside the watched journal directory, whole and synced, but never linked into it.
    const partial = (await readdir(join(guardDir, "tmp"))).filter((name) => name.endsWith(".tmp"));
    expect(partial).toHaveLength(1);
    expect((await readdir(journal.dir)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    expect(await journal.has(keyOf(credential.refresh))).toBe(false);
    const results = record(await sibling!.refresh(credential.refresh, 2));
    expect(results.map((result) => result.status)).toEqual([401, 401]);
    const lines = logLines([sibling!]);
    expect(lines.some((line) => line.includes("journal_quarantined"))).toBe(false);
    expect(lines.some((line) => line.includes(LOGIN))).toBe(true);
    expect(await journal.has(keyOf(credential.refresh))).toBe(false);
    // What is an entry is whole: every *.json in the journal decrypts.
    expect((await readdir(journal.dir)).filter((name) => name.endsWith(".json"))).toEqual([]);
  });

  it("SIGSTOP past the stale time, then SIGCONT: the sibling takes over, the stopped process steps back and writes nothing", async () => {
    const { server, agents, journal } = await scenario();
    const [holder] = await agents(1, { pauseAt: "before-post" });
    const [sibling] = await agents(1);
    const credential = server.issue("acct-stop");
    const held = holder!.refresh(credential.refresh, 1);
    await holder!.stage();
    holder!.child.kill("SIGSTOP");
    const results = record(await sibling!.refresh(credential.refresh, 2));
    expect(results.map((result) => result.status)).toEqual([200, 200]);
    const successor = results[0]!.refresh!;
    holder!.child.kill("SIGCONT");
    holder!.resume();
    const [resumed] = record(await held);
    expect(resumed!.status).toBe(200);
    expect(resumed!.refresh).toBe(successor);
    expect(server.counters.redemptions).toBe(1);
    expect(server.counters.reuses).toBe(0);
    expect(logLines([holder!]).some((line) => line.includes("reason=lock_compromised"))).toBe(true);
    expect((await journal.read(keyOf(credential.refresh), credential.refresh))?.refreshToken).toBe(successor);
  });

  it("SIGSTOP after the endpoint answered: siblings fail meanwhile, the resumed holder journals and later callers recover", async () => {
    const { server, agents } = await scenario();
    const [holder] = await agents(1, { pauseAt: "response-received" });
    const [sibling, later] = await agents(2);
    const credential = server.issue("acct-stop-late");
    const held = holder!.refresh(credential.refresh, 1);
    await holder!.stage();
    holder!.child.kill("SIGSTOP");
    const during = record(await sibling!.refresh(credential.refresh, 1));
    expect(during[0]!.status).toBe(401);
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

describe("family revocation (a reuse revokes every descendant)", () => {
  it("without the guard one reuse kills even the winner's new token", async () => {
    const { server, agents } = await scenario({ familyRevocation: true });
    const unguarded = await agents(4, { guard: false });
    const credential = server.issue("acct-family-off");
    const results = record((await Promise.all(unguarded.map((agent) => agent.refresh(credential.refresh, 1)))).flat());
    const winners = results.filter((result) => result.status === 200);
    expect(winners).toHaveLength(1);
    expect(server.counters.reuses).toBe(3);
    expect(server.refreshLive(winners[0]!.refresh!)).toBe(false);
  });

  it("with the guard there is no reuse, so nothing is revoked over three rotations", async () => {
    const { server, agents } = await scenario({ familyRevocation: true });
    const guarded = await agents(4);
    let token = server.issue("acct-family-on").refresh;
    for (let rotation = 0; rotation < 3; rotation += 1) {
      const results = record((await Promise.all(guarded.map((agent) => agent.refresh(token, 4)))).flat());
      expect(results.every((result) => result.status === 200 && result.refresh === results[0]!.refresh)).toBe(true);
      token = results[0]!.refresh!;
      expect(server.refreshLive(token)).toBe(true);
    }
    expect(server.counters.reuses).toBe(0);
    expect(server.counters.redemptions).toBe(3);
  });
});

describe("endpoint faults", () => {
  const cases: [Fault, (result: { status: number; error?: string }) => void][] = [
    ["hang", (result) => expect(result.error).toMatch(/^TimeoutError/)],
    ["500", (result) => expect(result.status).toBe(500)],
    ["503", (result) => expect(result.status).toBe(503)],
    ["reset", (result) => expect(result.error).toMatch(/^TypeError: fetch failed/)],
    ["invalid-json", (result) => expect(result.error).toMatch(/^SyntaxError/)],
    ["no-refresh-token", (result) => expect(result.error).toBe("incomplete token response")],
  ];
  it.each(cases)("%s: nothing is journaled, the caller sees the failure, the token still works afterwards", async (fault, check) => {
    const { server, agents, journal } = await scenario();
    const [agent] = await agents(1, { pluginConfig: { requestTimeoutMs: 1000 } });
    const credential = server.issue(`acct-${fault}`);
    server.inject(fault);
    const [result] = record(await agent!.refresh(credential.refresh, 1));
    check(result!);
    expect(await journal.has(keyOf(credential.refresh))).toBe(false);
    expect(server.counters.redemptions).toBe(0);
    const [retry] = record(await agent!.refresh(credential.refresh, 1));
    expect(retry!.status).toBe(200);
    expect(server.counters.redemptions).toBe(1);
    expect(logLines([agent!]).some((line) => line.includes("event=failed"))).toBe(true);
  });
});

describe("clock skew on a shared guard directory", () => {
  it("a lock left with an mtime an hour in the future is removed with a warning instead of blocking until timeout", async () => {
    const { server, agents, guardDir } = await scenario();
    const [agent] = await agents(1);
    const warmup = server.issue("acct-skew-warmup");
    await agent!.refresh(warmup.refresh, 1);
    const credential = server.issue("acct-skew");
    const lock = join(guardDir, "locks", `${keyOf(credential.refresh)}.lock`);
    await mkdir(lock, { mode: 0o700 });
    const future = new Date(Date.now() + 3_600_000);
    await utimes(lock, future, future);
    const started = Date.now();
    const [result] = record(await agent!.refresh(credential.refresh, 1));
    expect(result!.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(logLines([agent!]).some((line) => line.includes("reason=lock_clock_skew"))).toBe(true);
  });

  it("a lock with an mtime far in the past counts as stale and is taken over at once", async () => {
    const { server, agents, guardDir } = await scenario();
    const [agent] = await agents(1);
    await agent!.refresh(server.issue("acct-past-warmup").refresh, 1);
    const credential = server.issue("acct-past");
    const lock = join(guardDir, "locks", `${keyOf(credential.refresh)}.lock`);
    await mkdir(lock, { mode: 0o700 });
    await utimes(lock, new Date(0), new Date(0));
    const started = Date.now();
    const [result] = record(await agent!.refresh(credential.refresh, 1));
    expect(result!.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(server.counters.redemptions).toBe(2);
  });
});

describe("bad input", () => {
  it("a corrupt journal entry is treated as absent, moved aside (not deleted) and logged once", async () => {
    const { server, agents, guardDir } = await scenario();
    const [agent] = await agents(1);
    await agent!.refresh(server.issue("acct-corrupt-warmup").refresh, 1);
    const credential = server.issue("acct-corrupt");
    const entry = join(guardDir, "journal", `${keyOf(credential.refresh)}.json`);
    await writeFile(entry, '{"v":1,"key":"trunc', { mode: 0o600 });
    const results = record(await agent!.refresh(credential.refresh, 3));
    expect(results.every((result) => result.status === 200)).toBe(true);
    const quarantined = await readdir(join(guardDir, "quarantine"));
    expect(quarantined).toHaveLength(1);
    expect(await readFile(join(guardDir, "quarantine", quarantined[0]!), "utf8")).toBe('{"v":1,"key":"trunc');
    expect(logLines([agent!]).filter((line) => line.includes("journal_quarantined"))).toHaveLength(1);
  });

  it("torn, corrupt, huge and special agent stores are skipped while recovery adopts the good sibling", async () => {
    const { server, agents, stateDir } = await scenario();
    const store = (agent: string) => join(stateDir, "agents", agent, "agent", "auth-profiles.json");
    for (const agent of ["torn", "garbage", "huge", "fifo", "good"])
      await mkdir(join(stateDir, "agents", agent, "agent"), { recursive: true });
    const original = server.issue("acct-siblings");
    const successor = server.redeemOutside(original.refresh)!; // spent outside the guard
    await writeFile(store("torn"), '{"version":1,"profiles":{"openai-codex:default":{"type":"oauth","refr');
    await writeFile(store("garbage"), "\u0000\u0001 not json");
    await writeFile(store("huge"), Buffer.alloc(5 * 1024 * 1024, 0x20));
    execFileSync("mkfifo", [store("fifo")]);
    const profile = {
      type: "oauth",
      provider: "openai-codex",
      access: successor.access,
      refresh: successor.refresh,
      expires: successor.expires,
      accountId: "acct-siblings",
    };
    await writeFile(store("good"), JSON.stringify({ version: 1, profiles: { "openai-codex:default": profile } }));
    const mine = { ...profile, refresh: original.refresh, access: original.access };
    await mkdir(join(stateDir, "agents", "me", "agent"), { recursive: true });
    await writeFile(store("me"), JSON.stringify({ version: 1, profiles: { "openai-codex:default": mine } }));
    const codexAuth = join(stateDir, "codex-auth.json");
    await writeFile(codexAuth, "{ broken");
    const [agent] = await agents(1, { pluginConfig: { codexAuthFile: codexAuth } });
    const [result] = record(await agent!.refresh(original.refresh, 1));
    expect(result!.status).toBe(200);
    expect(result!.refresh).toBe(successor.refresh);
    expect(result!.access).toBe(successor.access);
    const warnings = logLines([agent!]).filter((line) => line.includes("reason=sibling_unreadable"));
    for (const bad of ["torn", "garbage", "huge", "fifo"]) expect(warnings.some((line) => line.includes(store(bad)))).toBe(true);
    expect(warnings.some((line) => line.includes(codexAuth))).toBe(true);
    expect(logLines([agent!]).some((line) => line.includes("event=recovered"))).toBe(true);
    expect(server.counters.redemptions).toBe(1);
  });
});

describe("hostile guard directories", () => {
  async function refused(setup: (guardDir: string, stateDir: string) => Promise<void>) {
    const { server, agents, guardDir, stateDir } = await scenario();
    await setup(guardDir, stateDir);
    const [agent] = await agents(1);
    const credential = server.issue("acct-hostile");
    const [result] = record(await agent!.refresh(credential.refresh, 1));
    expect(result!.status).toBe(0);
    expect(server.counters.requests).toBe(0);
    return { result: result!, lines: logLines([agent!]) };
  }

  it("refuses a guard dir that is a symlink and creates nothing where it points", async () => {
    const elsewhere = await mkdtemp(join(tmpdir(), "rg-target-"));
    cleanups.push(() => rm(elsewhere, { recursive: true, force: true }));
    const { result, lines } = await refused((guardDir) => symlink(elsewhere, guardDir));
    expect(result.error).toContain("symbolic link");
    expect(lines.some((line) => line.includes("REFRESH_GUARD_UNSAFE_DIR"))).toBe(true);
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it("refuses a world-writable guard dir and says how to fix it", async () => {
    const { result } = await refused(async (guardDir) => {
      await mkdir(guardDir);
      execFileSync("chmod", ["777", guardDir]);
    });
    expect(result.error).toContain("chmod 700");
  });

  it("refuses a guard dir owned by another user", async () => {
    const { result } = await refused(async (guardDir) => {
      await mkdir(guardDir, { mode: 0o700 });
      execFileSync("chown", ["4242", guardDir]);
    });
    expect(result.error).toContain("owned by uid 4242");
  });

  it("creates directories 0700 and files 0600 even under umask 000", async () => {
    const { server, agents, guardDir } = await scenario();
    const previous = process.umask(0);
    let agent: Agent;
    try {
      [agent] = (await agents(1, { pauseAt: "journaled" })) as [Agent];
    } finally {
      process.umask(previous);
    }
    const pending = agent.refresh(server.issue("acct-umask").refresh, 1);
    await agent.stage();
    const modes: Record<string, string> = {};
    const walk = async (dir: string) => {
      for (const name of await readdir(dir)) {
        const path = join(dir, name);
        const info = await stat(path);
        modes[path.slice(guardDir.length)] = (info.mode & 0o777).toString(8);
        if (info.isDirectory()) await walk(path);
      }
    };
    modes["/"] = ((await stat(guardDir)).mode & 0o777).toString(8);
    await walk(guardDir);
    agent.resume();
    record(await pending);
    // While holding the lock: the lock dir and its owner record exist too.
    expect(Object.keys(modes).some((path) => path.endsWith(".lock"))).toBe(true);
    for (const [path, mode] of Object.entries(modes)) {
      const isDir = (await stat(join(guardDir, path)).catch(() => null))?.isDirectory() ?? path.endsWith(".lock");
      expect({ path, mode }).toEqual({ path, mode: isDir ? "700" : "600" });
    }
  });
});

describe("secrets", () => {
  it("no access, refresh or id token appears in any log line, error, status output or process output of the fault suite", () => {
    const secrets = servers.flatMap((server) => server.issuedSecrets());
    expect(secrets.length).toBeGreaterThan(50);
    const texts = [...outputs, ...allAgents.flatMap((agent) => [...agent.logs.map(({ line }) => line), ...agent.output])];
    expect(texts.length).toBeGreaterThan(50);
    const leaks = texts.filter((text) => secrets.some((secret) => text.includes(secret)));
    expect(leaks).toEqual([]);
  });
});
