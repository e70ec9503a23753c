// The plugin's configuration, checked a second time in code (the host checks the manifest's JSON
// Schema first) so that every problem names its full path in openclaw.json.
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";

import { ConfigError } from "../core/errors.ts";
import { DEFAULT_TIMING, type GuardTiming } from "../core/refresh-guard.ts";
import { OPENAI_TOKEN_URL, isRecord } from "../oauth/token-wire.ts";

export const PLUGIN_ID = "refresh-guard";
export const CONFIG_ROOT = `plugins.entries["${PLUGIN_ID}"].config`;

/** Providers whose refresh refresh-guard knows how to guard, and their token endpoints. */
export const KNOWN_PROVIDERS: Readonly<Record<string, string>> = {
  "openai-codex": OPENAI_TOKEN_URL,
  // Hosts from 2026.6 call the same login `openai`.
  openai: OPENAI_TOKEN_URL,
};

export interface ProviderConfig {
  id: string;
  tokenUrl: string;
}

export interface RefreshGuardConfig {
  guardDir: string;
  providers: ProviderConfig[];
  timing: GuardTiming;
  /** Read the Codex CLI's auth.json when looking for a sibling credential. */
  codexAuthFile: string | null;
  /** Other OpenClaw state dirs recovery reads: "auto" (~/.openclaw, ~/.openclaw-*) or a list. */
  siblingStateDirs: "auto" | string[];
}

interface Bound {
  key: keyof GuardTiming;
  path: string;
  min: number;
  max: number;
  scale?: number;
}

// Each user-facing number: where it lives, its bounds, and the timing field it sets.
const BOUNDS: readonly Bound[] = [
  { key: "staleMs", path: "lock.staleMs", min: 2000, max: 600_000 },
  { key: "waitTimeoutMs", path: "lock.waitTimeoutMs", min: 1000, max: 600_000 },
  { key: "pollMs", path: "lock.pollMs", min: 5, max: 5000 },
  { key: "requestTimeoutMs", path: "requestTimeoutMs", min: 1000, max: 600_000 },
  { key: "minValidityMs", path: "minValiditySeconds", min: 0, max: 86_400, scale: 1000 },
  { key: "retentionMs", path: "retentionDays", min: 1, max: 365, scale: 86_400_000 },
];

const TOP_KEYS = new Set(["providers", "guardDir", "lock", "requestTimeoutMs", "minValiditySeconds", "retentionDays", "codexAuthFile", "siblingStateDirs"]);
const LOCK_KEYS = new Set(["staleMs", "waitTimeoutMs", "pollMs"]);
const PROVIDER_KEYS = new Set(["enabled", "tokenUrl"]);

