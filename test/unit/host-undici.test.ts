// The host-undici seam on a host laid out like OpenClaw 2026.6+ on disk: <root>/node_modules/openclaw
// (the CLI entry) next to <root>/node_modules/undici, whose fetch export the host reads on every call.
// The stand-in undici records what reaches it and forwards to the real endpoint with global fetch.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { attachSeams } from "../../src/hosts/detect-seam.ts";
import { interceptorAttached } from "../../src/hosts/global-fetch.ts";
import { assessHost } from "../../src/hosts/host-compat.ts";
import { installHostUndiciInterceptor, probeHostUndici } from "../../src/hosts/host-undici.ts";
import { openFileGuard } from "../support/file-guard.ts";
import { type StandInEndpoint, startStandIn } from "../support/token-endpoint-server.ts";

const UNDICI_SOURCE = `
const calls = [];
module.exports = {
  calls,
  Agent: class Agent {},
  // Like undici: forwards (url, init) and accepts a dispatcher in init.
  fetch: async function fetch(url, init) {
    calls.push({ url: String(url), init });
    const { dispatcher, ...rest } = init ?? {};
    return globalThis.fetch(url, rest);
  },
};
`;

let root: string;
let server: StandInEndpoint;
const noSdk = () => {
  throw Object.assign(new Error("not found"), { code: "ERR_MODULE_NOT_FOUND" });
};

async function fakeHost(dir: string, undiciSource: string | null): Promise<string> {
  await mkdir(join(dir, "node_modules", "openclaw"), { recursive: true });
  await writeFile(join(dir, "node_modules", "openclaw", "openclaw.mjs"), "export {};\n");
  if (undiciSource !== null) {
    await mkdir(join(dir, "node_modules", "undici"), { recursive: true });
    await writeFile(join(dir, "node_modules", "undici", "index.js"), undiciSource);
    await writeFile(
      join(dir, "node_modules", "undici", "package.json"),
      JSON.stringify({ name: "undici", version: "8.10.2", main: "index.js" }),
    );
  }
  return join(dir, "node_modules", "openclaw", "openclaw.mjs");
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "rg-host-undici-"));
  server = await startStandIn();
});

afterAll(async () => {
  await server.stop();
  await rm(root, { recursive: true, force: true });
});

describe("probeHostUndici", () => {
  it("finds the host's own undici next to the openclaw CLI entry (argv[1]) and returns the module the host's require gets", async () => {
    const entry = await fakeHost(join(root, "ok"), UNDICI_SOURCE);
    const probe = probeHostUndici({ resolveSdk: noSdk, argv1: entry });
    expect(probe.found).toBe(true);
    if (!probe.found) return;
    expect(probe.version).toBe("8.10.2");
    expect(probe.module).toBe(createRequire(entry)("undici/index.js"));
  });

  it("says why when the host has no undici, a read-only or accessor fetch, or argv[1] is not openclaw", async () => {
    const none = await fakeHost(join(root, "none"), null);
    const readOnly = await fakeHost(
      join(root, "ro"),
      `Object.defineProperty(exports, "fetch", { value: async () => null, writable: false, enumerable: true });`,
    );
    const accessor = await fakeHost(
      join(root, "acc"),
      `Object.defineProperty(exports, "fetch", { get: () => async () => null, enumerable: true });`,
    );
    const noFetch = await fakeHost(join(root, "nofetch"), `exports.Agent = class {};`);
    const reasons = [none, readOnly, accessor, noFetch].map((argv1) => {
      const probe = probeHostUndici({ resolveSdk: noSdk, argv1 });
      expect(probe.found).toBe(false);
      return probe.found ? "" : probe.reason;
    });
    expect(reasons[0]).toMatch(/no undici next to .*openclaw\.mjs \(MODULE_NOT_FOUND\)/);
    expect(reasons[1]).toContain("fetch export is read-only");
    expect(reasons[2]).toContain("fetch export is an accessor");
    expect(reasons[3]).toContain("has no fetch export");
    for (const reason of reasons) expect(reason).toContain("openclaw/plugin-sdk/core does not resolve");
    const vitest = probeHostUndici({ resolveSdk: noSdk, argv1: "/usr/lib/node_modules/vitest/vitest.mjs" });
    expect(vitest.found ? "" : vitest.reason).toContain("process.argv[1] is not the openclaw CLI entry");
  });
});

