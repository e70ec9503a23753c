// The plugin's configuration, checked here and only here: the manifest's JSON Schema documents
// every key but validates none (a host refuses every command while a plugin's config fails its
// schema), so a problem is reported by this parser, naming its full path in openclaw.json, and the
// host keeps running. What is allowed comes from the table in options.ts.
import { type Stats, statSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { DEFAULT_TIMING, type GuardTiming, heartbeatFor } from "../core/timing.ts";
import { ConfigError } from "../errors/errors.ts";
import { isRecord } from "../oauth/json.ts";
import { knownProviderIds, providerById } from "../providers/registry.ts";
import { type CoordinationConfig, parseCoordination } from "./coordination-config.ts";
import { CONFIG_ROOT, type NumberOption, OPTIONS, type PathListOption, type PathOption, PLUGIN_ID } from "./options.ts";

export { CONFIG_ROOT, PLUGIN_ID };

export interface ProviderConfig {
  id: string;
  tokenUrl: string;
}

export interface RefreshGuardConfig {
  guardDir: string;
  providers: ProviderConfig[];
  timing: GuardTiming;
  /** Each provider's own credential files by config key (`codexAuthFile`); null = not read. */
  providerFiles: Record<string, string | null>;
  /** Where processes coordinate (coordination-config.ts). */
  coordination: CoordinationConfig;
  /** Other OpenClaw state dirs recovery reads: "auto" (~/.openclaw, ~/.openclaw-*) or a list. */
  siblingStateDirs: "auto" | string[];
}

export interface ConfigContext {
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
  const base = xdg && isAbsolute(xdg) && ownStateHome(xdg) ? xdg : join(home, ".local", "state");
  return join(base, "openclaw-refresh-guard");
}

/**
 * XDG_STATE_HOME counts only if this user owns it and nobody else can write it (or it does not
 * exist yet: then the plugin creates it, private): in a shared one another local user could
 * create `openclaw-refresh-guard` first and block every refresh.
 */
function ownStateHome(dir: string): boolean {
  let stat: Stats;
  try {
    stat = statSync(dir);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT";
  }
  const uid = process.getuid?.();
  return stat.isDirectory() && (uid === undefined || stat.uid === uid) && (stat.mode & 0o022) === 0;
}

/**
 * This user's home: $HOME when it is an absolute path, else (unset, empty as in some service
 * units, or relative) the passwd entry, so that no path the plugin derives from it depends on the
 * working directory.
 */
export function userHome(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.HOME;
  if (home && isAbsolute(home)) return home;
  try {
    const entry = userInfo().homedir;
    if (entry && isAbsolute(entry)) return entry;
  } catch {
    // No passwd entry (a container's arbitrary uid): homedir() is all there is.
  }
  const fallback = homedir();
  return isAbsolute(fallback) ? fallback : resolve("/", fallback);
}

/** A provider file's default: under the directory its environment variable names (an absolute path), else under home. */
function providerFileDefault(option: PathOption, home: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = option.envDir ? env[option.envDir.variable] : undefined;
  if (option.envDir && dir && isAbsolute(dir)) return join(dir, option.envDir.file);
  return join(home, option.homePath ?? "");
}
const PROVIDER_KEYS = new Set(["enabled", "tokenUrl"]);

/** Parses `raw` (plugins.entries["refresh-guard"].config); throws ConfigError naming the path. */
export function parseConfig(raw: unknown, context: ConfigContext): RefreshGuardConfig {
  const config = raw ?? {};
  if (!isRecord(config)) throw new ConfigError(CONFIG_ROOT, `expected an object, got ${describe(config)}`);
  const groups = new Map<string, Set<string>>();
  const top = new Set(["providers", "coordination"]);
  for (const option of OPTIONS) {
    const [head, tail] = option.path.split(".") as [string, string | undefined];
    top.add(head);
    if (tail === undefined) continue;
    const group = groups.get(head) ?? new Set<string>();
    group.add(tail);
    groups.set(head, group);
  }
  rejectUnknown(config, top, CONFIG_ROOT);
  for (const [group, keys] of groups) {
    const value = config[group] ?? {};
    if (!isRecord(value)) throw new ConfigError(`${CONFIG_ROOT}.${group}`, `expected an object, got ${describe(value)}`);
    rejectUnknown(value, keys, `${CONFIG_ROOT}.${group}`);
  }

  const home = context.home ?? userHome(context.env);
  const timing: GuardTiming = { ...DEFAULT_TIMING };
  const fallbackGuardDir = defaultGuardDir(home, context.env);
  const paths = new Map<string, string | null>([["guardDir", fallbackGuardDir]]);
  for (const option of OPTIONS)
    if (option.kind === "path" && option.homePath !== undefined) paths.set(option.path, providerFileDefault(option, home, context.env));
  let siblingStateDirs: "auto" | string[] = "auto";
  for (const option of OPTIONS) {
    const value = valueAt(config, option.path);
    if (value === undefined) continue;
    if (option.kind === "number") timing[option.timing] = parseNumber(option, value);
    else if (option.kind === "path") paths.set(option.path, parsePath(option, value, home));
    else siblingStateDirs = parsePathList(option, value, home);
  }
  timing.updateMs = heartbeatFor(timing.staleMs);
  if (timing.waitTimeoutMs < timing.staleMs) {
    throw new ConfigError(
      `${CONFIG_ROOT}.lock.waitTimeoutMs`,
      `must be at least lock.staleMs (${timing.staleMs}) so a crashed holder's lock can be taken over`,
    );
  }
  return {
    guardDir: paths.get("guardDir") ?? fallbackGuardDir,
    providers: parseProviders(config.providers),
    timing,
    providerFiles: Object.fromEntries([...paths].filter(([key]) => key !== "guardDir")),
    coordination: parseCoordination(config.coordination, CONFIG_ROOT),
    siblingStateDirs,
  };
}

function parseProviders(raw: unknown): ProviderConfig[] {
  const rawProviders = raw ?? {};
  if (!isRecord(rawProviders)) throw new ConfigError(`${CONFIG_ROOT}.providers`, `expected an object, got ${describe(rawProviders)}`);
  const providers: ProviderConfig[] = [];
  for (const [id, entry] of Object.entries(rawProviders)) {
    const path = `${CONFIG_ROOT}.providers["${id}"]`;
    const provider = providerById(id);
    if (provider === undefined) throw new ConfigError(path, `unknown provider; refresh-guard guards ${knownProviderIds().join(", ")}`);
    if (!isRecord(entry)) throw new ConfigError(path, `expected an object like { "enabled": true }, got ${describe(entry)}`);
    rejectUnknown(entry, PROVIDER_KEYS, path);
    const enabled = entry.enabled ?? true;
    if (typeof enabled !== "boolean") throw new ConfigError(`${path}.enabled`, `expected true or false, got ${describe(enabled)}`);
    if (!enabled) continue;
    providers.push({ id, tokenUrl: parseTokenUrl(entry.tokenUrl, provider.tokenUrl, `${path}.tokenUrl`) });
  }
  return providers;
}

function valueAt(config: Record<string, unknown>, path: string): unknown {
  const [head, tail] = path.split(".") as [string, string | undefined];
  if (tail === undefined) return config[head];
  const group = config[head];
  return isRecord(group) ? group[tail] : undefined;
}

function parseNumber(option: NumberOption, value: unknown): number {
  const path = `${CONFIG_ROOT}.${option.path}`;
  if (typeof value !== "number" || !Number.isFinite(value)) throw new ConfigError(path, `expected a number, got ${describe(value)}`);
  if (value < option.min || value > option.max)
    throw new ConfigError(path, `must be between ${option.min} and ${option.max}, got ${value}`);
  if (option.integer && !Number.isInteger(value)) throw new ConfigError(path, `expected a whole number, got ${value}`);
  return value * option.scale;
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

function parsePath(option: PathOption, value: unknown, home: string): string | null {
  const path = `${CONFIG_ROOT}.${option.path}`;
  if (option.allowFalse && value === false) return null;
  if (typeof value !== "string" || value.trim() === "") {
    throw new ConfigError(path, `expected ${option.allowFalse ? "a path or false" : "a non-empty path"}, got ${describe(value)}`);
  }
  const expanded = value.startsWith("~/") ? join(home, value.slice(2)) : value;
  if (!isAbsolute(expanded)) throw new ConfigError(path, `must be absolute (or start with ~/), got ${JSON.stringify(value)}`);
  return resolve(expanded);
}

function parsePathList(option: PathListOption, value: unknown, home: string): "auto" | string[] {
  if (value === "auto") return "auto";
  const path = `${CONFIG_ROOT}.${option.path}`;
  if (!Array.isArray(value)) throw new ConfigError(path, `expected "auto" or a list of state dir paths, got ${describe(value)}`);
  return value.map(
    (entry, index) =>
      parsePath(
        { kind: "path", path: `${option.path}[${index}]`, allowFalse: false, defaultText: "", description: "" },
        entry,
        home,
      ) as string,
  );
}

function rejectUnknown(object: Record<string, unknown>, allowed: ReadonlySet<string>, path: string): void {
  for (const key of Object.keys(object)) {
    if (!allowed.has(key)) throw new ConfigError(`${path}.${key}`, `unknown key; allowed: ${[...allowed].join(", ")}`);
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 40))}`;
  return `${typeof value} ${typeof value === "object" ? "" : String(value)}`.trim();
}
