// The `coordination` section of the config: which backend processes coordinate through (the guard
// directory, or one Redis server for processes that share no disk) and how to reach Redis. Its
// schema (for the manifest) and its parser come from the table below. Credentials come only from
// the URL or from an environment variable the config names; they are never printed.
import { ConfigError } from "../errors/errors.ts";
import { isRecord } from "../oauth/json.ts";
import { credentialInQuery, redactUrl } from "../store/redis-url.ts";

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
      /** Name of the environment variable that holds the ACL user name (when the URL has none). */
      usernameEnv?: string;
      tlsCaFile?: string;
      tlsCertFile?: string;
      tlsKeyFile?: string;
      tlsServerName?: string;
      /** Sentinels (host:port) that name the current primary of masterName; the URL's host is then not used. */
      sentinels?: { host: string; port: number }[];
      masterName: string;
      /** Replicas that must acknowledge the lease and each entry (WAIT), bounded by commandTimeoutMs. */
      replicaAcks: number;
      onUnavailable: "fail" | "file";
    };

const DEFAULT_COORDINATION: CoordinationConfig = { backend: "file" };

type RedisField =
  | "url"
  | "keyPrefix"
  | "connectTimeoutMs"
  | "commandTimeoutMs"
  | "passwordEnv"
  | "usernameEnv"
  | "tlsCaFile"
  | "tlsCertFile"
  | "tlsKeyFile"
  | "tlsServerName"
  | "sentinels"
  | "masterName"
  | "replicaAcks"
  | "onUnavailable";

interface Field {
  schema: Record<string, unknown>;
}

function envName(description: string): Field {
  return { schema: { type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_]*$", description } };
}

function text(description: string): Field {
  return { schema: { type: "string", minLength: 1, description } };
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
  passwordEnv: envName("Environment variable holding the Redis password (used when the URL has none)."),
  usernameEnv: envName("Environment variable holding the Redis ACL user name (used when the URL has none)."),
  tlsCaFile: text("rediss:// only: PEM file of the CA that signed the server's certificate (a private CA)."),
  tlsCertFile: text("rediss:// only: PEM client certificate, when the server asks for one."),
  tlsKeyFile: text("rediss:// only: PEM private key of tlsCertFile."),
  tlsServerName: text("rediss:// only: the name the server's certificate carries, when not the URL's host."),
  sentinels: {
    schema: {
      type: "array",
      minItems: 1,
      maxItems: 16,
      items: { type: "string", pattern: "^[^\\s:]+:[0-9]{1,5}$" },
      description:
        "Sentinels (host:port) asked for the current primary of masterName; the URL's host is then not used (its scheme, user and db are).",
    },
  },
  masterName: {
    schema: {
      type: "string",
      minLength: 1,
      maxLength: 200,
      default: "mymaster",
      description: "With sentinels: the name the sentinels monitor.",
    },
  },
  replicaAcks: {
    schema: {
      type: "integer",
      minimum: 0,
      maximum: 16,
      description:
        "Replicas that must acknowledge the lease (else the refresh fails closed) and each journal entry (else a warning) with WAIT, at most commandTimeoutMs. Default 1 with sentinels, else 0.",
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
  const inQuery = credentialInQuery(redis.url);
  if (inQuery !== undefined) {
    throw new ConfigError(
      at("url"),
      `a credential in the URL's query (?${inQuery}=) is printed by tools and logs; remove it and name an environment variable in passwordEnv (and usernameEnv) instead`,
    );
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
    masterName: "mymaster",
    replicaAcks: 0,
    onUnavailable: "fail",
  };
  const onUnavailable = redis.onUnavailable ?? "fail";
  if (onUnavailable !== "fail" && onUnavailable !== "file")
    throw new ConfigError(at("onUnavailable"), `expected "fail" or "file", got ${show(onUnavailable)}`);
  config.onUnavailable = onUnavailable;
  for (const field of ["passwordEnv", "usernameEnv"] as const) {
    const name = redis[field];
    if (name === undefined) continue;
    if (typeof name !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new ConfigError(at(field), `expected the name of an environment variable, got ${show(name)}`);
    config[field] = name;
  }
  for (const field of ["tlsCaFile", "tlsCertFile", "tlsKeyFile", "tlsServerName"] as const) {
    const value = redis[field];
    if (value === undefined) continue;
    if (typeof value !== "string" || value.length === 0)
      throw new ConfigError(at(field), `expected a non-empty string, got ${show(value)}`);
    if (url.protocol !== "rediss:") throw new ConfigError(at(field), "needs a rediss:// URL (TLS)");
    config[field] = value;
  }
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined)) {
    throw new ConfigError(at(config.tlsCertFile === undefined ? "tlsCertFile" : "tlsKeyFile"), "tlsCertFile and tlsKeyFile go together");
  }
  if (redis.sentinels !== undefined) {
    if (!Array.isArray(redis.sentinels) || redis.sentinels.length === 0 || redis.sentinels.length > 16) {
      throw new ConfigError(at("sentinels"), `expected a list of 1 to 16 "host:port" strings, got ${show(redis.sentinels)}`);
    }
    config.sentinels = redis.sentinels.map((entry: unknown, i: number) => {
      const match = typeof entry === "string" ? /^([^\s:]+):(\d{1,5})$/.exec(entry) : null;
      const port = Number(match?.[2]);
      if (match === null || port < 1 || port > 65535)
        throw new ConfigError(`${at("sentinels")}[${i}]`, `expected "host:port", got ${show(entry)}`);
      return { host: match[1] ?? "", port };
    });
  }
  // Read only with sentinels, accepted without: 2026.9.x fills the manifest's default into every redis section.
  const name = redis.masterName ?? config.masterName;
  if (typeof name !== "string" || name.length === 0 || name.length > 200)
    throw new ConfigError(at("masterName"), `expected a non-empty string of at most 200 characters, got ${show(name)}`);
  config.masterName = name;
  const acks = redis.replicaAcks ?? (config.sentinels !== undefined ? 1 : 0);
  if (typeof acks !== "number" || !Number.isInteger(acks) || acks < 0 || acks > 16) {
    throw new ConfigError(at("replicaAcks"), `expected a whole number from 0 to 16, got ${show(acks)}`);
  }
  config.replicaAcks = acks;
  return config;
}

/** The ACL user named by `usernameEnv`, or undefined; throws ConfigError if the variable is not set. */
export function redisUsername(config: RedisSettings, root: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return fromEnv(config, "usernameEnv", root, env);
}

/** The password named by `passwordEnv`, or undefined; throws ConfigError if the variable is not set. */
export function redisPassword(config: RedisSettings, root: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return fromEnv(config, "passwordEnv", root, env);
}

type RedisSettings = Extract<CoordinationConfig, { backend: "redis" }>;

function fromEnv(config: RedisSettings, field: "usernameEnv" | "passwordEnv", root: string, env: NodeJS.ProcessEnv): string | undefined {
  const name = config[field];
  if (name === undefined) return undefined;
  const value = env[name];
  if (value === undefined || value === "") {
    throw new ConfigError(
      `${root}.coordination.redis.${field}`,
      `the environment variable ${name} is not set in this process; set it where OpenClaw runs`,
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
