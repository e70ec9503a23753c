// The 2026.6 – 2026.9 pieces of the real-host harness (the rest is harness.ts):
// - the stand-in listens on 198.18.0.1:443 (RFC 2544, which the host's SSRF policy for the token
//   POST allows; a loopback answer is refused before any fetch), added to `lo` if missing;
// - credentials are seeded straight into the host's SQLite stores with node:sqlite before the host
//   runs, in a database the host created itself:
//   2026.9.x: the shared store `<state>/state/openclaw.sqlite`, table config_machine_state (any
//   command creates the database: `openclaw config set`, `plugins install`);
//   2026.6.x/7.x: the main agent's `<state>/agents/main/agent/openclaw-agent.sqlite`, table
//   auth_profile_store, which only `openclaw doctor --fix` creates (importing auth-profiles.json):
//   made once per host in a template world, then copied (VACUUM INTO) into each world;
// - probes name provider `openai` and own the whole state dir, so concurrency comes from state dirs.
import { execFileSync } from "node:child_process";
import { chmod, copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import type { Server } from "node:https";
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import { join } from "node:path";

import type { TestTls } from "../support/tls.ts";
import { type Credential, StandInEndpoint } from "../support/token-endpoint-server.ts";
import {
  type CliRun,
  type CodexStandIn,
  type HostWorld,
  type OAuthProfile,
  PLUGIN_ID,
  parseJsonOutput,
  RESPONSES_PATH,
} from "./harness.ts";

/** Terminal colour codes in the host's output (ESC [ … m). */
const ANSI_COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

// node:sqlite through require: the test runner's module graph does not know the builtin.
const { DatabaseSync } = createRequire(import.meta.url)("node:sqlite") as typeof import("node:sqlite");

export const STAND_IN_ADDRESS = "198.18.0.1";
/** Answered for the OpenAI names behind the managed proxy; never connected to. */
const PUBLIC_PLACEHOLDER_ADDRESS = "8.8.8.8";
export const PROFILE = "openai:default";
export const FENCE_PREFIX = "openclaw-oauth-refresh-fence:";
export const REFRESH_FAILED_9X = "OAuth token refresh failed for openai";
export const INSTALL_FLAGS_9X = ["--force", "--accept-capabilities"];

/** Adds `address`/32 to `lo` unless some interface has it already (we run as root). */
export function ensureLoopbackAddress(address = STAND_IN_ADDRESS): void {
  const shown = execFileSync("ip", ["-4", "-o", "addr", "show"], { encoding: "utf8" });
  if (shown.includes(` ${address}/`)) return;
  try {
    execFileSync("ip", ["addr", "add", `${address}/32`, "dev", "lo"], { stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    // Another test may have added it an instant ago.
    if (!execFileSync("ip", ["-4", "-o", "addr", "show"], { encoding: "utf8" }).includes(` ${address}/`)) throw error;
  }
}

const probeEnvs = new WeakMap<HostWorld, NodeJS.ProcessEnv>();

/**
 * The env every 9.x CLI run gets: the DNS preload answers with the stand-in's address. With
 * `managedProxy` (2026.6/2026.7, whose token policy refuses every special-use address, RFC 2544
 * included), probes also run behind that HTTPS proxy as an OpenClaw managed proxy
 * (OPENCLAW_PROXY_ACTIVE=1 + HTTPS_PROXY): the host then hands the token POST to an
 * EnvHttpProxyAgent without resolving the name. Only probes: `plugins install` runs npm, which must
 * reach the registry, not the stand-in.
 */
export function use9xNetwork(
  world: HostWorld,
  options: { stateHome?: string | undefined; managedProxy?: string | undefined; address?: string } = {},
): void {
  // A test file of its own may pin its own stand-in address, so it can run beside the others.
  world.extraEnv.RG_DNS_ADDRESS = options.address ?? STAND_IN_ADDRESS;
  if (options.stateHome !== undefined) world.extraEnv.XDG_STATE_HOME = options.stateHome;
  if (options.managedProxy !== undefined) {
    // 2026.6.6 still checks the name's address before handing the POST to the proxy: answer with a
    // public address, which is never contacted (the proxy tunnels both names to the stand-in).
    probeEnvs.set(world, { HTTPS_PROXY: options.managedProxy, OPENCLAW_PROXY_ACTIVE: "1", RG_DNS_ADDRESS: PUBLIC_PLACEHOLDER_ADDRESS });
  }
}

/** A cheap command that makes the host create its state dir and SQLite store. */
export async function initState(world: HostWorld): Promise<void> {
  const run = await world.cli(["config", "set", "gateway.mode", "local"]);
  if (run.code !== 0) throw new Error(`openclaw config set failed:\n${run.stderr.slice(-2000)}`);
}

/** plugins.entries["refresh-guard"].config for 2026.6+ (provider `openai`). */
export async function configurePlugin9x(world: HostWorld, config: Record<string, unknown> = {}): Promise<CliRun> {
  const value = JSON.stringify({ providers: { openai: { enabled: true } }, ...config });
  const run = await world.cli(["config", "set", `plugins.entries.${PLUGIN_ID}.config`, value, "--strict-json"]);
  if (run.code !== 0) throw new Error(`openclaw config set plugin config failed:\n${run.stderr.slice(-2000)}`);
  return run;
}

function sharedDbPath(world: HostWorld): string {
  return join(world.stateDir, "state", "openclaw.sqlite");
}

function mainAgentDbPath(world: HostWorld): string {
  return join(world.agentDir("main"), "openclaw-agent.sqlite");
}

/** A login as 2026.6+ store it after `openclaw models auth login --provider openai` (account id and email kept). */
export function profileOf(credential: Credential): OAuthProfile {
  return {
    type: "oauth",
    provider: "openai",
    access: credential.access,
    refresh: credential.refresh,
    expires: credential.expires,
    accountId: credential.accountId,
    email: credential.email,
  };
}

/** Where a host version keeps the main agent's credentials: null = shared store (9.x), else a template agent DB. */
const agentTemplates = new Map<string, string | null>();

function hasTable(path: string, table: string): boolean {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
  } finally {
    db.close();
  }
}

/**
 * Finds where this host stores credentials (in `world`, which must be fresh and not reused), and
 * for agent-store hosts makes the template agent database with `openclaw doctor --fix`.
 */
export async function prepareStoreLayout(world: HostWorld): Promise<"shared" | "agent"> {
  const known = agentTemplates.get(world.host.version);
  if (known !== undefined) return known === null ? "shared" : "agent";
  await initState(world);
  if (hasTable(sharedDbPath(world), "config_machine_state")) {
    agentTemplates.set(world.host.version, null);
    return "shared";
  }
  // A valid-looking credential (never sent anywhere: doctor refreshes only expired ones).
  await mkdir(world.agentDir("main"), { recursive: true });
  const placeholder = {
    type: "oauth",
    provider: "openai",
    access: "template",
    refresh: "template",
    expires: Date.now() + 86_400_000,
    accountId: "template",
  };
  await writeFile(join(world.agentDir("main"), "auth-profiles.json"), JSON.stringify({ version: 1, profiles: { [PROFILE]: placeholder } }));
  const doctor = await world.cli(["doctor", "--fix", "--non-interactive"], { timeoutMs: 180_000 });
  if (doctor.code !== 0 || !hasTable(mainAgentDbPath(world), "auth_profile_store")) {
    throw new Error(`openclaw doctor --fix did not create the agent store:\n${doctor.stderr.slice(-2000)}`);
  }
  const template = join(world.root, "agent-template.sqlite");
  const db = new DatabaseSync(mainAgentDbPath(world));
  try {
    db.exec(`VACUUM INTO '${template.replaceAll("'", "''")}'`);
  } finally {
    db.close();
  }
  // Kept for the whole run: the world that made it is cleaned up by the OS temp dir, not here.
  const kept = join(world.root, "..", `rg-agent-template-${world.host.version}-${process.pid}.sqlite`);
  await copyFile(template, kept);
  agentTemplates.set(world.host.version, kept);
  return "agent";
}

/** Removes the template agent databases made by prepareStoreLayout() (call once, after all tests). */
export async function removeStoreTemplates(): Promise<void> {
  const { rm } = await import("node:fs/promises");
  for (const template of agentTemplates.values()) if (template !== null) await rm(template, { force: true });
  agentTemplates.clear();
}

/**
 * Writes `profiles` as the store the host reads in this world (shared store on 9.x, main agent store
 * on 6.x/7.x) and clears cooldowns. The host must not be running. Needs prepareStoreLayout() first.
 */
export async function seedStore(world: HostWorld, profiles: Record<string, OAuthProfile>): Promise<void> {
  const template = agentTemplates.get(world.host.version);
  if (template === undefined) throw new Error(`prepareStoreLayout() has not run for ${world.host.version}`);
  if (template === null) {
    seedSharedStore(world, profiles);
    return;
  }
  const path = mainAgentDbPath(world);
  const exists = await readFile(path).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await mkdir(world.agentDir("main"), { recursive: true });
    await copyFile(template, path);
  }
  const db = new DatabaseSync(path);
  try {
    db.prepare("INSERT OR REPLACE INTO auth_profile_store(store_key, store_json, updated_at) VALUES ('primary', ?, ?)").run(
      JSON.stringify({ version: 1, profiles }),
      Date.now(),
    );
    db.prepare("DELETE FROM auth_profile_state").run();
  } finally {
    db.close();
  }
}

/** Writes the shared auth store (and its location marker) and clears cooldowns. The host must not be running. */
export function seedSharedStore(world: HostWorld, profiles: Record<string, OAuthProfile>): void {
  const db = new DatabaseSync(sharedDbPath(world));
  try {
    const put = db.prepare("INSERT OR REPLACE INTO config_machine_state(state_key, value_json, updated_at_ms) VALUES (?, ?, ?)");
    put.run("authProfiles.store", JSON.stringify({ version: 1, profiles }), Date.now());
    put.run("auth.sharedStore", JSON.stringify({ location: "state-db" }), Date.now());
    db.prepare("DELETE FROM config_machine_state WHERE state_key = 'authProfiles.state'").run();
  } finally {
    db.close();
  }
}

function readJsonRow(path: string, sql: string): Record<string, OAuthProfile> | null {
  let db: InstanceType<typeof DatabaseSync>;
  try {
    db = new DatabaseSync(path, { readOnly: true });
  } catch {
    return null;
  }
  try {
    const row = db.prepare(sql).get() as { json?: string } | undefined;
    return row?.json ? (JSON.parse(row.json) as { profiles: Record<string, OAuthProfile> }).profiles : null;
  } catch {
    return null;
  } finally {
    db.close();
  }
}

/** Every store of the world: the shared one ("shared") and each agent's ("agent:<id>"). */
export async function readStores(world: HostWorld): Promise<Record<string, Record<string, OAuthProfile>>> {
  const stores: Record<string, Record<string, OAuthProfile>> = {};
  const shared = readJsonRow(
    sharedDbPath(world),
    "SELECT value_json AS json FROM config_machine_state WHERE state_key = 'authProfiles.store'",
  );
  if (shared !== null) stores.shared = shared;
  for (const agent of await readdir(join(world.stateDir, "agents")).catch(() => [] as string[])) {
    const profiles = readJsonRow(
      join(world.agentDir(agent), "openclaw-agent.sqlite"),
      "SELECT store_json AS json FROM auth_profile_store WHERE store_key = 'primary'",
    );
    if (profiles !== null) stores[`agent:${agent}`] = profiles;
  }
  return stores;
}

/** The profile from the store the host reads (shared on 9.x, main agent on 6.x/7.x), or throws. */
export async function readProfile(world: HostWorld, id = PROFILE): Promise<OAuthProfile> {
  const stores = await readStores(world);
  const profile = stores.shared?.[id] ?? stores["agent:main"]?.[id];
  if (profile === undefined) throw new Error(`${world.stateDir}: no ${id} in the shared or main agent store`);
  return profile;
}

/** Profiles (store#id) whose access or refresh token is a terminal refresh fence. */
export async function fencedProfiles(world: HostWorld): Promise<string[]> {
  const fenced: string[] = [];
  for (const [store, profiles] of Object.entries(await readStores(world))) {
    for (const [id, profile] of Object.entries(profiles)) {
      if (String(profile.refresh).startsWith(FENCE_PREFIX) || String(profile.access).startsWith(FENCE_PREFIX))
        fenced.push(`${store}#${id}`);
    }
  }
  return fenced;
}

export interface Probe9x {
  profile: string;
  status: string;
  error?: string;
}

export interface ProbeRun9x {
  run: CliRun;
  results: Probe9x[];
}

/** `openclaw models status --probe --probe-provider openai --json` in the world's state dir. */
export async function probe9x(world: HostWorld, env: NodeJS.ProcessEnv = {}): Promise<ProbeRun9x> {
  const args = ["models", "status", "--probe", "--probe-provider", "openai", "--probe-timeout", "20000", "--json"];
  const run = await world.cli(args, { timeoutMs: 240_000, env: { ...probeEnvs.get(world), ...env } });
  if (run.code !== 0) throw new Error(`probe in ${world.stateDir} exited ${run.code ?? run.signal}:\n${run.stderr.slice(-3000)}`);
  const json = parseJsonOutput(run.stdout) as {
    auth?: { probes?: { results?: { profileId?: string; status?: string; error?: string }[] } };
  };
  const results = (json.auth?.probes?.results ?? []).map((result) => {
    const probe: Probe9x = { profile: result.profileId ?? "?", status: result.status ?? "?" };
    if (result.error !== undefined) probe.error = result.error;
    return probe;
  });
  if (results.length === 0) throw new Error(`probe in ${world.stateDir}: no probe results in\n${run.stdout.slice(0, 2000)}`);
  return { run, results };
}

// ---------------------------------------------------------------------------------------------
// The Codex CLI's login file

export interface CodexAuthFile {
  OPENAI_API_KEY: null;
  tokens: { id_token: string; access_token: string; refresh_token: string; account_id: string };
  last_refresh: string;
}

export function codexAuthPath(home: string): string {
  return join(home, ".codex", "auth.json");
}

export async function writeCodexAuth(home: string, credential: Credential, lastRefresh = new Date().toISOString()): Promise<string> {
  const file = codexAuthPath(home);
  await mkdir(join(home, ".codex"), { recursive: true, mode: 0o700 });
  const content: CodexAuthFile = {
    OPENAI_API_KEY: null,
    tokens: {
      id_token: credential.idToken,
      access_token: credential.access,
      refresh_token: credential.refresh,
      account_id: credential.accountId,
    },
    last_refresh: lastRefresh,
  };
  await writeFile(file, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}

export async function readCodexAuth(home: string): Promise<CodexAuthFile> {
  return JSON.parse(await readFile(codexAuthPath(home), "utf8")) as CodexAuthFile;
}

// ---------------------------------------------------------------------------------------------
// A running gateway

export interface GatewayRun {
  pid: number;
  port: number;
  /** Everything it printed so far. */
  output(): string;
  stop(): Promise<void>;
}

/** A free TCP port on loopback (closed again before returning). */
export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * `openclaw gateway --port <port> --bind loopback --auth none` in the world, in its own process
 * group (it starts a spawn broker), until it prints "ready". The fetch observer writes its report
 * every second while it runs.
 */
export async function startGateway(world: HostWorld, timeoutMs = 180_000, port?: number): Promise<GatewayRun> {
  const { spawn } = await import("node:child_process");
  port ??= await freePort();
  const env = world.cliEnv({ env: { RG_FETCH_REPORT_EVERY_MS: "1000" } });
  const child = spawn(
    world.host.nodeBin,
    [world.host.bin, "gateway", "--port", String(port), "--bind", "loopback", "--auth", "none", "--allow-unconfigured"],
    {
      cwd: world.root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const stop = async () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // Already gone.
    }
    await exited;
  };
  const deadline = Date.now() + timeoutMs;
  while (!/\[gateway\]\S*\s+\S*ready/.test(output.replace(ANSI_COLOUR, ""))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`gateway did not get ready (exit ${child.exitCode}):\n${output.slice(-3000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { pid: child.pid!, port, output: () => output, stop };
}

/**
 * Writes gateway.mode local, gateway.port and gateway.auth.mode none into the world's config, so
 * that `openclaw agent` (which hands the turn to the gateway through its `agent` RPC) finds it.
 */
export async function configureGateway(world: HostWorld, port: number): Promise<void> {
  const value = JSON.stringify({ mode: "local", port, bind: "loopback", auth: { mode: "none" } });
  const run = await world.cli(["config", "set", "gateway", value, "--strict-json"]);
  if (run.code !== 0) throw new Error(`openclaw config set gateway failed:\n${run.stderr.slice(-2000)}`);
}

// ---------------------------------------------------------------------------------------------
// Real agent turns through a gateway

/** What a Codex model turn streams back (the host accepts nothing shorter as a completed reply). */
function responsesSse(text: string): string {
  const item = { type: "message", id: "msg_1", role: "assistant" };
  const events: Record<string, unknown>[] = [
    { type: "response.created", response: { id: "resp_1", status: "in_progress", output: [] } },
    { type: "response.output_item.added", output_index: 0, item: { ...item, status: "in_progress", content: [] } },
    { type: "response.content_part.added", item_id: "msg_1", output_index: 0, content_index: 0, part: { type: "output_text", text: "" } },
    { type: "response.output_text.delta", item_id: "msg_1", output_index: 0, content_index: 0, delta: text },
    { type: "response.output_text.done", item_id: "msg_1", output_index: 0, content_index: 0, text },
    {
      type: "response.output_item.done",
      output_index: 0,
      item: { ...item, status: "completed", content: [{ type: "output_text", text, annotations: [] }] },
    },
    {
      type: "response.completed",
      response: {
        id: "resp_1",
        status: "completed",
        output: [{ ...item, status: "completed", content: [{ type: "output_text", text, annotations: [] }] }],
        usage: { input_tokens: 10, output_tokens: 1, total_tokens: 11 },
      },
    },
  ];
  return events.map((event) => `event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`).join("");
}

/** `openclaw agent --agent main --message <message> --json` against the world's running gateway. */
export async function agentTurn(
  world: HostWorld,
  message: string,
  timeoutMs = 240_000,
): Promise<{ run: CliRun; ok: boolean; text: string }> {
  const run = await world.cli(["agent", "--agent", "main", "--message", message, "--json", "--timeout", "180"], { timeoutMs });
  const text = run.stdout.replace(ANSI_COLOUR, "");
  return { run, ok: run.code === 0, text };
}

const MODELS_PATH = "/backend-api/codex/models";

/**
 * The token endpoint plus what a real agent turn of 2026.9.6 needs from chatgpt.com: the model list
 * (`GET /backend-api/codex/models`), a 404 to the WebSocket upgrade (the host then posts SSE), and
 * the full Responses SSE sequence answering `reply` to a valid bearer. HTTPS on `address`:443.
 */
export async function startAgentStandIn(
  tls: TestTls,
  address: string,
  options: { reply: string; accessLifetimeSec?: number },
): Promise<CodexStandIn> {
  const modelCalls = { ok: 0, denied: 0 };
  const server: StandInEndpoint = new StandInEndpoint({
    tls: { key: tls.key, cert: tls.cert },
    host: address,
    port: 443,
    ...(options.accessLifetimeSec !== undefined ? { accessLifetimeSec: options.accessLifetimeSec } : {}),
    route: (req, res) => {
      const path = (req.url ?? "").split("?")[0];
      if (req.method === "GET" && path === MODELS_PATH) {
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ models: [{ slug: "gpt-6-astra", visibility: "list", show_in_picker: true, context_window: 272000 }] }));
        return true;
      }
      if (req.method !== "POST" || path !== RESPONSES_PATH) return false;
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
      res.end(responsesSse(options.reply));
      return true;
    },
  });
  await server.start();
  // The host tries a WebSocket first; a 404 sends it to SSE.
  const https = (server as unknown as { server: Server }).server;
  https.on("upgrade", (_req, socket: Socket) => {
    socket.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  });
  return { server, modelCalls, stop: () => server.stop() };
}
