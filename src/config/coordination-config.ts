// The `coordination` section of the config as the plugin uses it: which backend processes
// coordinate through (the guard directory, or one Redis server for processes that share no disk)
// and how to reach Redis. Its keys, defaults and bounds are rows of the table in options.ts.
// Credentials come only from the URL or from an environment variable the config names; they are
// never printed.
import { ConfigError } from "../errors/errors.ts";

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

/** The section from the parsed values of its table rows (by path: `coordination.redis.url`…). */
export function coordinationFrom(values: ReadonlyMap<string, unknown>): CoordinationConfig {
  if (values.get("coordination.backend") !== "redis") return { backend: "file" };
  const at = (field: string) => values.get(`coordination.redis.${field}`);
  const config: CoordinationConfig = {
    backend: "redis",
    url: at("url") as string,
    keyPrefix: at("keyPrefix") as string,
    connectTimeoutMs: at("connectTimeoutMs") as number,
    commandTimeoutMs: at("commandTimeoutMs") as number,
    onUnavailable: at("onUnavailable") as "fail" | "file",
  };
  const passwordEnv = at("passwordEnv");
  if (typeof passwordEnv === "string") config.passwordEnv = passwordEnv;
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
