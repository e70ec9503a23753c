// A simulated agent process: it refreshes the way OpenClaw's openai-codex path does (a form POST
// of the refresh token to the token URL with global fetch) when its parent tells it to (IPC),
// with N concurrent callers. With `guard: true` it installs refresh-guard's fetch interceptor
// first, as the plugin does in every host process. With `pauseAt` it reports reaching that stage
// of a redemption and stops there, so a test can SIGKILL or SIGSTOP it at a named point.
import { installFetchInterceptor } from "../src/fetch-interceptor.ts";
import { type GuardEvent, RefreshGuard, type Stage } from "../src/refresh-guard.ts";

interface WorkerConfig {
  guard?: boolean;
  guardDir: string;
  tokenUrl: string;
  provider?: string;
  timing?: Record<string, number>;
  pauseAt?: Stage;
}

export interface CallResult {
  status: number;
  access?: string;
  refresh?: string;
  error?: string;
  ms: number;
}

const config = JSON.parse(process.env.WORKER_CONFIG ?? "{}") as WorkerConfig;
const send = (message: unknown) => process.send?.(message);

if (config.guard !== false) {
  const guard = await RefreshGuard.open({
    provider: config.provider ?? "openai-codex",
    guardDir: config.guardDir,
    timing: config.timing ?? {},
    onEvent: (event: GuardEvent) => send({ type: "event", event }),
    stage: async (stage) => {
      if (stage !== config.pauseAt) return;
      // Held here until the parent says "continue" (it may SIGKILL or SIGSTOP us meanwhile).
      const resumed = new Promise((resolve) => process.once("message", resolve));
      send({ type: "stage", stage, pid: process.pid });
      await resumed;
    },
  });
  installFetchInterceptor(new Map([[config.tokenUrl, guard]]));
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
    const body = JSON.parse(text) as { access_token: string; refresh_token: string };
    return { status: 200, access: body.access_token, refresh: body.refresh_token, ms };
  } catch (error) {
    return { status: 0, error: `${(error as Error).name}: ${(error as Error).message}`, ms: performance.now() - started };
  }
}

process.on("message", async (message: { id: number; type: string; refreshToken: string; callers: number }) => {
  if (message.type === "exit") process.exit(0);
  if (message.type === "continue") return;
  if (message.type !== "refresh") return;
  const results = await Promise.all(Array.from({ length: message.callers }, () => callOnce(message.refreshToken)));
  send({ type: "result", id: message.id, results });
});
send({ type: "ready", pid: process.pid });
