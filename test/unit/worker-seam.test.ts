// The worker-thread seam with real worker threads: after installWorkerSeam(), a Worker the "host"
// creates (with its own execArgv, through an ESM named import taken before the seam existed) loads
// the built bootstrap, which wraps THAT thread's copy of the host's undici the moment the host
// requires it. Two workers refreshing one token at once: one redemption, both answered, outcomes in
// the status record under the worker's thread label. A worker that never loads undici builds nothing.
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { parseConfig } from "../../src/config/parse-config.ts";
import { installWorkerSeam, workerSeamAttached } from "../../src/hosts/worker-seam.ts";
import { StatusStore } from "../../src/plugin/status-record.ts";
import { type StandInEndpoint, startStandIn } from "../support/token-endpoint-server.ts";

// The built bootstrap, as it ships (npm run test:unit builds first).
const BOOTSTRAP = new URL("../../dist/plugin/worker-bootstrap.js", import.meta.url).href;

const UNDICI_SOURCE = `
module.exports = {
  fetch: async function fetch(url, init) {
    const { dispatcher, ...rest } = init ?? {};
    return globalThis.fetch(url, rest);
  },
};
`;

// Like the host's catalog worker: loads undici through createRequire and refreshes with it.
const REFRESH_WORKER = `
import { createRequire } from "node:module";
import { parentPort, workerData } from "node:worker_threads";
const undici = createRequire(workerData.entry)("undici/index.js");
const response = await undici.fetch(workerData.url, {
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: workerData.refresh, client_id: "app_x" }),
  redirect: "manual",
  dispatcher: {},
});
const body = await response.json();
parentPort.postMessage({ status: response.status, refresh: body.refresh_token, execArgv: process.execArgv, wrapped: Object.getOwnPropertySymbols(undici).map(String) });
`;

const IDLE_WORKER = `
import { parentPort } from "node:worker_threads";
parentPort.postMessage({ execArgv: process.execArgv, fetchName: globalThis.fetch.name });
`;

let root: string;
let entry: string;
let server: StandInEndpoint;
let guardDir: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "rg-worker-seam-"));
  await mkdir(join(root, "node_modules", "openclaw"), { recursive: true });
  await mkdir(join(root, "node_modules", "undici"), { recursive: true });
  entry = join(root, "node_modules", "openclaw", "openclaw.mjs");
  await writeFile(entry, "export {};\n");
  await writeFile(join(root, "node_modules", "undici", "index.js"), UNDICI_SOURCE);
  await writeFile(join(root, "node_modules", "undici", "package.json"), JSON.stringify({ name: "undici", main: "index.js" }));
  await writeFile(join(root, "refresh.worker.mjs"), REFRESH_WORKER);
  await writeFile(join(root, "idle.worker.mjs"), IDLE_WORKER);
  server = await startStandIn();
  guardDir = join(root, "guard");
  const config = parseConfig(
    { guardDir, providers: { openai: { enabled: true, tokenUrl: server.url } } },
    { stateDir: join(root, "state") },
  );
  const report = installWorkerSeam(
    {
      config,
      stateDir: join(root, "state"),
      agentDirs: [],
      seams: ["host-undici"],
      hostUndiciPath: join(root, "node_modules", "undici", "index.js"),
    },
    BOOTSTRAP,
  );
  expect(report).toEqual({ attached: true });
});

afterAll(async () => {
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

function run(script: string, workerData: unknown, execArgv?: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(pathToFileURL(join(root, script)), { workerData, ...(execArgv ? { execArgv } : {}) });
    let result: Record<string, unknown> | undefined;
    worker.once("message", (message) => {
      result = message as Record<string, unknown>;
    });
    worker.once("error", reject);
    // Left to end by itself, as a host's worker does: its status write goes out first.
    worker.once("exit", () => (result ? resolve(result) : reject(new Error("worker exited without an answer"))));
  });
}

describe("worker seam", () => {
  it("makes the ESM-imported Worker load the bootstrap, keeping the host's own execArgv", async () => {
    expect(workerSeamAttached()).toBe(true);
    expect(Worker.name).toBe("Worker");
    const idle = await run("idle.worker.mjs", null, ["--no-deprecation"]);
    expect(idle.execArgv).toEqual(["--no-deprecation", "--import", BOOTSTRAP]);
    // Seams as the main thread reported them: host-undici only, so global fetch stays the host's.
    expect(idle.fetchName).toBe("fetch");
    // Nothing was built for a worker that never loaded undici.
    expect(await readdir(guardDir).catch(() => [])).toEqual([]);
  });

  it("guards a refresh in each worker thread: two workers, one token, one redemption, outcomes under the worker's label", async () => {
    const credential = server.issue("acct-worker");
    const data = { entry, url: server.url, refresh: credential.refresh };
    const results = await Promise.all([run("refresh.worker.mjs", data, []), run("refresh.worker.mjs", data, [])]);
    expect(results.map((result) => result.status)).toEqual([200, 200]);
    expect(new Set(results.map((result) => result.refresh)).size).toBe(1);
    expect(results[0]!.wrapped).toContain("Symbol(openclaw-refresh-guard.fetch-interceptor)");
    expect(server.counters).toMatchObject({ requests: 1, redemptions: 1, reuses: 0 });

    const status = new StatusStore(join(guardDir, "status"));
    let summary = await status.summary();
    for (let i = 0; i < 50 && summary.counts.redeemed + summary.counts.shared < 2; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      summary = await status.summary();
    }
    expect(summary.byThread).toEqual({ "worker:refresh.worker.mjs": { redeemed: 1, shared: 1, recovered: 0, failed: 0, warning: 0 } });
    const threads = await status.threads();
    expect(threads.map((thread) => [thread.pid, thread.thread, thread.seams])).toEqual([
      [process.pid, "worker:refresh.worker.mjs", ["host-undici"]],
      [process.pid, "worker:refresh.worker.mjs", ["host-undici"]],
    ]);
  });
});
