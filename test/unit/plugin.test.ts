// register() as the host calls it, with a stand-in host API: attach, config errors, the status
// command through a commander-like program, and no token in anything it prints.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { interceptorAttached } from "../../src/hosts/global-fetch.ts";
import { type CliProgram, type PluginApi, registerRefreshGuard } from "../../src/plugin/register.ts";
import { type StandInEndpoint, startStandIn } from "../support/token-endpoint-server.ts";
import { untilInDir } from "../support/watch-until.ts";

const originalFetch = globalThis.fetch;

function fakeApi(pluginConfig: Record<string, unknown> | undefined, version = "2026.4.15") {
  const lines: string[] = [];
  const commands: Record<string, (options: Record<string, unknown>) => void | Promise<void>> = {};
  const program = (path: string[]): CliProgram => {
    let action: ((options: Record<string, unknown>) => void | Promise<void>) | undefined;
    const node: CliProgram = {
      command: (name) => program([...path, name]),
      description: () => node,
      option: () => node,
      action: (fn) => {
        action = fn;
        commands[path.join(" ")] = (options) => action!(options);
        return node;
      },
    };
    return node;
  };
  const api: PluginApi = {
    pluginConfig,
    logger: { debug: (l) => lines.push(l), info: (l) => lines.push(l), warn: (l) => lines.push(l), error: (l) => lines.push(l) },
    runtime: { version },
    registerCli: (registrar) => void registrar({ program: program([]) }),
  };
  return { api, lines, commands };
}

async function captureStdout(fn: () => Promise<void> | void): Promise<string> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => {
    chunks.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
  }
  return chunks.join("");
}

