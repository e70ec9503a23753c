// The `coordination` section of the config: which backend processes coordinate through (the guard
// directory, or one Redis server for processes that share no disk) and how to reach Redis. Its
// schema (for the manifest) and its parser come from the table below. Credentials come only from
// the URL or from an environment variable the config names; they are never printed.
import { ConfigError } from "../errors/errors.ts";
import { isRecord } from "../oauth/json.ts";
import { redactUrl } from "../store/redis-url.ts";

export type CoordinationConfig =
  | { backend: "file" }
  | {
      backend: "redis";
      url: string;
      keyPrefix: string;
      connectTimeoutMs: number;
      commandTimeoutMs: number;
      /** Name of the environment variable that holds the password (read when connecting). */
      passwordEnv?: string;
      onUnavailable: "fail" | "file";
    };

export const DEFAULT_COORDINATION: CoordinationConfig = { backend: "file" };

type RedisField = "url" | "keyPrefix" | "connectTimeoutMs" | "commandTimeoutMs" | "passwordEnv" | "onUnavailable";

interface Field {
  schema: Record<string, unknown>;
}

const REDIS_FIELDS: Record<RedisField, Field> = {
  url: {
    schema: {
      type: "string",
      pattern: "^rediss?://",
      description:
        "redis://[user[:password]@]host[:port][/db] or rediss:// for TLS. Required with backend redis. Prefer passwordEnv to a password here.",
    },
  },
  keyPrefix: {
    schema: {
      type: "string",
      minLength: 1,
      maxLength: 200,
      default: "refresh-guard:",
      description: "Prefix of every key and channel the guard uses.",
    },
  },
  connectTimeoutMs: {
    schema: {
      type: "integer",
      minimum: 100,
      maximum: 60_000,
      default: 2000,
      description: "Longest wait to connect before the refresh fails (or falls back).",
    },
  },
  commandTimeoutMs: {
    schema: {
      type: "integer",
      minimum: 100,
      maximum: 60_000,
      default: 5000,
      description: "Longest wait for one Redis answer (a restart shorter than this is ridden out); then the refresh fails closed.",
    },
  },
  passwordEnv: {
    schema: {
      type: "string",
      pattern: "^[A-Za-z_][A-Za-z0-9_]*$",
      description: "Environment variable holding the Redis password (used when the URL has none).",
    },
  },
  onUnavailable: {
    schema: {
      enum: ["fail", "file"],
      default: "fail",
      description:
        "Redis unreachable: fail the refresh (fail closed), or fall back to the local file lock with a warning (coordinates only this machine).",
    },
  },
};

export function coordinationSchema(): Record<string, unknown> {
  const redis: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(REDIS_FIELDS)) redis[name] = field.schema;
  return {
    type: "object",
    additionalProperties: false,
    description: "How processes coordinate: the guard directory (file) or one Redis server shared by hosts with no shared disk.",
    properties: {
      backend: {
        enum: ["file", "redis"],
        default: "file",
        description: "file: processes that see one guard directory. redis: every process that reaches coordination.redis.url.",
      },
      redis: { type: "object", additionalProperties: false, properties: redis },
    },
  };
}

export function parseCoordination(raw: unknown, root: string): CoordinationConfig {
  const path = `${root}.coordination`;
  if (raw === undefined) return DEFAULT_COORDINATION;
  if (!isRecord(raw))
    throw new ConfigError(path, `expected an object like { "backend": "redis", "redis": { "url": "redis://host:6379" } }`);
  for (const key of Object.keys(raw)) {
    if (key !== "backend" && key !== "redis") throw new ConfigError(`${path}.${key}`, "unknown key; allowed: backend, redis");
  }
  const backend = raw.backend ?? "file";
  if (backend !== "file" && backend !== "redis")
    throw new ConfigError(`${path}.backend`, `expected "file" or "redis", got ${show(backend)}`);
  const redis = raw.redis ?? {};
  if (!isRecord(redis)) throw new ConfigError(`${path}.redis`, "expected an object");
  for (const key of Object.keys(redis)) {
    if (!(key in REDIS_FIELDS))
      throw new ConfigError(`${path}.redis.${key}`, `unknown key; allowed: ${Object.keys(REDIS_FIELDS).join(", ")}`);
  }
  if (backend === "file") return DEFAULT_COORDINATION;

  const at = (field: RedisField) => `${path}.redis.${field}`;
  if (typeof redis.url !== "string")
    throw new ConfigError(at("url"), `required with backend "redis": a redis:// or rediss:// URL, got ${show(redis.url)}`);
  let url: URL;
  try {
    url = new URL(redis.url);
  } catch {
    throw new ConfigError(at("url"), `not a URL: ${redactUrl(redis.url)}`);
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new ConfigError(at("url"), `must start with redis:// or rediss:// (TLS), got ${url.protocol}//`);
  }
  const keyPrefix = redis.keyPrefix ?? REDIS_FIELDS.keyPrefix.schema.default;
  if (typeof keyPrefix !== "string" || keyPrefix.length === 0 || keyPrefix.length > 200) {
    throw new ConfigError(at("keyPrefix"), `expected a non-empty string of at most 200 characters, got ${show(keyPrefix)}`);
  }
  const config: CoordinationConfig = {
    backend: "redis",
    url: redis.url,
    keyPrefix,
    connectTimeoutMs: integer(redis.connectTimeoutMs, "connectTimeoutMs", at("connectTimeoutMs")),
    commandTimeoutMs: integer(redis.commandTimeoutMs, "commandTimeoutMs", at("commandTimeoutMs")),
    onUnavailable: "fail",
  };
  const onUnavailable = redis.onUnavailable ?? "fail";
  if (onUnavailable !== "fail" && onUnavailable !== "file")
    throw new ConfigError(at("onUnavailable"), `expected "fail" or "file", got ${show(onUnavailable)}`);
  config.onUnavailable = onUnavailable;
  if (redis.passwordEnv !== undefined) {
    if (typeof redis.passwordEnv !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(redis.passwordEnv)) {
      throw new ConfigError(at("passwordEnv"), `expected the name of an environment variable, got ${show(redis.passwordEnv)}`);
    }
    config.passwordEnv = redis.passwordEnv;
  }
  return config;
}

/** The password named by `passwordEnv`, or undefined; throws ConfigError if the variable is not set. */
export function redisPassword(
  config: Extract<CoordinationConfig, { backend: "redis" }>,
  root: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (config.passwordEnv === undefined) return undefined;
  const value = env[config.passwordEnv];
  if (value === undefined || value === "") {
    throw new ConfigError(
      `${root}.coordination.redis.passwordEnv`,
      `the environment variable ${config.passwordEnv} is not set in this process; set it where OpenClaw runs`,
    );
  }
  return value;
}

function integer(value: unknown, field: "connectTimeoutMs" | "commandTimeoutMs", path: string): number {
  const schema = REDIS_FIELDS[field].schema as { minimum: number; maximum: number; default: number };
  if (value === undefined) return schema.default;
  if (typeof value !== "number" || !Number.isInteger(value))
    throw new ConfigError(path, `expected a whole number of milliseconds, got ${show(value)}`);
  if (value < schema.minimum || value > schema.maximum)
    throw new ConfigError(path, `must be between ${schema.minimum} and ${schema.maximum}, got ${value}`);
  return value;
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.slice(0, 40));
  if (value === null) return "null";
  return Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : String(value);
}
