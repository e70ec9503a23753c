// The coordination section: file by default, Redis settings with their defaults, errors that name
// the full path, and a password never shown.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

import { redisPassword } from "../../src/config/coordination-config.ts";
import { CONFIG_ROOT, parseConfig } from "../../src/config/parse-config.ts";
import { ConfigError } from "../../src/errors/errors.ts";
import { redactUrl } from "../../src/store/redis-url.ts";

const context = { stateDir: "/state", home: "/home/u" };
const redis = (settings: Record<string, unknown>) =>
  parseConfig({ coordination: { backend: "redis", redis: settings } }, context).coordination;

/** Fills `schema`'s defaults into the objects `value` has, as 2026.9.x does with a plugin's config. */
function withSchemaDefaults(schema: Record<string, unknown>, value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [key, property] of Object.entries(properties)) {
    if (out[key] === undefined && "default" in property) out[key] = property.default;
    else if (out[key] !== undefined) out[key] = withSchemaDefaults(property, out[key]);
  }
  return out;
}

describe("coordination config", () => {
  it("accepts a redis section with the manifest's defaults filled in, as 2026.9.x passes it (no sentinels)", () => {
    const schema = JSON.parse(readFileSync(new URL("../../openclaw.plugin.json", import.meta.url), "utf8")).configSchema;
    const given = withSchemaDefaults(schema, {
      providers: { openai: { enabled: true } },
      coordination: { backend: "redis", redis: { url: "redis://cache:6379" } },
    }) as { coordination: { redis: Record<string, unknown> } };
    expect(given.coordination.redis.masterName).toBe("mymaster");
    expect(parseConfig(given, context).coordination).toMatchObject({ backend: "redis", url: "redis://cache:6379", replicaAcks: 0 });
  });

  it("defaults to the file backend with no config at all", () => {
    expect(parseConfig(undefined, context).coordination).toEqual({ backend: "file" });
    expect(parseConfig({ coordination: { backend: "file", redis: { url: "redis://ignored" } } }, context).coordination).toEqual({
      backend: "file",
    });
  });

  it("fills Redis defaults: key prefix, timeouts, fail closed", () => {
    expect(redis({ url: "redis://cache:6379/2" })).toEqual({
      backend: "redis",
      url: "redis://cache:6379/2",
      keyPrefix: "refresh-guard:",
      connectTimeoutMs: 2000,
      commandTimeoutMs: 5000,
      masterName: "mymaster",
      replicaAcks: 0,
      onUnavailable: "fail",
    });
    expect(
      redis({ url: "rediss://cache:6380", onUnavailable: "file", passwordEnv: "RG_REDIS_PASSWORD", keyPrefix: "prod:" }),
    ).toMatchObject({
      url: "rediss://cache:6380",
      onUnavailable: "file",
      passwordEnv: "RG_REDIS_PASSWORD",
      keyPrefix: "prod:",
    });
  });

  it.each([
    [{}, "url", /required/],
    [{ url: "http://cache:6379" }, "url", /redis:\/\/ or rediss:\/\//],
    [{ url: "redis://cache", connectTimeoutMs: 5 }, "connectTimeoutMs", /between 100 and 60000/],
    [{ url: "redis://cache", commandTimeoutMs: "5s" }, "commandTimeoutMs", /whole number/],
    [{ url: "redis://cache", onUnavailable: "retry" }, "onUnavailable", /"fail" or "file"/],
    [{ url: "redis://cache", passwordEnv: "not a name" }, "passwordEnv", /environment variable/],
    [{ url: "redis://cache", host: "x" }, "host", /unknown key/],
    [{ url: "redis://cache/?password=pw-in-query" }, "url", /passwordEnv/],
    [{ url: "redis://cache", tlsCaFile: "/ca.pem" }, "tlsCaFile", /rediss:\/\//],
    [{ url: "rediss://cache", tlsCertFile: "/c.pem" }, "tlsKeyFile", /go together/],
    [{ url: "redis://cache", sentinels: ["s1"] }, "sentinels[0]", /host:port/],
    [{ url: "redis://cache", sentinels: [] }, "sentinels", /1 to 16/],
    [{ url: "redis://cache", masterName: "" }, "masterName", /non-empty string/],
    [{ url: "redis://cache", replicaAcks: -1 }, "replicaAcks", /0 to 16/],
    [{ url: "redis://cache", usernameEnv: "a b" }, "usernameEnv", /environment variable/],
  ])("refuses redis %j naming coordination.redis.%s", (settings, field, message) => {
    let error: unknown;
    try {
      redis(settings);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).configPath).toBe(`${CONFIG_ROOT}.coordination.redis.${field}`);
    expect((error as ConfigError).message).toMatch(message);
  });

  it("reads TLS files, sentinels (WAIT for one replica by default with them) and the user's variable", () => {
    expect(
      redis({
        url: "rediss://mymaster",
        tlsCaFile: "/etc/ca.pem",
        tlsServerName: "redis.internal",
        sentinels: ["10.0.0.1:26379", "s2.internal:26380"],
        masterName: "cache",
        usernameEnv: "RG_USER",
      }),
    ).toMatchObject({
      tlsCaFile: "/etc/ca.pem",
      tlsServerName: "redis.internal",
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "s2.internal", port: 26380 },
      ],
      masterName: "cache",
      usernameEnv: "RG_USER",
      replicaAcks: 1,
    });
    expect(redis({ url: "redis://m", sentinels: ["a:1"], replicaAcks: 0 })).toMatchObject({ replicaAcks: 0 });
  });

  it("refuses an unknown backend", () => {
    expect(() => parseConfig({ coordination: { backend: "etcd" } }, context)).toThrow(/coordination.backend: expected "file" or "redis"/);
  });

  it("reads the password only from the named environment variable, and says which one is missing", () => {
    const config = redis({ url: "redis://cache", passwordEnv: "RG_TEST_REDIS_PW" });
    if (config.backend !== "redis") throw new Error("expected redis");
    expect(redisPassword(config, CONFIG_ROOT, { RG_TEST_REDIS_PW: "pw" })).toBe("pw");
    expect(() => redisPassword(config, CONFIG_ROOT, {})).toThrow(/RG_TEST_REDIS_PW is not set/);
  });

  it("never shows a password (or a non-default user) in a URL", () => {
    expect(redactUrl("redis://default:s3cret@cache:6379/1")).toBe("redis://default@cache:6379/1");
    expect(redactUrl("rediss://admin:s3cret@cache:6380")).toBe("rediss://***@cache:6380");
    expect(redactUrl("redis://cache:6379")).toBe("redis://cache:6379");
    expect(redactUrl("redis://:s3cret@cache")).not.toContain("s3cret");
  });
});
