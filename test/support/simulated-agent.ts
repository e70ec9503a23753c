// A simulated agent process: it refreshes the way OpenClaw's openai-codex path does (a form POST
// of the refresh token to the token URL with global fetch) when its parent tells it to (IPC),
// with N concurrent callers. With `guard: true` it runs what the plugin's register() runs in every
// host process (config parser, guard runtime, fetch interceptor), with its log lines sent to the
// parent. With `pauseAt` it reports reaching that stage of a redemption and waits there for the
// parent's "continue", so a test can SIGKILL or SIGSTOP it at a named point.
import { parseConfig } from "../../src/config/parse-config.ts";
import { installFetchInterceptor } from "../../src/hosts/global-fetch.ts";
import { GuardRuntime } from "../../src/plugin/guard-runtime.ts";
import { join } from "node:path";

import type { Stage } from "../../src/core/refresh-guard.ts";

export interface AgentConfig {
  guard?: boolean;
  tokenUrl: string;
  stateDir: string;
  /** The plugin's user config (plugins.entries["refresh-guard"].config); the token URL is added. */
  pluginConfig?: Record<string, unknown>;
  pauseAt?: Stage;
}

export interface CallResult {
  status: number;
  access?: string;
  refresh?: string;
  error?: string;
  ms: number;
}

const config = JSON.parse(process.env.AGENT_CONFIG ?? "{}") as AgentConfig;
const send = (message: unknown) => process.send?.(message);
const log = (level: string) => (line: string) => send({ type: "log", level, line });

if (config.guard !== false) {
  const pluginConfig = parseConfig(
    // The guard dir 0.1.0 defaulted to, so each test's agents share one private dir.
    { guardDir: join(config.stateDir, "refresh-guard"), ...config.pluginConfig, providers: { "openai-codex": { enabled: true, tokenUrl: config.tokenUrl } } },
    { stateDir: config.stateDir },
  );
  const runtime = new GuardRuntime(pluginConfig, {
    logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
    stateDir: config.stateDir,
    stage: async (stage) => {
      if (stage !== config.pauseAt) return;
      const resumed = new Promise((resolve) => process.once("message", resolve));
      send({ type: "stage", stage, pid: process.pid });
      await resumed;
    },
  });
  installFetchInterceptor(runtime.routes());
}

async function callOnce(refreshToken: string): Promise<CallResult> {
  const started = performance.now();
  try {
    const response = await fetch(config.tokenUrl, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: "app_test" }).toString(),
    });
    const text = await response.text();
    const ms = performance.now() - started;
    if (response.status !== 200) return { status: response.status, error: text, ms };
    const body = JSON.parse(text) as { access_token?: string; refresh_token?: string };
    if (!body.access_token || !body.refresh_token) return { status: 200, error: "incomplete token response", ms };
    return { status: 200, access: body.access_token, refresh: body.refresh_token, ms };
  } catch (error) {
    return { status: 0, error: `${(error as Error).name}: ${(error as Error).message}`, ms: performance.now() - started };
  }
}

process.on("message", async (message: { id: number; type: string; refreshToken: string; callers: number }) => {
  if (message.type === "exit") process.exit(0);
  if (message.type !== "refresh") return;
  const results = await Promise.all(Array.from({ length: message.callers }, () => callOnce(message.refreshToken)));
  send({ type: "result", id: message.id, results });
});
send({ type: "ready", pid: process.pid });