describe("host-undici seam with a real guard", () => {
  let guardDir: string;
  afterEach(async () => {
    if (guardDir) await rm(guardDir, { recursive: true, force: true });
  });

  it("guards a URLSearchParams refresh POST as 2026.9 sends it: dispatcher and redirect kept, one redemption for 5 callers, global Responses", async () => {
    const entry = await fakeHost(join(root, "guarded"), UNDICI_SOURCE);
    const probe = probeHostUndici({ resolveSdk: noSdk, argv1: entry });
    if (!probe.found) throw new Error(probe.reason);
    const module = probe.module as unknown as {
      fetch: typeof fetch;
      calls: { url: string; init: RequestInit & { dispatcher?: unknown } }[];
    };
    guardDir = await mkdtemp(join(tmpdir(), "rg-host-undici-guard-"));
    const guard = await openFileGuard({ provider: "openai", guardDir });
    const installed = installHostUndiciInterceptor(module, new Map([[server.url, guard]]));
    try {
      const credential = server.issue("acct-undici");
      const dispatcher = { pinned: true };
      const send = () =>
        module.fetch(server.url, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: credential.refresh, client_id: "app_x" }),
          redirect: "manual",
          dispatcher,
        } as unknown as RequestInit);
      const responses = await Promise.all([1, 2, 3, 4, 5].map(send));
      for (const response of responses) {
        expect(response).toBeInstanceOf(Response);
        expect(response.status).toBe(200);
      }
      const bodies = await Promise.all(responses.map((response) => response.json() as Promise<{ refresh_token: string }>));
      expect(new Set(bodies.map((body) => body.refresh_token)).size).toBe(1);
      expect(server.counters).toMatchObject({ requests: 1, redemptions: 1, reuses: 0 });
      // What reached the network side of the host's undici: the host's dispatcher and redirect mode.
      const sent = module.calls.filter((call) => call.url === server.url);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.init.dispatcher).toBe(dispatcher);
      expect(sent[0]!.init.redirect).toBe("manual");
      expect(new Headers(sent[0]!.init.headers).get("content-type")).toBe("application/x-www-form-urlencoded");

      // Everything else passes through untouched.
      const other = { method: "POST", body: new URLSearchParams({ grant_type: "authorization_code", code: "c" }) };
      await module.fetch(server.url, other);
      expect(module.calls.at(-1)!.init).toBe(other);
    } finally {
      installed.uninstall();
    }
  });
});

describe("attachSeams", () => {
  const globalHost = () => ({ fetch: (async () => new Response(null)) as typeof fetch });

  it("attaches host-undici and global-fetch where both exist, host-undici first", async () => {
    const entry = await fakeHost(join(root, "both"), UNDICI_SOURCE.replace("const calls", "const calls2 = []; const calls"));
    const host = globalHost();
    const report = attachSeams(new Map(), { resolveSdk: noSdk, argv1: entry, globalHost: host, hostUndiciRequired: true });
    expect(report.attached).toEqual(["host-undici", "global-fetch"]);
    expect(interceptorAttached(host)).toBe(true);
    expect(assessHost("2026.9.6", report)).toMatchObject({ supported: true });
  });

  it("on a host that needs its undici but has none: attaches nothing, says why, and the host is reported unsupported", async () => {
    const entry = await fakeHost(join(root, "bare"), null);
    const host = globalHost();
    const original = host.fetch;
    const report = attachSeams(new Map(), { resolveSdk: noSdk, argv1: entry, globalHost: host, hostUndiciRequired: true });
    expect(report.attached).toEqual([]);
    expect(host.fetch).toBe(original);
    expect(report.hostUndiciProblem).toContain("no undici next to");
    const assessed = assessHost("2026.9.6", report);
    expect(assessed.supported).toBe(false);
    expect(assessed.note).toContain("could not wrap");
    expect(assessed.note).toContain("no undici next to");
  });

  it("on 2026.4.15 – 2026.5.x keeps the global-fetch hook whether or not the host ships undici", async () => {
    const entry = await fakeHost(join(root, "old"), null);
    const host = globalHost();
    const report = attachSeams(new Map(), { resolveSdk: noSdk, argv1: entry, globalHost: host, hostUndiciRequired: false });
    expect(report.attached).toEqual(["global-fetch"]);
    expect(assessHost("2026.5.7", report).supported).toBe(true);
  });
});
