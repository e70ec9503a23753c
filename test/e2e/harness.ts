// Shared pieces of the real-host end-to-end tests: the packed plugin, one throwaway OpenClaw state
// dir per scenario ("world"), the host CLI run the way a user runs it (no network: the DNS preload
// sends auth.openai.com and chatgpt.com to the stand-in on 127.0.0.1:443), the Codex stand-in that
// answers a model call only for an access token it issued and still honours, and the run summary.
// How the host is driven, and why each variable is set: test/support/HOST-HARNESS.md.
import { spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative } from "node:path";

import { packPackage } from "../../scripts/package-plugin.mjs";
import { ensureHost, REPO_ROOT } from "../support/install-host.ts";
import type { TestTls } from "../support/tls.ts";
import { type Credential, StandInEndpoint } from "../support/token-endpoint-server.ts";

export const PLUGIN_ID = "refresh-guard";
const PROFILE_ID = "openai-codex:default";
export const REFRESH_FAILED = "OAuth token refresh failed for openai-codex";
const DNS_PRELOAD = join(REPO_ROOT, "test", "support", "dns-preload.mjs");
const FETCH_OBSERVER = join(REPO_ROOT, "test", "e2e", "fetch-observer.mjs");
const KEEP = process.env.RG_E2E_KEEP === "1";

// ---------------------------------------------------------------------------------------------
// Hosts

export interface HostUnderTest {
  version: string;
  bin: string;
  nodeBin: string;
  /** Extra `plugins install` flags this host needs to install a local archive non-interactively. */
  installFlags: string[];
}

export async function hostUnderTest(version: string, installFlags: string[] = []): Promise<HostUnderTest> {
  const { bin, nodeBin } = await ensureHost(version);
  return { version, bin, nodeBin, installFlags };
}

// ---------------------------------------------------------------------------------------------
// The plugin, packed as a user would get it from npm

export interface PackedPlugin {
  tgz: string;
  cleanup(): Promise<void>;
}

