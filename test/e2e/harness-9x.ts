// The 2026.6 – 2026.9 pieces of the real-host harness (the rest is harness.ts):
// - the stand-in listens on 198.18.0.1:443 (RFC 2544, which the host's SSRF policy for the token
//   POST allows; a loopback answer is refused before any fetch), added to `lo` if missing;
// - credentials are seeded straight into the host's SQLite stores with node:sqlite before the host
//   runs (the shared store `<state>/state/openclaw.sqlite`, table config_machine_state), in a
//   database the host created itself (`openclaw config set`/`plugins install` create it);
// - probes name provider `openai` and own the whole state dir, so concurrency comes from state dirs.
import { execFileSync } from "node:child_process";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";

import type { Credential } from "../support/token-endpoint-server.ts";
import { type CliRun, type HostWorld, type OAuthProfile, PLUGIN_ID, parseJsonOutput } from "./harness.ts";

// node:sqlite through require: the test runner's module graph does not know the builtin.
const { DatabaseSync } = createRequire(import.meta.url)("node:sqlite") as typeof import("node:sqlite");

export const STAND_IN_ADDRESS = "198.18.0.1";
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

/** The env every 9.x CLI run gets: DNS preload answers with the stand-in's address. */
export function use9xNetwork(world: HostWorld, sharedStateHome?: string): void {
  world.extraEnv.RG_DNS_ADDRESS = STAND_IN_ADDRESS;
  if (sharedStateHome !== undefined) world.extraEnv.XDG_STATE_HOME = sharedStateHome;
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

export function profileOf(credential: Credential): OAuthProfile {
  return { type: "oauth", provider: "openai", access: credential.access, refresh: credential.refresh, expires: credential.expires, accountId: credential.accountId };
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

/** Every store of the world: the shared one and each agent's, by a short name. */
export function readStores(world: HostWorld): Record<string, Record<string, OAuthProfile>> {
  const stores: Record<string, Record<string, OAuthProfile>> = {};
  const db = new DatabaseSync(sharedDbPath(world), { readOnly: true });
  try {
    const row = db.prepare("SELECT value_json FROM config_machine_state WHERE state_key = 'authProfiles.store'").get() as { value_json?: string } | undefined;
    stores.shared = row?.value_json ? (JSON.parse(row.value_json) as { profiles: Record<string, OAuthProfile> }).profiles : {};
  } finally {
    db.close();
  }
  return stores;
}

/** The shared store's profile, or throws. */
export function readSharedProfile(world: HostWorld, id = PROFILE): OAuthProfile {
  const profile = readStores(world).shared?.[id];
  if (profile === undefined) throw new Error(`${world.stateDir}: no ${id} in the shared store`);
  return profile;
}

/** Profiles (store#id) whose access or refresh token is a terminal refresh fence. */
export function fencedProfiles(world: HostWorld): string[] {
  const fenced: string[] = [];
  for (const [store, profiles] of Object.entries(readStores(world))) {
    for (const [id, profile] of Object.entries(profiles)) {
      if (String(profile.refresh).startsWith(FENCE_PREFIX) || String(profile.access).startsWith(FENCE_PREFIX)) fenced.push(`${store}#${id}`);
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
  const run = await world.cli(args, { timeoutMs: 240_000, env });
  if (run.code !== 0) throw new Error(`probe in ${world.stateDir} exited ${run.code ?? run.signal}:\n${run.stderr.slice(-3000)}`);
  const json = parseJsonOutput(run.stdout) as { auth?: { probes?: { results?: { profileId?: string; status?: string; error?: string }[] } } };
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
    tokens: { id_token: credential.idToken, access_token: credential.access, refresh_token: credential.refresh, account_id: credential.accountId },
    last_refresh: lastRefresh,
  };
  await writeFile(file, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}

export async function readCodexAuth(home: string): Promise<CodexAuthFile> {
  return JSON.parse(await readFile(codexAuthPath(home), "utf8")) as CodexAuthFile;
}
