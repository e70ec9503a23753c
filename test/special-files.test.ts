// Issue 13, cases 4 and 5, with real processes and real FIFOs.
// Case 5: a FIFO where the guard or recovery reads a file (a journal entry, a spent marker, a lock
// owner record, the status record, the Codex CLI file, an agent store, or a file swapped for a FIFO
// between stat and open) must never hang: each read returns with a warning or quarantine, the
// process's own fs reads still work afterwards (libuv's pool is not exhausted) and it can exit.
// Each read runs in a child (support/fifo-probe.ts); one that does not report back and exit within
// HANG_MS is killed and the test fails. HANG_MS only detects a hang; nothing here is timed.
// Case 4: a journal entry one process writes with a large id_token is readable by another.
import { execFile, fork } from "node:child_process";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { tokenKey } from "../src/store/token-crypto.ts";
import { type Agent, startAgents } from "./support/agent-pool.ts";
import { type StandInEndpoint, startStandIn } from "./support/token-endpoint-server.ts";

const PROBE = fileURLToPath(new URL("./support/fifo-probe.ts", import.meta.url));
const HANG_MS = 20_000;
const TOKEN = "rt_fifo_probe_token";
const KEY = tokenKey(TOKEN);

let root: string;
let guardDir: string;
let stateDir: string;
let normalFile: string;

beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-fifo-"));
  guardDir = join(root, "guard");
  stateDir = join(root, "state");
  normalFile = join(root, "normal.txt");
  for (const dir of ["journal", "quarantine", "locks", "status"]) await fsp.mkdir(join(guardDir, dir), { recursive: true, mode: 0o700 });
  await fsp.writeFile(normalFile, "still readable");
});

