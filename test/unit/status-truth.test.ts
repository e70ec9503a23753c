// What status says about the hook must be true: the seam named is the one this host's refresh goes
// through (2026.4.15 attaches host-undici too, but refreshes through global fetch), the text never
// claims coverage under "hook not attached", a config problem is logged once however often the host
// registers the plugin, and the re-login hint names a provider id the host's login command accepts.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { formatStatus, type StatusReport } from "../../src/cli/status-report.ts";
import { loginProviderId } from "../../src/hosts/host-compat.ts";
import { type CliProgram, type PluginApi, registerRefreshGuard, seamInUse } from "../../src/plugin/register.ts";

const originalFetch = globalThis.fetch;

function fakeApi(pluginConfig: Record<string, unknown>, version: string) {
  const lines: string[] = [];
  let status: ((options: Record<string, unknown>) => void | Promise<void>) | undefined;
  const program = (path: string[]): CliProgram => {
    const node: CliProgram = {
      command: (name) => program([...path, name]),
      description: () => node,
      option: () => node,
      action: (fn) => {
        if (path.join(" ") === "refresh-guard status") status = fn;
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
  const run = async (json: boolean): Promise<string> => {
    const chunks: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => chunks.push(String(chunk)) > 0) as typeof process.stdout.write;
    try {
      await status!(json ? { json: true } : {});
    } finally {
      process.stdout.write = write;
    }
    return chunks.join("");
  };
  return { api, lines, run };
}

describe("status tells the truth", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "rg-status-truth-"));
  });
  afterEach(async () => {
    globalThis.fetch = originalFetch;
    delete (globalThis as Record<symbol, unknown>)[Symbol.for("openclaw-refresh-guard.fetch-interceptor")];
    await rm(dir, { recursive: true, force: true });
  });

  it("names the seam the host refreshes through, not merely the first attached", () => {
    expect(seamInUse("2026.4.15", ["host-undici", "global-fetch"])).toBe("global-fetch");
    expect(seamInUse("2026.5.7", ["host-undici", "global-fetch"])).toBe("global-fetch");
    expect(seamInUse("2026.9.6", ["host-undici", "global-fetch"])).toBe("host-undici");
    expect(seamInUse("2026.9.6", ["global-fetch"])).toBe("none");
    expect(seamInUse(null, ["host-undici", "global-fetch"])).toBe("host-undici");
    const report: StatusReport = {
      plugin: { id: "refresh-guard", version: "0.2.0" },
      host: {
        version: "2026.4.15",
        supported: true,
        note: "n",
        hook: "attached",
        seam: "global-fetch",
        seams: ["host-undici", "global-fetch"],
      },
    };
    expect(formatStatus(report).split("\n")[0]).toBe(
      "refresh-guard 0.2.0 on OpenClaw 2026.4.15: hook attached (seam global-fetch; also attached: host-undici)",
    );
  });

  it("with a bad config: one config_invalid line for two registrations, and no claim of coverage under 'hook not attached'", async () => {
    const config = { providers: { "openai-codex": { enabled: true } }, lock: { staleMs: 7 } };
    const env = { OPENCLAW_STATE_DIR: dir, XDG_STATE_HOME: join(dir, "xdg") };
    const first = fakeApi(config, "2026.4.15");
    const second = fakeApi(config, "2026.4.15");
    registerRefreshGuard(first.api, env);
    registerRefreshGuard(second.api, env);
    const logged = [...first.lines, ...second.lines].filter((line) => line.includes("event=config_invalid"));
    expect(logged).toHaveLength(1);
    const text = await second.run(false);
    expect(text).toContain("hook not attached");
    expect(text).toContain("nothing attached: the config is invalid");
    expect(text).not.toContain("sees and coordinates every refresh");
    expect(text.match(/lock\.staleMs: must be between/g)).toHaveLength(1);
    const json = JSON.parse(await second.run(true)) as StatusReport;
    expect(json.host).toMatchObject({ hook: "not attached", seam: "none", seams: [] });
  });

  it("with no provider enabled, says so instead of describing the hook", async () => {
    const idle = fakeApi({ providers: {} }, "2026.4.15");
    registerRefreshGuard(idle.api, { OPENCLAW_STATE_DIR: dir, XDG_STATE_HOME: join(dir, "xdg") });
    const text = await idle.run(false);
    expect(text).toContain("hook not attached");
    expect(text).toContain("nothing attached: no provider enabled");
    expect(text).not.toContain("sees and coordinates every refresh");
  });

  it("the re-login hint names the provider id the host's login accepts (2026.6+: openai; 2026.4/5: openai-codex)", () => {
    expect(loginProviderId("2026.9.6", "openai-codex")).toBe("openai");
    expect(loginProviderId("2026.9.6", "openai")).toBe("openai");
    expect(loginProviderId("2026.6.6", "openai-codex")).toBe("openai");
    expect(loginProviderId("2026.4.15", "openai")).toBe("openai-codex");
    expect(loginProviderId("2026.5.7", "openai-codex")).toBe("openai-codex");
    expect(loginProviderId(null, "openai-codex")).toBe("openai-codex");
    expect(loginProviderId("2026.9.6", "other")).toBe("other");
  });
});
