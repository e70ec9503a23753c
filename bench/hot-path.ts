// Phase 1: what the interceptor adds to a fetch that is not a token refresh.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { parseConfig } from "../src/config/parse-config.ts";
import { installFetchInterceptor } from "../src/hosts/global-fetch.ts";
import { GuardRuntime } from "../src/plugin/guard-runtime.ts";
import { PLAN } from "./plan.ts";
import { median, round } from "./stats.ts";

// 1. Hot path: what the interceptor adds to a fetch that is not a token refresh.
//
// Both arms call a fetch function through the same call site, taking turns request by request
// (which arm goes first rotates every request), so machine drift (a noisy neighbour, frequency
// changes, GC) lands on both arms alike. The "with" arm is the wrapper installFetchInterceptor puts in place,
// installed on a host object holding the real global fetch: exactly the function the host calls
// once the plugin is registered. Swapping globalThis.fetch between batches instead was tried:
// every swap invalidates V8's constant cell for the global, and batch-level alternation leaves
// drift on one arm; an A/A run (original vs original) of that design varied by up to ±12%, this
// one by about 1%, and under 0.3% once each round's two arms are compared with each other (see
// compare()). The A/A control is run here too, interleaved the same way, as the noise floor.

const ECHO_SERVER = `
const server = require("node:http").createServer((req, res) => { req.resume(); req.on("end", () => res.end("ok")); });
server.keepAliveTimeout = 120000;
server.listen(0, "127.0.0.1", () => process.stdout.write(server.address().port + "\\n"));
process.on("disconnect", () => process.exit(0));
`;

export interface HotPathResult {
  /** max of the GET and POST ratios */
  ratio: number;
  get: ArmComparison;
  post: ArmComparison;
  /** original vs original, interleaved the same way: the noise floor of `ratio` */
  controlRatio: number;
  /** the wrapper alone, around a fetch that returns at once: ns added per call */
  wrapperNsPerCall: { get: number; post: number };
  rounds: number;
  requestsPerArmPerRound: number;
}

interface ArmComparison {
  /** median over rounds of (this round's median with the interceptor ÷ its median without) */
  ratio: number;
  /** median of the per-round medians with ÷ the same without (noisier: drift between rounds stays in) */
  ratioOfMedians: number;
  withoutUs: number;
  withUs: number;
}

export async function measureHotPath(): Promise<HotPathResult> {
  const server = await startEchoServer();
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const original = globalThis.fetch;
    const host = { fetch: original };
    // The plugin's own routes (a real runtime's token URL on the same origin), as register() installs them.
    const stateDir = await mkdtemp(join(tmpdir(), "rg-bench-hot-"));
    const config = parseConfig(
      { guardDir: join(stateDir, "refresh-guard"), providers: { "openai-codex": { tokenUrl: `${base}/oauth/token` } } },
      {},
    );
    const silent = () => undefined;
    const runtime = new GuardRuntime(config, { logger: { info: silent, warn: silent, error: silent }, stateDir });
    installFetchInterceptor(runtime.routes(), host);
    const wrapped = host.fetch;
    if (wrapped === original) throw new Error("bench: the interceptor did not wrap fetch");

    const get = () => [`${base}/v1/models`, undefined] as const;
    const post = () =>
      [`${base}/v1/responses`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"input":"hi"}' }] as const;
    const timeOne = async (fetchImpl: typeof fetch, request: () => readonly [string, RequestInit | undefined]) => {
      const [url, init] = request();
      const started = performance.now();
      const response = await fetchImpl(url, init);
      await response.arrayBuffer();
      return performance.now() - started;
    };
    const arms: Record<string, typeof fetch> = { without: original, with: wrapped, control: original };
    const names = Object.keys(arms);

    // Warm both paths up (JIT, connection) before anything counts.
    for (let i = 0; i < PLAN.hotWarmup; i += 1) {
      for (const name of names) {
        await timeOne(arms[name]!, get);
        await timeOne(arms[name]!, post);
      }
    }

    const perRound: Record<string, { get: number[]; post: number[] }> = {};
    for (const name of names) perRound[name] = { get: [], post: [] };
    for (let r = 0; r < PLAN.hotRounds; r += 1) {
      for (const [kind, request] of [
        ["get", get],
        ["post", post],
      ] as const) {
        const samples: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
        for (let i = 0; i < PLAN.hotRequests; i += 1) {
          // Rotate which arm goes first, so no arm always follows another.
          for (let k = 0; k < names.length; k += 1) {
            const name = names[(i + r + k) % names.length]!;
            samples[name]!.push(await timeOne(arms[name]!, request));
          }
        }
        for (const name of names) perRound[name]![kind].push(median(samples[name]!));
      }
    }
    await rm(stateDir, { recursive: true, force: true });

    // Both arms of a round ran interleaved, at the same time: their ratio cancels whatever the
    // machine did during that round. The median over rounds of those paired ratios varied by
    // ±0.2% in A/A runs; the ratio of the two arms' medians over rounds by up to ±1.7%.
    const compare = (kind: "get" | "post", arm: string): ArmComparison => {
      const without = perRound.without![kind];
      const withArm = perRound[arm]![kind];
      return {
        ratio: round(median(withArm.map((value, r) => value / without[r]!)), 4),
        ratioOfMedians: round(median(withArm) / median(without), 4),
        withoutUs: round(median(without) * 1000),
        withUs: round(median(withArm) * 1000),
      };
    };
    const getCmp = compare("get", "with");
    const postCmp = compare("post", "with");
    const control = Math.max(Math.abs(compare("get", "control").ratio - 1), Math.abs(compare("post", "control").ratio - 1));
    return {
      ratio: Math.max(getCmp.ratio, postCmp.ratio),
      get: getCmp,
      post: postCmp,
      controlRatio: round(1 + control, 4),
      wrapperNsPerCall: wrapperCost(runtime, base),
      rounds: PLAN.hotRounds,
      requestsPerArmPerRound: PLAN.hotRequests,
    };
  } finally {
    server.child.kill();
  }
}

/** The wrapper's own cost per call, around a fetch that returns a settled promise at once. */
function wrapperCost(runtime: GuardRuntime, base: string): { get: number; post: number } {
  const settled = Promise.resolve(new Response("ok"));
  const stub = (() => settled) as unknown as typeof fetch;
  const host = { fetch: stub };
  installFetchInterceptor(runtime.routes(), host);
  const wrapped = host.fetch;
  const postInit: RequestInit = { method: "POST", body: "{}" };
  const loop = (fetchImpl: typeof fetch, isPost: boolean, n: number) => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i += 1) {
      if (isPost) void fetchImpl(`${base}/v1/responses`, postInit);
      else void fetchImpl(`${base}/v1/models`);
    }
    return Number(process.hrtime.bigint() - started) / n;
  };
  const cost = (isPost: boolean) => {
    const bare: number[] = [];
    const wrappedNs: number[] = [];
    for (let r = 0; r < 15; r += 1) {
      bare.push(loop(stub, isPost, 100_000));
      wrappedNs.push(loop(wrapped, isPost, 100_000));
    }
    return round(Math.max(0, median(wrappedNs) - median(bare)), 0);
  };
  return { get: cost(false), post: cost(true) };
}

async function startEchoServer(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ["-e", ECHO_SERVER], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`bench: echo server exited (${code})`)));
    child.stdout!.once("data", (chunk: Buffer) => resolve(Number(String(chunk).trim())));
  });
  return { child, port };
}
