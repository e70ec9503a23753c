import { describe, expect, it } from "vitest";

import { CONFIG_ROOT, parseConfig } from "../../src/config/parse-config.ts";
import { DEFAULT_TIMING } from "../../src/core/refresh-guard.ts";
import { ConfigError, ERR_CONFIG } from "../../src/errors/errors.ts";

const context = { stateDir: "/state", home: "/home/u", env: {} };

function problem(raw: unknown): ConfigError {
  try {
    parseConfig(raw, context);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe(ERR_CONFIG);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("parseConfig", () => {
  it("applies documented defaults: one guard dir per user outside the state dir, no provider, default timing", () => {
    const config = parseConfig(undefined, context);
    expect(config.guardDir).toBe("/home/u/.local/state/openclaw-refresh-guard");
    expect(config.providers).toEqual([]);
    expect(config.timing).toEqual(DEFAULT_TIMING);
    expect(config.providerFiles.codexAuthFile).toBe("/home/u/.codex/auth.json");
  });

  it("puts the default guard dir under an absolute XDG_STATE_HOME, the same for every state dir", () => {
    const env = { XDG_STATE_HOME: "/xdg/state" };
    expect(parseConfig(undefined, { ...context, env }).guardDir).toBe("/xdg/state/openclaw-refresh-guard");
    expect(parseConfig(undefined, { ...context, stateDir: "/other", env }).guardDir).toBe("/xdg/state/openclaw-refresh-guard");
    // A relative XDG_STATE_HOME is invalid per the XDG spec and ignored.
    expect(parseConfig(undefined, { ...context, env: { XDG_STATE_HOME: "rel" } }).guardDir).toBe(
      "/home/u/.local/state/openclaw-refresh-guard",
    );
  });

  it("enables listed providers at the OpenAI token endpoint and leaves enabled:false ones out", () => {
    const config = parseConfig({ providers: { "openai-codex": { enabled: true }, openai: { enabled: false } } }, context);
    expect(config.providers).toEqual([{ id: "openai-codex", tokenUrl: "https://auth.openai.com/oauth/token" }]);
  });

  it("accepts openai as the same endpoint for hosts that renamed the provider", () => {
    const config = parseConfig({ providers: { openai: {} } }, context);
    expect(config.providers).toEqual([{ id: "openai", tokenUrl: "https://auth.openai.com/oauth/token" }]);
  });

  it("converts user units: seconds, days, and derives the heartbeat from staleMs", () => {
    const config = parseConfig({ lock: { staleMs: 8000, waitTimeoutMs: 20000 }, minValiditySeconds: 30, retentionDays: 2 }, context);
    expect(config.timing.staleMs).toBe(8000);
    expect(config.timing.updateMs).toBe(4000);
    expect(config.timing.minValidityMs).toBe(30_000);
    expect(config.timing.retentionMs).toBe(2 * 86_400_000);
  });

  it("expands ~/ in guardDir and codexAuthFile, and codexAuthFile false skips it", () => {
    expect(parseConfig({ guardDir: "~/g" }, context).guardDir).toBe("/home/u/g");
    expect(parseConfig({ codexAuthFile: false }, context).providerFiles.codexAuthFile).toBeNull();
  });

  it.each([
    [
      { providers: { mistral: { enabled: true } } },
      `${CONFIG_ROOT}.providers["mistral"]`,
      /unknown provider; refresh-guard guards openai-codex, openai, xai, anthropic/,
    ],
    [{ providers: { "openai-codex": { enabled: "yes" } } }, `${CONFIG_ROOT}.providers["openai-codex"].enabled`, /true or false/],
    [{ providers: { "openai-codex": true } }, `${CONFIG_ROOT}.providers["openai-codex"]`, /expected an object/],
    [
      { providers: { "openai-codex": { tokenUrl: "http://evil.example/token" } } },
      `${CONFIG_ROOT}.providers["openai-codex"].tokenUrl`,
      /https/,
    ],
    [{ lock: { staleMs: -5 } }, `${CONFIG_ROOT}.lock.staleMs`, /between 2000 and 600000/],
    [{ lock: { waitTimeoutMs: "30s" } }, `${CONFIG_ROOT}.lock.waitTimeoutMs`, /expected a number/],
    [{ lock: { staleMs: 10000, waitTimeoutMs: 5000 } }, `${CONFIG_ROOT}.lock.waitTimeoutMs`, /at least lock.staleMs/],
    [{ requestTimeoutMs: 0 }, `${CONFIG_ROOT}.requestTimeoutMs`, /between/],
    [{ retentionDays: 1000 }, `${CONFIG_ROOT}.retentionDays`, /between 1 and 365/],
    [{ guardDir: "relative/dir" }, `${CONFIG_ROOT}.guardDir`, /absolute/],
    [{ colour: "blue" }, `${CONFIG_ROOT}.colour`, /unknown key/],
    [{ lock: { stale: 1 } }, `${CONFIG_ROOT}.lock.stale`, /unknown key/],
    [[], CONFIG_ROOT, /expected an object/],
  ])("refuses %j naming the full path", (raw, path, message) => {
    const error = problem(raw);
    expect(error.configPath).toBe(path);
    expect(error.message).toContain(path);
    expect(error.message).toMatch(message);
  });
});