export interface ConfigContext {
  stateDir: string;
  home?: string;
  /** Environment for XDG_STATE_HOME (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * The default guard dir: one per OS user, outside every OpenClaw state dir, so that two state dirs
 * of one user (a second gateway, a copied ~/.openclaw, a staging install) coordinate with no config.
 * $XDG_STATE_HOME/openclaw-refresh-guard when XDG_STATE_HOME is an absolute path, else
 * ~/.local/state/openclaw-refresh-guard.
 */
export function defaultGuardDir(home: string, env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_STATE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(home, ".local", "state");
  return join(base, "openclaw-refresh-guard");
}

/** Parses `raw` (plugins.entries["refresh-guard"].config); throws ConfigError naming the path. */
export function parseConfig(raw: unknown, context: ConfigContext): RefreshGuardConfig {
  const config = raw ?? {};
  if (!isRecord(config)) throw new ConfigError(CONFIG_ROOT, `expected an object, got ${describe(config)}`);
  rejectUnknown(config, TOP_KEYS, CONFIG_ROOT);

  const providers: ProviderConfig[] = [];
  const rawProviders = config.providers ?? {};
  if (!isRecord(rawProviders)) throw new ConfigError(`${CONFIG_ROOT}.providers`, `expected an object, got ${describe(rawProviders)}`);
  for (const [id, entry] of Object.entries(rawProviders)) {
    const path = `${CONFIG_ROOT}.providers["${id}"]`;
    const defaultUrl = KNOWN_PROVIDERS[id];
    if (defaultUrl === undefined) {
      throw new ConfigError(path, `unknown provider; refresh-guard guards ${Object.keys(KNOWN_PROVIDERS).join(", ")}`);
    }
    if (!isRecord(entry)) throw new ConfigError(path, `expected an object like { "enabled": true }, got ${describe(entry)}`);
    rejectUnknown(entry, PROVIDER_KEYS, path);
    const enabled = entry.enabled ?? true;
    if (typeof enabled !== "boolean") throw new ConfigError(`${path}.enabled`, `expected true or false, got ${describe(enabled)}`);
    if (!enabled) continue;
    providers.push({ id, tokenUrl: parseTokenUrl(entry.tokenUrl, defaultUrl, `${path}.tokenUrl`) });
  }

  const timing: GuardTiming = { ...DEFAULT_TIMING };
  const lock = config.lock ?? {};
  if (!isRecord(lock)) throw new ConfigError(`${CONFIG_ROOT}.lock`, `expected an object, got ${describe(lock)}`);
  rejectUnknown(lock, LOCK_KEYS, `${CONFIG_ROOT}.lock`);
  for (const bound of BOUNDS) {
    const [head, tail] = bound.path.split(".") as [string, string | undefined];
    const value = tail === undefined ? config[head] : lock[tail];
    if (value === undefined) continue;
    const path = `${CONFIG_ROOT}.${bound.path}`;
    if (typeof value !== "number" || !Number.isFinite(value)) throw new ConfigError(path, `expected a number, got ${describe(value)}`);
    if (value < bound.min || value > bound.max) {
      throw new ConfigError(path, `must be between ${bound.min} and ${bound.max}, got ${value}`);
    }
    timing[bound.key] = value * (bound.scale ?? 1);
  }
  // proper-lockfile refreshes the lock every staleMs / 2 (at least every second).
  timing.updateMs = Math.max(1000, Math.floor(timing.staleMs / 2));
  if (timing.waitTimeoutMs < timing.staleMs) {
    throw new ConfigError(
      `${CONFIG_ROOT}.lock.waitTimeoutMs`,
      `must be at least lock.staleMs (${timing.staleMs}) so a crashed holder's lock can be taken over`,
    );
  }

  const home = context.home ?? homedir();
  const guardDir = parsePath(config.guardDir, defaultGuardDir(home, context.env), `${CONFIG_ROOT}.guardDir`, home);
  let codexAuthFile: string | null = join(home, ".codex", "auth.json");
  if (config.codexAuthFile === false) codexAuthFile = null;
  else if (config.codexAuthFile !== undefined) {
    if (typeof config.codexAuthFile !== "string") {
      throw new ConfigError(`${CONFIG_ROOT}.codexAuthFile`, `expected a path or false, got ${describe(config.codexAuthFile)}`);
    }
    codexAuthFile = parsePath(config.codexAuthFile, codexAuthFile, `${CONFIG_ROOT}.codexAuthFile`, home);
  }
  let siblingStateDirs: "auto" | string[] = "auto";
  const rawDirs = config.siblingStateDirs;
  if (rawDirs !== undefined && rawDirs !== "auto") {
    const path = `${CONFIG_ROOT}.siblingStateDirs`;
    if (!Array.isArray(rawDirs)) throw new ConfigError(path, `expected "auto" or a list of state dir paths, got ${describe(rawDirs)}`);
    siblingStateDirs = rawDirs.map((dir, index) => parsePath(dir, "", `${path}[${index}]`, home));
  }
  return { guardDir, providers, timing, codexAuthFile, siblingStateDirs };
}

function parseTokenUrl(value: unknown, fallback: string, path: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== "string") throw new ConfigError(path, `expected a URL string, got ${describe(value)}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(path, `not a URL: ${JSON.stringify(value.slice(0, 200))}`);
  }
  const loopback = url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]";
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new ConfigError(path, "must be https (plain http only on loopback), since refresh tokens travel in it");
  }
  return value;
}

function parsePath(value: unknown, fallback: string, path: string, home: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || value.trim() === "") {
    throw new ConfigError(path, `expected a non-empty path, got ${describe(value)}`);
  }
  const expanded = value.startsWith("~/") ? join(home, value.slice(2)) : value;
  if (!isAbsolute(expanded)) throw new ConfigError(path, `must be absolute (or start with ~/), got ${JSON.stringify(value)}`);
  return resolve(expanded);
}

function rejectUnknown(object: Record<string, unknown>, allowed: ReadonlySet<string>, path: string): void {
  for (const key of Object.keys(object)) {
    if (!allowed.has(key)) {
      throw new ConfigError(`${path}.${key}`, `unknown key; allowed: ${[...allowed].join(", ")}`);
    }
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 40))}`;
  return `${typeof value} ${typeof value === "object" ? "" : String(value)}`.trim();
}
