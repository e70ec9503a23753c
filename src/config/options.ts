// Every configuration key in one table: its path under plugins.entries["refresh-guard"].config,
// type, default, bounds and meaning, the Redis keys under `coordination` included. The code parser
// (parse-config.ts), the manifest's JSON Schema (config-schema.ts; openclaw.plugin.json, checked by
// a test and rewritten by `npm run manifest`) and the README's configuration tables (checked by
// test/unit/config-docs.test.ts) all come from it. `providers` is derived from providers/registry.ts.
import { DEFAULT_TIMING, type GuardTiming } from "../core/timing.ts";
import { PROVIDERS } from "../providers/registry.ts";
import { redactUrl } from "../store/redis-url.ts";

export const PLUGIN_ID = "refresh-guard";
export const CONFIG_ROOT = `plugins.entries["${PLUGIN_ID}"].config`;

/** Only parsed when another option has this value (the Redis keys: with `coordination.backend` "redis"). */
export interface OnlyWith {
  path: string;
  value: string;
}

/**
 * A number the user sets in its own unit. A timing option's `scale` turns it into the timing
 * field's milliseconds and its default is the guard's own (core/timing.ts); any other states its default.
 */
export interface NumberOption {
  kind: "number";
  path: string;
  target: { timing: keyof GuardTiming } | { default: number };
  integer: boolean;
  min: number;
  max: number;
  scale: number;
  /** Named in the "not a number" message (`milliseconds`). */
  unit?: string;
  onlyWith?: OnlyWith;
  description: string;
}

/** One of a few strings. */
export interface ChoiceOption {
  kind: "choice";
  path: string;
  values: readonly string[];
  default: string;
  onlyWith?: OnlyWith;
  description: string;
}

/** A string, checked by `check` (a problem, or undefined when fine). */
export interface TextOption {
  kind: "text";
  path: string;
  /** What is expected, for messages: `a redis:// or rediss:// URL`. */
  expected: string;
  default?: string;
  /** Set: the key must be given (when its `onlyWith` holds); the text says when (`with backend "redis"`). */
  required?: string;
  check: (value: string) => string | undefined;
  /** What the schema says about the allowed text (`Matches ^rediss?://.`). */
  note?: string;
  onlyWith?: OnlyWith;
  description: string;
}

export interface PathOption {
  kind: "path";
  path: string;
  /** `false` is allowed and means "skip". */
  allowFalse: boolean;
  /** Told in the schema; the real default depends on the machine. */
  defaultText: string;
  /** The default, under the home directory (a provider's file); none = the parser's own default. */
  homePath?: string;
  description: string;
}

/** `"auto"` (found by the plugin) or a list of absolute paths. */
export interface PathListOption {
  kind: "pathList";
  path: string;
  defaultText: string;
  description: string;
}

export type Option = NumberOption | PathOption | PathListOption | ChoiceOption | TextOption;

/** Descriptions of the groups options sit in (`lock.staleMs` sits in `lock`). */
export const GROUPS: Readonly<Record<string, string | undefined>> = {
  lock: "lock settings.",
  coordination: "How processes coordinate: the guard directory (file) or one Redis server shared by hosts with no shared disk.",
};

const DAY_MS = 86_400_000;

function numberOption(
  path: string,
  timing: keyof GuardTiming,
  min: number,
  max: number,
  description: string,
  unit: { scale?: number; integer?: boolean } = {},
): NumberOption {
  return { kind: "number", path, target: { timing }, min, max, scale: unit.scale ?? 1, integer: unit.integer ?? true, description };
}

const WITH_REDIS: OnlyWith = { path: "coordination.backend", value: "redis" };
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function redisMs(path: string, fallback: number, description: string): NumberOption {
  const target = { default: fallback };
  return {
    kind: "number",
    path,
    target,
    min: 100,
    max: 60_000,
    scale: 1,
    integer: true,
    unit: "milliseconds",
    onlyWith: WITH_REDIS,
    description,
  };
}

function checkRedisUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `not a URL: ${redactUrl(value)}`;
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") return `must start with redis:// or rediss:// (TLS), got ${url.protocol}//`;
  return undefined;
}