describe("registerRefreshGuard", () => {
  let server: StandInEndpoint;
  let stateDir: string;

  beforeEach(async () => {
    server = await startStandIn();
    stateDir = await mkdtemp(join(tmpdir(), "rg-plugin-"));
  });

  afterEach(async () => {
    globalThis.fetch = originalFetch;
    delete (globalThis as Record<symbol, unknown>)[Symbol.for("openclaw-refresh-guard.fetch-interceptor")];
    await server.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  it("attaches the fetch hook for an enabled provider and guards its token POSTs", async () => {
    const { api, lines } = fakeApi({ providers: { "openai-codex": { enabled: true, tokenUrl: server.url } } });
    registerRefreshGuard(api, { OPENCLAW_STATE_DIR: stateDir, XDG_STATE_HOME: join(stateDir, "xdg") });
    expect(interceptorAttached()).toBe(true);
    const credential = server.issue("acct-plugin");
    const body = new URLSearchParams({ grant_type: "refresh_token", refresh_token: credential.refresh, client_id: "c" }).toString();
    const post = () => fetch(server.url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
    const responses = await Promise.all([post(), post(), post()]);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(server.counters.redemptions).toBe(1);
    expect(lines.some((line) => line.startsWith("[refresh-guard] event=redeemed provider=openai-codex"))).toBe(true);
  });

  it("leaves fetch untouched when no provider is enabled", () => {
    const { api } = fakeApi({ providers: { "openai-codex": { enabled: false } } });
    registerRefreshGuard(api, { OPENCLAW_STATE_DIR: stateDir, XDG_STATE_HOME: join(stateDir, "xdg") });
    expect(globalThis.fetch).toBe(originalFetch);
  });

  it("in a cli-metadata load whose runtime throws on access, registers the command and attaches nothing", () => {
    const { api, commands } = fakeApi({ providers: { "openai-codex": { enabled: true, tokenUrl: server.url } } });
    Object.defineProperty(api, "runtime", {
      get() {
        throw new Error("runtime unavailable in cli-metadata mode");
      },
    });
    api.registrationMode = "cli-metadata";
    expect(() => registerRefreshGuard(api, { OPENCLAW_STATE_DIR: stateDir, XDG_STATE_HOME: join(stateDir, "xdg") })).not.toThrow();
    expect(globalThis.fetch).toBe(originalFetch);
    expect(commands["refresh-guard status"]).toBeTypeOf("function");
  });

  it("logs a bad config with its full path, attaches nothing, and does not throw into the host", () => {
    const { api, lines } = fakeApi({ providers: { "openai-codex": { enabled: true } }, lock: { staleMs: -1 } });
    expect(() => registerRefreshGuard(api, { OPENCLAW_STATE_DIR: stateDir, XDG_STATE_HOME: join(stateDir, "xdg") })).not.toThrow();
    expect(globalThis.fetch).toBe(originalFetch);
    expect(lines.join("\n")).toContain('plugins.entries[\\"refresh-guard\\"].config.lock.staleMs');
  });

  it("takes the user's config from the live host config when an early registration passes only the manifest defaults (2026.6/2026.7)", () => {
    const { api, lines } = fakeApi({ requestTimeoutMs: 30000 }, "2026.7.35");
    api.registrationMode = "discovery";
    api.runtime = {
      ...api.runtime,
      config: {
        current: () => ({
          plugins: { entries: { "refresh-guard": { enabled: true, config: { providers: { openai: { enabled: true } } } } } },
        }),
      },
    };
    const state = registerRefreshGuard(api, { OPENCLAW_STATE_DIR: stateDir, XDG_STATE_HOME: join(stateDir, "xdg") });
    expect(state.runtime?.config.providers.map((provider) => provider.id)).toEqual(["openai"]);
    expect(lines.join("\n")).not.toContain("event=idle");
  });

  it("on a 2026.9 host whose undici it cannot find, attaches nothing and says why in one warning and in status", async () => {
    const { api, lines, commands } = fakeApi({ providers: { openai: { enabled: true } } }, "2026.9.6");
    registerRefreshGuard(api, { OPENCLAW_STATE_DIR: stateDir, XDG_STATE_HOME: join(stateDir, "xdg") });
    expect(globalThis.fetch).toBe(originalFetch);
    const warnings = lines.filter((line) => line.includes("event=not_attached"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("could not wrap");
    const report = JSON.parse(await captureStdout(() => commands["refresh-guard status"]!({ json: true })));
    expect(report.host).toMatchObject({ version: "2026.9.6", supported: false, hook: "not attached", seam: "none", seams: [] });
    expect(report.host.seamProblem).toContain("host-undici:");
    const text = await captureStdout(() => commands["refresh-guard status"]!({}));
    expect(text).toContain("hook not attached — host not supported");
  });

  it("status --json reports host, providers, journal and outcomes, and contains no token", async () => {
    const { api, commands } = fakeApi({ providers: { "openai-codex": { enabled: true, tokenUrl: server.url } } });
    registerRefreshGuard(api, { OPENCLAW_STATE_DIR: stateDir, XDG_STATE_HOME: join(stateDir, "xdg") });
    const credential = server.issue("acct-status");
    const body = new URLSearchParams({ grant_type: "refresh_token", refresh_token: credential.refresh }).toString();
    await Promise.all(
      [1, 2].map(() => fetch(server.url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body })),
    );
    // Outcome lines are appended after the answer: wait until both are in the record.
    const statusDir = join(stateDir, "xdg", "openclaw-refresh-guard", "status");
    const outcomeLines = () =>
      readFile(join(statusDir, "outcomes.jsonl"), "utf8").then(
        (text) => text.split("\n").length - 1,
        () => 0,
      );
    await untilInDir(statusDir, async () => (await outcomeLines()) >= 2);
    const json = await captureStdout(() => commands["refresh-guard status"]!({ json: true }));
    const report = JSON.parse(json);
    expect(report.host).toMatchObject({ version: "2026.4.15", supported: true, hook: "attached" });
    expect(report.guard.guardDir).toBe(join(stateDir, "xdg", "openclaw-refresh-guard"));
    expect(report.guard.providers).toEqual([{ id: "openai-codex", tokenUrl: server.url }]);
    expect(report.guard.journal.entries).toBe(1);
    expect(report.guard.outcomes).toMatchObject({ redeemed: 1, shared: 1, failed: 0 });
    const text = await captureStdout(() => commands["refresh-guard status"]!({}));
    expect(text).toContain("outcomes: redeemed 1");
    for (const secret of server.issuedSecrets()) {
      expect(json.includes(secret)).toBe(false);
      expect(text.includes(secret)).toBe(false);
    }
  });

  it("status lists every enabled provider with its token endpoint, text and JSON", async () => {
    const { api, commands } = fakeApi({
      providers: { "openai-codex": { enabled: true }, xai: { enabled: true }, anthropic: { enabled: true } },
    });
    registerRefreshGuard(api, { OPENCLAW_STATE_DIR: stateDir, XDG_STATE_HOME: join(stateDir, "xdg") });
    const report = JSON.parse(await captureStdout(() => commands["refresh-guard status"]!({ json: true })));
    expect(report.guard.providers).toEqual([
      { id: "openai-codex", tokenUrl: "https://auth.openai.com/oauth/token" },
      { id: "xai", tokenUrl: "https://auth.x.ai/oauth2/token" },
      { id: "anthropic", tokenUrl: "https://platform.claude.com/v1/oauth/token" },
    ]);
    const text = await captureStdout(() => commands["refresh-guard status"]!({}));
    expect(text).toContain(
      "providers: openai-codex (https://auth.openai.com/oauth/token), xai (https://auth.x.ai/oauth2/token), anthropic (https://platform.claude.com/v1/oauth/token)",
    );
  });
});