afterEach(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

async function mkfifo(path: string): Promise<void> {
  await fsp.mkdir(join(path, ".."), { recursive: true });
  await promisify(execFile)("mkfifo", ["-m", "600", path]);
}

interface ProbeReport {
  result: Record<string, unknown>;
  warnings: string[];
  normal: string;
  exitCode: number | null;
}

/** Runs one probe; rejects if it does not report and exit within HANG_MS (it is then killed). */
function probe(scenario: string, extra: { file?: string; count?: number } = {}): Promise<ProbeReport> {
  const config = { scenario, guardDir, stateDir, key: KEY, token: TOKEN, normalFile, file: extra.file ?? "", count: extra.count ?? 0 };
  const child = fork(PROBE, [], {
    env: { ...process.env, PROBE_CONFIG: JSON.stringify(config) },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  const output: string[] = [];
  child.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  return new Promise((resolve, reject) => {
    let report: Omit<ProbeReport, "exitCode"> | undefined;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${scenario}: the process hung (${report ? "reported but could not exit" : "no report"}) ${output.join("")}`));
    }, HANG_MS);
    child.on("message", (message: { type: string } & Omit<ProbeReport, "exitCode">) => {
      if (message.type === "result") report = message;
    });
    child.once("exit", (exitCode) => {
      clearTimeout(timer);
      if (report === undefined) reject(new Error(`${scenario}: exited (${exitCode}) without a report: ${output.join("")}`));
      else resolve({ ...report, exitCode });
    });
  });
}

async function quarantined(): Promise<string[]> {
  return fsp.readdir(join(guardDir, "quarantine"));
}

describe("a FIFO where the guard reads never hangs the process", () => {
  it("at a journal entry: read as absent and quarantined with a warning", async () => {
    await mkfifo(join(guardDir, "journal", `${KEY}.json`));
    const report = await probe("journal-entry");
    expect(report.result).toEqual({ entry: null });
    expect(report.normal).toBe("still readable");
    expect(report.exitCode).toBe(0);
    expect(report.warnings.join("\n")).toMatch(/not a regular file/);
    expect((await quarantined()).some((name) => name.startsWith(`${KEY}.json`))).toBe(true);
  });

  it("at a spent marker: read as no marker and quarantined", async () => {
    await mkfifo(join(guardDir, "journal", `${KEY}.spent`));
    const report = await probe("spent-marker");
    expect(report.result).toEqual({ marker: null });
    expect(report.exitCode).toBe(0);
    expect((await quarantined()).some((name) => name.startsWith(`${KEY}.spent`))).toBe(true);
  });

  it("at a lock owner record: the lock is listed by age alone", async () => {
    await fsp.mkdir(join(guardDir, "locks", `${KEY}.lock`), { mode: 0o700 });
    await mkfifo(join(guardDir, "locks", `${KEY}.owner`));
    const report = await probe("lock-owner");
    expect(report.result).toEqual({ holders: [{ key: KEY, pid: null }] });
    expect(report.exitCode).toBe(0);
  });

  it("at the status record: status reads what it can", async () => {
    await mkfifo(join(guardDir, "status", "outcomes.jsonl"));
    const report = await probe("status-record");
    expect(report.result).toEqual({ counts: { redeemed: 0, shared: 0, recovered: 0, failed: 0, warning: 0 } });
    expect(report.exitCode).toBe(0);
  });

  it("at the Codex CLI file: skipped with a warning naming it", async () => {
    const file = join(root, "home", ".codex", "auth.json");
    await mkfifo(file);
    const report = await probe("codex-file", { file });
    expect(report.result).toEqual({ credentials: 0 });
    expect(report.warnings.join("\n")).toContain(file);
    expect(report.exitCode).toBe(0);
  });

  it("at an agent store: skipped with a warning naming it", async () => {
    const file = join(stateDir, "agents", "main", "agent", "auth-profiles.json");
    await mkfifo(file);
    const report = await probe("agent-store", { file });
    expect(report.result).toEqual({ credentials: 0 });
    expect(report.warnings.join("\n")).toContain(file);
    expect(report.exitCode).toBe(0);
  });

  it.each([
    ["swap-agent-store", ["state", "agents", "main", "agent", "auth-profiles.json"]],
    ["swap-codex-file", ["home", ".codex", "auth.json"]],
  ])("at a file swapped for a FIFO between stat and open (%s): skipped with a warning", async (scenario, parts) => {
    const file = join(root, ...parts);
    await fsp.mkdir(join(file, ".."), { recursive: true });
    await fsp.writeFile(file, JSON.stringify({ profiles: {}, tokens: {} }));
    const report = await probe(scenario, { file });
    expect(report.result).toEqual({ credentials: 0 });
    expect(report.warnings.join("\n")).toContain(file);
    expect(report.exitCode).toBe(0);
  });

  it("after six FIFO opens (more than libuv's four threads) the process still reads files and exits", async () => {
    for (let index = 0; index < 6; index += 1) {
      await mkfifo(join(guardDir, "journal", `${KEY.slice(0, 62)}${index.toString(16).padStart(2, "0")}.json`));
    }
    const report = await probe("many-entries", { count: 6 });
    expect(report.result).toEqual({ entries: [null, null, null, null, null, null] });
    expect(report.normal).toBe("still readable");
    expect(report.exitCode).toBe(0);
    expect(await quarantined()).toHaveLength(6);
  });
});

describe("one size limit for writing and reading a journal entry", () => {
  let server: StandInEndpoint;
  let agents: Agent[] = [];

  afterEach(async () => {
    await Promise.all(agents.map((agent) => agent.stop()));
    agents = [];
    await server?.stop();
  });

  it("a 200 with a 70 KB id_token journaled by one process is read back by another: no second send, no re-login", async () => {
    server = await startStandIn({ idTokenBytes: 70 * 1024 });
    agents = await startAgents(2, { stateDir, tokenUrl: server.url, pluginConfig: { guardDir } });
    const credential = server.issue("acct-large");

    const [first] = await agents[0]!.refresh(credential.refresh, 1);
    expect(first?.status).toBe(200);
    const entry = await fsp.stat(join(guardDir, "journal", `${tokenKey(credential.refresh)}.json`));
    expect(entry.size).toBeGreaterThan(70 * 1024);

    // The second process presents the same (now spent) token: it must find the successor.
    const [second] = await agents[1]!.refresh(credential.refresh, 1);
    expect(second?.status, second?.error).toBe(200);
    expect(second?.refresh === first?.refresh, "same successor").toBe(true);
    expect(server.counters.redemptions).toBe(1);
    expect(server.counters.reuses).toBe(0);
    expect(agents.flatMap((agent) => agent.events)).not.toContain("failed");
    expect(await quarantined()).toEqual([]);
  });
});

describe("a token answer that never ends, in a process whose fetch drops the abort signal", () => {
  let server: StandInEndpoint;
  let agents: Agent[] = [];

  afterEach(async () => {
    await Promise.all(agents.map((agent) => agent.stop()));
    agents = [];
    await server?.stop();
  });

  it("times that process's caller out, and another process takes the lock after staleMs and redeems once", {
    timeout: 45_000,
  }, async () => {
    server = await startStandIn();
    const pluginConfig = { guardDir, requestTimeoutMs: 1000, lock: { staleMs: 2000, waitTimeoutMs: 20_000 } };
    const [stuck] = await startAgents(1, { stateDir, tokenUrl: server.url, pluginConfig, dropSignal: true });
    const [other] = await startAgents(1, { stateDir, tokenUrl: server.url, pluginConfig });
    agents = [stuck!, other!];
    const credential = server.issue("acct-stuck");
    server.inject("stall-body");

    const [timedOut] = await stuck!.refresh(credential.refresh, 1);
    expect(timedOut?.status).toBe(0);
    expect(timedOut?.error).toMatch(/^TimeoutError/);
    expect(stuck!.logs.some(({ line }) => line.includes("reason=endpoint_timeout"))).toBe(true);

    const [redeemed] = await other!.refresh(credential.refresh, 1);
    expect(redeemed?.status, redeemed?.error).toBe(200);
    expect(server.counters.redemptions).toBe(1);
    expect(server.counters.reuses).toBe(0);
  });
});