export const OPTIONS: readonly Option[] = [
  {
    kind: "path",
    path: "guardDir",
    allowFalse: false,
    defaultText:
      "$XDG_STATE_HOME/openclaw-refresh-guard, else ~/.local/state/openclaw-refresh-guard (one per OS user, shared by all its state dirs)",
    description: "Locks, journal and status record (created 0700).",
  },
  numberOption(
    "lock.staleMs",
    "staleMs",
    2000,
    600_000,
    "A lock not refreshed for this long belongs to a dead or frozen holder and is taken over.",
  ),
  numberOption(
    "lock.waitTimeoutMs",
    "waitTimeoutMs",
    1000,
    600_000,
    "Longest wait for the lock (at least lock.staleMs); then the refresh fails closed.",
  ),
  numberOption("lock.pollMs", "pollMs", 5, 5000, "Fallback poll while waiting (a directory watch normally wakes waiters first)."),
  numberOption("requestTimeoutMs", "requestTimeoutMs", 1000, 600_000, "Longest wait for the token endpoint's answer."),
  numberOption("minValiditySeconds", "minValidityMs", 0, 86_400, "A stored access token is handed out only if it stays valid this long.", {
    scale: 1000,
  }),
  numberOption("retentionDays", "retentionMs", 1, 365, "Journal entries and spent markers are pruned after this.", {
    scale: DAY_MS,
    integer: false,
  }),
  // Each provider's own credential files (providers/*.ts declare them).
  ...PROVIDERS.flatMap((provider) =>
    provider.files.map(
      (file): PathOption => ({
        kind: "path",
        path: file.key,
        allowFalse: true,
        defaultText: `~/${file.homePath}`,
        homePath: file.homePath,
        description: file.description,
      }),
    ),
  ),
  {
    kind: "pathList",
    path: "siblingStateDirs",
    defaultText: '"auto": ~/.openclaw and ~/.openclaw-<profile>',
    description: 'Other OpenClaw state dirs whose stores recovery reads (never writes): "auto", or a list of paths ([] for none).',
  },
  {
    kind: "choice",
    path: "coordination.backend",
    values: ["file", "redis"],
    default: "file",
    description: "file: processes that see one guard directory. redis: every process that reaches coordination.redis.url.",
  },
  {
    kind: "text",
    path: "coordination.redis.url",
    expected: "a redis:// or rediss:// URL",
    required: 'with backend "redis"',
    check: checkRedisUrl,
    note: "Matches ^rediss?://.",
    onlyWith: WITH_REDIS,
    description:
      "redis://[user[:password]@]host[:port][/db] or rediss:// for TLS. Required with backend redis. Prefer passwordEnv to a password here.",
  },
  {
    kind: "text",
    path: "coordination.redis.keyPrefix",
    expected: "a non-empty string of at most 200 characters",
    default: "refresh-guard:",
    check: (value) => (value.length === 0 || value.length > 200 ? "must be 1 to 200 characters" : undefined),
    note: "1 to 200 characters.",
    onlyWith: WITH_REDIS,
    description: "Prefix of every key and channel the guard uses.",
  },
  redisMs("coordination.redis.connectTimeoutMs", 2000, "Longest wait to connect before the refresh fails (or falls back)."),
  redisMs(
    "coordination.redis.commandTimeoutMs",
    5000,
    "Longest wait for one Redis answer (a restart shorter than this is ridden out); then the refresh fails closed.",
  ),
  {
    kind: "text",
    path: "coordination.redis.passwordEnv",
    expected: "the name of an environment variable",
    check: (value) =>
      ENV_NAME.test(value) ? undefined : `expected the name of an environment variable, got ${JSON.stringify(value.slice(0, 40))}`,
    note: "Matches ^[A-Za-z_][A-Za-z0-9_]*$.",
    onlyWith: WITH_REDIS,
    description: "Environment variable holding the Redis password (used when the URL has none).",
  },
  {
    kind: "choice",
    path: "coordination.redis.onUnavailable",
    values: ["fail", "file"],
    default: "fail",
    onlyWith: WITH_REDIS,
    description:
      "Redis unreachable: fail the refresh (fail closed), or fall back to the local file lock with a warning (coordinates only this machine).",
  },
];

/** The user-facing default of a number option, in its own unit. */
export function defaultOf(option: NumberOption): number {
  return "timing" in option.target ? DEFAULT_TIMING[option.target.timing] / option.scale : option.target.default;
}