/** The package exactly as published (scripts/package-plugin.mjs: fresh build, cleaned manifest), in a temp dir. */
export async function packPlugin(): Promise<PackedPlugin> {
  const dir = await mkdtemp(join(tmpdir(), "rg-pack-"));
  const { tgz } = packPackage({ destination: dir, stageDir: join(dir, "stage") });
  return { tgz, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------------------------------------
// The Codex stand-in on 127.0.0.1:443

export const RESPONSES_PATH = "/backend-api/codex/responses";

// The stream `models status --probe` accepts as "ok" (HOST-HARNESS.md §2).
const SSE_EVENTS: Record<string, unknown>[] = [
  { type: "response.created", response: { id: "resp_1", status: "in_progress" } },
  {
    type: "response.output_item.added",
    output_index: 0,
    item: { type: "message", id: "msg_1", role: "assistant", status: "in_progress", content: [] },
  },
  { type: "response.content_part.added", item_id: "msg_1", output_index: 0, content_index: 0, part: { type: "output_text", text: "" } },
  { type: "response.output_text.delta", item_id: "msg_1", output_index: 0, content_index: 0, delta: "OK" },
  {
    type: "response.output_item.done",
    output_index: 0,
    item: { type: "message", id: "msg_1", role: "assistant", status: "completed", content: [{ type: "output_text", text: "OK" }] },
  },
  {
    type: "response.completed",
    response: { id: "resp_1", status: "completed", usage: { input_tokens: 10, output_tokens: 1, total_tokens: 11 } },
  },
];

export interface CodexStandIn {
  server: StandInEndpoint;
  /** Model calls answered (valid bearer) and refused (anything else). */
  modelCalls: { ok: number; denied: number };
  stop(): Promise<void>;
}

/**
 * The token endpoint and the Codex responses endpoint, HTTPS on 127.0.0.1:443 (needs root). Another
 * loopback `address` (with worlds created with the same `dnsAddress`) lets two test files run at once.
 */
export async function startCodexStandIn(tls: TestTls, address = "127.0.0.1"): Promise<CodexStandIn> {
  const modelCalls = { ok: 0, denied: 0 };
  const server: StandInEndpoint = new StandInEndpoint({
    tls: { key: tls.key, cert: tls.cert },
    host: address,
    port: 443,
    route: (req: IncomingMessage, res: ServerResponse) => {
      if (req.method !== "POST" || (req.url ?? "").split("?")[0] !== RESPONSES_PATH) return false;
      const authorization = req.headers.authorization ?? "";
      const access = authorization.startsWith("Bearer ") ? authorization.slice("Bearer ".length) : "";
      if (!server.accessValid(access)) {
        modelCalls.denied += 1;
        res.writeHead(401, { "content-type": "application/json" }).end(
          JSON.stringify({
            error: { message: "Your authentication token is not valid.", type: "invalid_request_error", code: "invalid_api_key" },
          }),
        );
        return true;
      }
      modelCalls.ok += 1;
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      for (const event of SSE_EVENTS) res.write(`event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`);
      res.end();
      return true;
    },
  });
  await server.start();
  return { server, modelCalls, stop: () => server.stop() };
}

// ---------------------------------------------------------------------------------------------
// One OpenClaw state dir and the CLI runs made in it

export interface CliRun {
  args: string[];
  agent?: string;
  pid?: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface FetchReport {
  pid: number;
  args: string[];
  hookAttached: boolean;
  fetchReplaced: boolean;
  /** The process loaded the host's own undici module (2026.6+ always do before a refresh). */
  hostUndiciLoaded?: boolean;
  /** refresh-guard's wrapper sits on that module's fetch export. */
  hostUndiciAttached?: boolean;
}

export interface ProbeResult {
  agent: string;
  status: string;
  error?: string;
  ms: number;
  run: CliRun;
}

export interface OpenClawConfig {
  plugins?: { entries?: Record<string, { enabled?: boolean; config?: unknown }> };
}

export interface OAuthProfile {
  type: "oauth";
  provider: string;
  access: string;
  refresh: string;
  expires: number;
  accountId?: string;
  [key: string]: unknown;
}

export class HostWorld {
  readonly host: HostUnderTest;
  readonly root: string;
  readonly stateDir: string;
  readonly homeDir: string;
  readonly reportDir: string;
  readonly tls: TestTls;
  /** Where the DNS preload sends the OpenAI names (the stand-in's address). */
  readonly dnsAddress: string;
  /** Every CLI run made in this world, for the no-secret check. */
  readonly runs: CliRun[] = [];
  /** Set on every CLI run after the defaults (e.g. the stand-in's address for the DNS preload). */
  readonly extraEnv: NodeJS.ProcessEnv = {};

  private constructor(host: HostUnderTest, root: string, tls: TestTls, dnsAddress: string) {
    this.host = host;
    this.dnsAddress = dnsAddress;
    this.root = root;
    this.stateDir = join(root, "state");
    this.homeDir = join(root, "home");
    this.reportDir = join(root, "fetch-reports");
    this.tls = tls;
  }

  /** The guard dir the plugin uses here by default (XDG_STATE_HOME is set per world in cli()). */
  get guardDir(): string {
    return join(this.extraEnv.XDG_STATE_HOME ?? join(this.root, "xdg-state"), "openclaw-refresh-guard");
  }

  static async create(host: HostUnderTest, tls: TestTls, label: string, dnsAddress = "127.0.0.1"): Promise<HostWorld> {
    const root = await mkdtemp(join(tmpdir(), `rg-e2e-${host.version}-${label}-`));
    const world = new HostWorld(host, root, tls, dnsAddress);
    await Promise.all([world.stateDir, world.homeDir, world.reportDir].map((dir) => mkdir(dir, { recursive: true })));
    return world;
  }

  agentDir(agent: string): string {
    return join(this.stateDir, "agents", agent, "agent");
  }

  /** Runs `openclaw <args>` with this world's state dir; with `agent`, that agent's OPENCLAW_AGENT_DIR. */
  /** The environment a CLI run in this world gets. */
  cliEnv(options: { agent?: string; env?: NodeJS.ProcessEnv } = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    // The host changes behaviour under VITEST / NODE_ENV=test and reads many OPENCLAW_* variables:
    // give it the environment of a user's shell, not the test runner's.
    for (const [key, value] of Object.entries(process.env)) {
      if (/^(VITEST|OPENCLAW_|RG_)/.test(key) || key === "NODE_ENV" || key === "NODE_OPTIONS" || key === "TEST") continue;
      env[key] = value;
    }
    Object.assign(env, {
      OPENCLAW_STATE_DIR: this.stateDir,
      OPENCLAW_HOME: this.homeDir,
      OPENCLAW_NO_RESPAWN: "1",
      NODE_EXTRA_CA_CERTS: this.tls.caBundlePath,
      NODE_OPTIONS: `--import=${DNS_PRELOAD} --import=${FETCH_OBSERVER} --disable-warning=ExperimentalWarning`,
      RG_FETCH_REPORT_DIR: this.reportDir,
      RG_DNS_ADDRESS: this.dnsAddress,
      // Default guard dir (per OS user): one per world unless a test shares one on purpose.
      XDG_STATE_HOME: join(this.root, "xdg-state"),
    });
    Object.assign(env, this.extraEnv, options.env);
    if (options.agent !== undefined) env.OPENCLAW_AGENT_DIR = this.agentDir(options.agent);
    return env;
  }

  cli(args: string[], options: { agent?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
    const env = this.cliEnv(options);
    const timeoutMs = options.timeoutMs ?? 240_000;
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const child = spawn(this.host.nodeBin, [this.host.bin, ...args], { cwd: this.root, env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      let timedOut = false;
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, timeoutMs);
      child.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        const run: CliRun = { args, code, signal, timedOut, stdout, stderr, ms: Date.now() - started };
        if (options.agent !== undefined) run.agent = options.agent;
        if (child.pid !== undefined) run.pid = child.pid;
        this.runs.push(run);
        resolve(run);
      });
    });
  }

  /** `openclaw plugins install <tgz>`; fails the test with the host's output if it does not succeed. */
  async installPlugin(tgz: string): Promise<CliRun> {
    return expectSuccess(await this.cli(["plugins", "install", tgz, ...this.host.installFlags], { timeoutMs: 180_000 }));
  }

  /** plugins.entries["refresh-guard"].config = { providers: { "openai-codex": { enabled: true } } } */
  async configurePlugin(extra: Record<string, unknown> = {}): Promise<CliRun> {
    const config = JSON.stringify({ providers: { "openai-codex": { enabled: true } }, ...extra });
    // Dot path: 2026.4.15 stores `plugins.entries["refresh-guard"]` under the key "\"refresh-guard\"".
    return expectSuccess(await this.cli(["config", "set", `plugins.entries.${PLUGIN_ID}.config`, config, "--strict-json"]));
  }

  async readConfig(): Promise<OpenClawConfig> {
    return JSON.parse(await readFile(join(this.stateDir, "openclaw.json"), "utf8")) as OpenClawConfig;
  }

  /** Gives each agent its own auth-profiles.json holding a copy of `credential`. */
  async seedAgents(agents: readonly string[], credential: Credential): Promise<void> {
    for (const agent of agents) {
      await this.writeProfile(agent, {
        type: "oauth",
        provider: "openai-codex",
        access: credential.access,
        refresh: credential.refresh,
        expires: credential.expires,
        accountId: credential.accountId,
      });
    }
  }

  async readProfile(agent: string): Promise<OAuthProfile> {
    const store = JSON.parse(await readFile(join(this.agentDir(agent), "auth-profiles.json"), "utf8")) as {
      profiles: Record<string, OAuthProfile>;
    };
    const profile = store.profiles[PROFILE_ID];
    if (profile === undefined) throw new Error(`agent ${agent}: no ${PROFILE_ID} profile`);
    return profile;
  }

  async writeProfile(agent: string, profile: OAuthProfile): Promise<void> {
    const dir = this.agentDir(agent);
    await mkdir(dir, { recursive: true });
    const file = join(dir, "auth-profiles.json");
    await writeFile(file, `${JSON.stringify({ version: 1, profiles: { [PROFILE_ID]: profile } }, null, 2)}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
  }

  /**
   * The access token ran out: each agent's store says so (refresh token kept) and the stand-in no
   * longer honours the access token, so a probe passes only after a real refresh.
   */
  async expireAgents(agents: readonly string[], server: StandInEndpoint): Promise<void> {
    for (const agent of agents) {
      const profile = await this.readProfile(agent);
      server.expire({
        access: profile.access,
        refresh: profile.refresh,
        idToken: "",
        expires: profile.expires,
        accountId: profile.accountId ?? "",
      });
      await this.writeProfile(agent, { ...profile, expires: Date.now() - 60_000 });
    }
  }

  /** Every agent probes openai-codex at once; one result per agent, in order. */
  async probeAll(agents: readonly string[]): Promise<ProbeResult[]> {
    const args = ["models", "status", "--probe", "--probe-provider", "openai-codex", "--probe-timeout", "120000", "--json"];
    const runs = await Promise.all(agents.map((agent) => this.cli(args, { agent, timeoutMs: 300_000 })));
    return runs.map((run) => {
      const agent = run.agent ?? "?";
      if (run.code !== 0)
        throw new Error(`probe of ${agent} exited ${run.code ?? run.signal}${run.timedOut ? " (timed out)" : ""}:\n${tail(run)}`);
      const json = parseJsonOutput(run.stdout) as { auth?: { probes?: { results?: { status?: string; error?: string }[] } } };
      const result = json.auth?.probes?.results?.[0];
      if (result?.status === undefined)
        throw new Error(`probe of ${agent}: no auth.probes.results[0].status in\n${run.stdout.slice(0, 2000)}`);
      const probe: ProbeResult = { agent, status: result.status, ms: run.ms, run };
      if (result.error !== undefined) probe.error = result.error;
      return probe;
    });
  }

  /** `openclaw refresh-guard status [--json]`. */
  status(json: boolean): Promise<CliRun> {
    return this.cli([PLUGIN_ID, "status", ...(json ? ["--json"] : [])]).then(expectSuccess);
  }

  /** What the fetch observer recorded for `run` (its process's fetch at exit). */
  async fetchReport(run: CliRun): Promise<FetchReport> {
    const text = await readFile(join(this.reportDir, `${run.pid}.json`), "utf8").catch(() => null);
    if (text === null) throw new Error(`no fetch report for pid ${run.pid} (${run.args.join(" ")}): did the host re-spawn itself?`);
    return JSON.parse(text) as FetchReport;
  }

  /** Files under `dir` (relative to the state dir) whose bytes contain one of `secrets`. */
  async filesContaining(dir: string, secrets: readonly string[]): Promise<string[]> {
    const hits: string[] = [];
    const walk = async (path: string): Promise<void> => {
      for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
        const full = join(path, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile()) {
          const text = await readFile(full, "latin1");
          if (secrets.some((secret) => text.includes(secret))) hits.push(relative(this.stateDir, full));
        }
      }
    };
    await walk(isAbsolute(dir) ? dir : join(this.stateDir, dir));
    return hits;
  }

  async cleanup(): Promise<void> {
    if (KEEP) {
      process.stderr.write(`[e2e] kept ${this.root}\n`);
      return;
    }
    await rm(this.root, { recursive: true, force: true });
  }
}

function expectSuccess(run: CliRun): CliRun {
  if (run.code !== 0) {
    throw new Error(`openclaw ${run.args.join(" ")} exited ${run.code ?? run.signal}${run.timedOut ? " (timed out)" : ""}:\n${tail(run)}`);
  }
  return run;
}

function tail(run: CliRun): string {
  return `--- stdout\n${run.stdout.slice(-3000)}\n--- stderr\n${run.stderr.slice(-3000)}`;
}

/** The JSON document in a command's stdout, which may start with plugin log lines. */
export function parseJsonOutput(stdout: string): unknown {
  const lines = stdout.split("\n");
  const start = lines.findIndex((line) => line.startsWith("{"));
  if (start === -1) throw new Error(`no JSON object in output:\n${stdout.slice(0, 2000)}`);
  return JSON.parse(lines.slice(start).join("\n"));
}

/** Which runs printed which secret, by a short prefix only (the report itself must not leak). */
export function leakedSecrets(runs: readonly CliRun[], secrets: readonly string[]): string[] {
  const leaks: string[] = [];
  for (const run of runs) {
    for (const secret of secrets) {
      for (const [stream, text] of [
        ["stdout", run.stdout],
        ["stderr", run.stderr],
      ] as const) {
        if (text.includes(secret))
          leaks.push(`${run.args.slice(0, 3).join(" ")}${run.agent ? ` (${run.agent})` : ""} ${stream}: ${secret.slice(0, 6)}…`);
      }
    }
  }
  return leaks;
}

// ---------------------------------------------------------------------------------------------
// Measurements for the README's compatibility table

export interface ScenarioSummary {
  host: string;
  scenario: string;
  seconds: number;
  statuses: string[][];
  probeSeconds: number[][];
  requests: number;
  redemptions: number;
  reuses: number;
  invalid: number;
  modelCalls: { ok: number; denied: number };
  outcomes?: Record<string, number>;
  notes?: string[];
}

const summaries: ScenarioSummary[] = [];

export function recordScenario(summary: ScenarioSummary): void {
  summaries.push(summary);
}

export async function printSummary(): Promise<void> {
  if (summaries.length === 0) return;
  const lines = ["", "refresh-guard real-host e2e summary"];
  for (const s of summaries) {
    lines.push(
      `  ${s.host} ${s.scenario}: ${s.seconds.toFixed(1)} s; statuses ${s.statuses.map((r) => r.join(",")).join(" | ")}; ` +
        `token requests ${s.requests}, redemptions ${s.redemptions}, reuses ${s.reuses}, invalid ${s.invalid}; ` +
        `model calls ok ${s.modelCalls.ok} denied ${s.modelCalls.denied}` +
        (s.probeSeconds.length ? `; probe wall s ${s.probeSeconds.map((r) => r.map((x) => x.toFixed(1)).join(",")).join(" | ")}` : "") +
        (s.outcomes ? `; guard outcomes ${JSON.stringify(s.outcomes)}` : "") +
        (s.notes?.length ? `; ${s.notes.join("; ")}` : ""),
    );
  }
  console.log(lines.join("\n"));
  const dir = join(REPO_ROOT, ".cache", "e2e");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "last-summary.json"), `${JSON.stringify({ at: new Date().toISOString(), summaries }, null, 2)}\n`);
}
