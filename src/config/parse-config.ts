// The plugin's configuration, checked a second time in code (the host checks the manifest's JSON
// Schema first) so that every problem names its full path in openclaw.json. What is allowed comes
// from the table in options.ts.
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { DEFAULT_TIMING, type GuardTiming, heartbeatFor } from "../core/timing.ts";
import { ConfigError } from "../errors/errors.ts";
import { isRecord } from "../oauth/json.ts";
import { knownProviderIds, providerById } from "../providers/registry.ts";
import { type CoordinationConfig, coordinationFrom } from "./coordination-config.ts";
import {
  type ChoiceOption,
  CONFIG_ROOT,
  defaultOf,
  type NumberOption,
  OPTIONS,
  type Option,
  type PathListOption,
  type PathOption,
  PLUGIN_ID,
  type TextOption,
} from "./options.ts";

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
function defaultGuardDir(home: string, env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_STATE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(home, ".local", "state");
  return join(base, "openclaw-refresh-guard");
}

const PROVIDER_KEYS = new Set(["enabled", "tokenUrl"]);

/** Parses `raw` (plugins.entries["refresh-guard"].config); throws ConfigError naming the path. */
export function parseConfig(raw: unknown, context: ConfigContext): RefreshGuardConfig {
  const config = raw ?? {};
  if (!isRecord(config)) throw new ConfigError(CONFIG_ROOT, `expected an object, got ${describe(config)}`);
  // Every group an option sits in (`lock`, `coordination`, `coordination.redis`) and the keys it allows.
  const groups = new Map<string, Set<string>>([["", new Set(["providers"])]]);
  for (const option of OPTIONS) {
    const names = option.path.split(".");
    for (let depth = 0; depth < names.length; depth += 1) {
      const group = names.slice(0, depth).join(".");
      const keys = groups.get(group) ?? new Set<string>();
      keys.add(names[depth] as string);
      groups.set(group, keys);
    }
  }
  for (const [group, keys] of groups) {
    const value = group === "" ? config : (valueAt(config, group) ?? {});
    const path = group === "" ? CONFIG_ROOT : `${CONFIG_ROOT}.${group}`;
    if (!isRecord(value)) throw new ConfigError(path, `expected an object, got ${describe(value)}`);
    rejectUnknown(value, keys, path);
  }

  const home = context.home ?? homedir();
  const timing: GuardTiming = { ...DEFAULT_TIMING };
  const fallbackGuardDir = defaultGuardDir(home, context.env);
  const paths = new Map<string, string | null>([["guardDir", fallbackGuardDir]]);
  const values = new Map<string, unknown>();
  let siblingStateDirs: "auto" | string[] = "auto";
  for (const option of OPTIONS) {
    const only = "onlyWith" in option ? option.onlyWith : undefined;
    if (only !== undefined && values.get(only.path) !== only.value) continue;
    const value = valueAt(config, option.path);
    if (option.kind === "path" && option.homePath !== undefined) paths.set(option.path, join(home, option.homePath));
    if (value === undefined) {
      const fallback = defaultValue(option);
      if (fallback !== undefined) values.set(option.path, fallback);
      continue;
    }
    if (option.kind === "number") {
      const parsed = parseNumber(option, value);
      values.set(option.path, parsed);
      if ("timing" in option.target) timing[option.target.timing] = parsed;
    } else if (option.kind === "path") paths.set(option.path, parsePath(option, value, home));
    else if (option.kind === "pathList") siblingStateDirs = parsePathList(option, value, home);
    else if (option.kind === "choice") values.set(option.path, parseChoice(option, value));
    else values.set(option.path, parseText(option, value));
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
    coordination: coordinationFrom(values),
    siblingStateDirs,
  };
}

/** What an option not given stands for; a required one (a Redis URL with backend redis) is refused. */
function defaultValue(option: Option): unknown {
  if (option.kind === "number") return "timing" in option.target ? undefined : defaultOf(option);
  if (option.kind === "choice") return option.default;
  if (option.kind !== "text") return undefined;
  if (option.required !== undefined)
    throw new ConfigError(`${CONFIG_ROOT}.${option.path}`, `required ${option.required}: ${option.expected}, got undefined`);
  return option.default;
}

function parseChoice(option: ChoiceOption, value: unknown): string {
  if (typeof value !== "string" || !option.values.includes(value))
    throw new ConfigError(
      `${CONFIG_ROOT}.${option.path}`,
      `expected ${option.values.map((v) => JSON.stringify(v)).join(" or ")}, got ${describe(value)}`,
    );
  return value;
}

function parseText(option: TextOption, value: unknown): string {
  const path = `${CONFIG_ROOT}.${option.path}`;
  if (typeof value !== "string") throw new ConfigError(path, `expected ${option.expected}, got ${describe(value)}`);
  const problem = option.check(value);
  if (problem !== undefined) throw new ConfigError(path, problem);
  return value;
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
  let value: unknown = config;
  for (const name of path.split(".")) value = isRecord(value) ? value[name] : undefined;
  return value;
}

function parseNumber(option: NumberOption, value: unknown): number {
  const path = `${CONFIG_ROOT}.${option.path}`;
  if (typeof value !== "number" || !Number.isFinite(value))
    throw new ConfigError(path, `expected ${option.unit ? `a whole number of ${option.unit}` : "a number"}, got ${describe(value)}`);
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
