// Installing the way users do, on real hosts: from a real npm registry (Verdaccio, started here) by
// name and by version, upgrading from the previous release (0.1.0 as released at 6c79157), and
// uninstalling. Each host runs in its own throwaway state dir; the hosts run concurrently.
//
// Without the plugin the host has no `refresh-guard` command and nothing wraps fetch; with it the
// status command answers from the version that was installed; after uninstall the host is back to
// the first state.
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { packPackage } from "../../scripts/package-plugin.mjs";
import type { StatusReport } from "../../src/cli/status-report.ts";
import {
  type ClawHubStandIn,
  type LocalRegistry,
  packReleaseFromGit,
  startClawHubWithoutPackage,
  startRegistry,
} from "../support/local-registry.ts";
import { createTestTls, type TestTls } from "../support/tls.ts";
import { type CliRun, type HostUnderTest, HostWorld, hostUnderTest, PLUGIN_ID, parseJsonOutput } from "./harness.ts";

const MINUTE = 60_000;
const PACKAGE = "openclaw-refresh-guard";
const PREVIOUS = { version: "0.1.0", commit: "6c79157" };
const CURRENT = (JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
/** What the host's `npm install --omit=dev` may put next to the plugin: its dependencies and theirs. */
const RUNTIME_TREE = [
  "@ioredis",
  "async-mutex",
  "cluster-key-slot",
  "debug",
  "denque",
  "graceful-fs",
  "ioredis",
  "ms",
  "proper-lockfile",
  "redis-errors",
  "redis-parser",
  "retry",
  "signal-exit",
  "standard-as-callback",
  "tslib",
];

// `plugins install` flags for an npm spec, without prompting (2026.9.x asks to confirm any
// source other than ClawHub, and the plugin's capabilities), and the user's upgrade command.
// 2026.9.x pins an install made with @<version> and says to upgrade with `update <name>@latest`.
const HOSTS: Record<string, { flags: string[]; upgrade: string[] }> = {
  "2026.4.15": { flags: [], upgrade: ["plugins", "install", PACKAGE, "--force"] },
  "2026.5.7": { flags: [], upgrade: ["plugins", "install", PACKAGE, "--force"] },
  "2026.9.6": {
    flags: ["--force", "--accept-capabilities"],
    upgrade: ["plugins", "update", `${PACKAGE}@latest`, "--accept-capabilities"],
  },
};
/** Hosts whose openai-codex refresh the previous release (0.1.0, global fetch only) hooks; the current one hooks all three. */
const ATTACHES = new Set(["2026.4.15", "2026.5.7"]);

let tls: TestTls;
let registry: LocalRegistry;
let clawhub: ClawHubStandIn;
const cleanups: (() => Promise<void>)[] = [];
const hosts = new Map<string, Promise<HostUnderTest>>();

beforeAll(async () => {
  tls = createTestTls();
  for (const [version, { flags }] of Object.entries(HOSTS)) {
    const pending = hostUnderTest(version, flags);
    pending.catch(() => undefined);
    hosts.set(version, pending);
  }
  [registry, clawhub] = await Promise.all([startRegistry(), startClawHubWithoutPackage()]);
  const previous = await packReleaseFromGit(PREVIOUS.commit);
  cleanups.push(previous.cleanup);
  const current = packPackage({
    destination: join(registry.userconfig, "..", "current"),
    stageDir: join(registry.userconfig, "..", "stage"),
  });
  expect(current.version).toBe(CURRENT);
  expect(CURRENT).not.toBe(PREVIOUS.version);
  // Published in release order: `latest` ends on the current version.
  await registry.publish(previous.tgz);
  await registry.publish(current.tgz);
}, 5 * MINUTE);

afterAll(async () => {
  await Promise.all(cleanups.map((cleanup) => cleanup()));
  await clawhub?.stop();
  await registry?.stop();
  tls?.cleanup();
});

function expectOk(run: CliRun): CliRun {
  if (run.code !== 0)
    throw new Error(`openclaw ${run.args.join(" ")} exited ${run.code}:\n${run.stdout.slice(-3000)}\n${run.stderr.slice(-3000)}`);
  return run;
}

/**
 * The copies of the package the host installed from npm, each with the node_modules holding its
 * dependencies: 2026.4.x copies it under extensions/ with its own node_modules; 2026.5.x keeps one
 * npm project for all plugins; 2026.9.x one npm project per plugin, and a new generation
 * (`<name>__openclaw-generation__g-<hash>`) for each update.
 */
async function installedPackages(world: HostWorld): Promise<{ dir: string; nodeModules: string; version: string }[]> {
  const state = world.stateDir;
  const candidates: { dir: string; nodeModules: string }[] = [];
  if (world.host.version.startsWith("2026.9.")) {
    const projects = join(state, "npm", "projects");
    for (const name of await readdir(projects).catch(() => [])) {
      if (name !== PACKAGE && !name.startsWith(`${PACKAGE}__`)) continue;
      const nodeModules = join(projects, name, "node_modules");
      candidates.push({ dir: join(nodeModules, PACKAGE), nodeModules });
    }
  } else if (world.host.version.startsWith("2026.5.")) {
    const nodeModules = join(state, "npm", "node_modules");
    candidates.push({ dir: join(nodeModules, PACKAGE), nodeModules });
  } else {
    const dir = join(state, "extensions", PLUGIN_ID);
    candidates.push({ dir, nodeModules: join(dir, "node_modules") });
  }
  const found = [];
  for (const candidate of candidates) {
    const manifest = await readFile(join(candidate.dir, "package.json"), "utf8").catch(() => null);
    if (manifest !== null) found.push({ ...candidate, version: (JSON.parse(manifest) as { version: string }).version });
  }
  return found;
}

async function statusJson(world: HostWorld, env: NodeJS.ProcessEnv): Promise<StatusReport> {
  return parseJsonOutput(expectOk(await world.cli([PLUGIN_ID, "status", "--json"], { env })).stdout) as StatusReport;
}

describe.concurrent("install from an npm registry", () => {
  for (const version of Object.keys(HOSTS)) {
    it(
      `openclaw ${version}: install @${PREVIOUS.version} by name, upgrade to ${CURRENT} keeping config and guard dir, uninstall leaves the host unguarded`,
      async () => {
        const host = await hosts.get(version)!;
        const world = await HostWorld.create(host, tls, "registry");
        const env = { ...registry.npmEnv, OPENCLAW_CLAWHUB_URL: clawhub.url };
        try {
          // The previous release, by exact version.
          const first = expectOk(
            await world.cli(["plugins", "install", `${PACKAGE}@${PREVIOUS.version}`, ...host.installFlags], { env, timeoutMs: 180_000 }),
          );
          expect(first.stdout).toContain(`Installed plugin: ${PLUGIN_ID}`);
          if (version === "2026.4.15") {
            // 2026.4.15 asks ClawHub first and falls back to npm on its 404.
            expect(clawhub.requests).toContain(`GET /api/v1/packages/${PACKAGE}`);
            expect(first.stdout).toContain(`Resolving clawhub:${PACKAGE}@${PREVIOUS.version}`);
          }
          expect((await installedPackages(world)).map((p) => p.version)).toEqual([PREVIOUS.version]);

          await world.configurePlugin();
          const before = await statusJson(world, env);
          expect(before.plugin).toEqual({ id: PLUGIN_ID, version: PREVIOUS.version });
          expect(before.host.hook).toBe(ATTACHES.has(version) ? "attached" : "not attached");
          // 0.1.0 kept its guard dir inside the state dir; the current release defaults to one per OS
          // user (README, "Upgrading from 0.1.0"): the old one is left as it was.
          const guardDir = before.guard!.guardDir;
          expect(guardDir).toBe(join(world.stateDir, PLUGIN_ID));
          // Something of the user's in the guard dir: it must survive the upgrade.
          const keep = join(guardDir, "user-file-kept-across-upgrade");
          await writeFile(keep, "kept\n", { mode: 0o600 });

          // Upgrade to `latest`, the user's way on this host.
          expectOk(await world.cli(HOSTS[version]!.upgrade, { env, timeoutMs: 180_000 }));
          const installed = (await installedPackages(world)).find((p) => p.version === CURRENT);
          expect(installed, `no ${PACKAGE}@${CURRENT} installed`).toBeDefined();
          const shipped = JSON.parse(await readFile(join(installed!.dir, "package.json"), "utf8")) as Record<string, unknown>;
          expect(shipped).toMatchObject({ name: PACKAGE, version: CURRENT });
          // The published manifest carries nothing the host's npm install would resolve for development.
          expect(shipped.devDependencies).toBeUndefined();
          expect(shipped.scripts).toBeUndefined();
          const tree = (await readdir(installed!.nodeModules)).filter(
            (name) => !name.startsWith(".") && name !== PACKAGE && name !== "openclaw",
          );
          expect(tree.sort()).toEqual(RUNTIME_TREE);

          const after = await statusJson(world, env);
          expect(after.plugin).toEqual({ id: PLUGIN_ID, version: CURRENT });
          expect(after.host.hook).toBe("attached");
          expect(after.guard?.guardDir).toBe(world.guardDir);
          expect(after.guard?.providers.map((provider) => provider.id)).toEqual(["openai-codex"]);
          expect((await world.readConfig()).plugins?.entries?.[PLUGIN_ID]).toMatchObject({
            enabled: true,
            config: { providers: { "openai-codex": { enabled: true } } },
          });
          expect(await readFile(keep, "utf8")).toBe("kept\n");

          // Uninstall, non-interactively.
          expectOk(await world.cli(["plugins", "uninstall", PLUGIN_ID, "--force"], { env }));
          const left = (await installedPackages(world)).map((p) => [relative(world.stateDir, p.dir), p.version]);
          if (version.startsWith("2026.9.")) {
            // 2026.9.6 removes the active generation but leaves the one its update replaced on disk
            // (nothing loads it: see below). The README's Uninstall section says so.
            expect(left).toEqual([[`npm/projects/${PACKAGE}/node_modules/${PACKAGE}`, PREVIOUS.version]]);
          } else expect(left).toEqual([]);
          const config = await world.readConfig();
          // 2026.9.6 keeps a disabled entry (its config dropped); the others remove it.
          expect(config.plugins?.entries?.[PLUGIN_ID]).toEqual(version.startsWith("2026.9.") ? { enabled: false } : undefined);
          expect(JSON.stringify(config)).not.toContain(PACKAGE);
          const gone = await world.cli([PLUGIN_ID, "status", "--json"], { env });
          expect(gone.code).not.toBe(0);
          expect(`${gone.stdout}${gone.stderr}`).toMatch(/unknown command|does not know the command|command is unavailable/i);
          // The host still works, and nothing wraps its fetch any more.
          const list = expectOk(await world.cli(["plugins", "list", "--json"], { env }));
          expect(list.stdout).not.toContain(`"${PLUGIN_ID}"`);
          expect((await world.fetchReport(list)).hookAttached).toBe(false);
          // The guard dir is the user's data, not the plugin's install: left as it was.
          expect(await readFile(keep, "utf8")).toBe("kept\n");
        } finally {
          await world.cleanup();
        }
      },
      15 * MINUTE,
    );
  }

  it(
    `openclaw 2026.4.15: with ClawHub unreachable a bare name fails; npm pack then installing the archive works`,
    async () => {
      const host = await hosts.get("2026.4.15")!;
      const world = await HostWorld.create(host, tls, "no-clawhub");
      // A port nobody listens on: what a machine that cannot reach clawhub.ai sees.
      const env = { ...registry.npmEnv, OPENCLAW_CLAWHUB_URL: "http://127.0.0.1:9" };
      try {
        const refused = await world.cli(["plugins", "install", PACKAGE], { env, timeoutMs: 180_000 });
        expect(refused.code).not.toBe(0);
        expect(`${refused.stdout}${refused.stderr}`).toMatch(/ECONNREFUSED|fetch failed/);
        expect(await installedPackages(world)).toEqual([]);
        // The README's way round it, through the user's npm registry.
        const { execFile } = await import("node:child_process");
        const packed = await new Promise<string>((resolve, reject) =>
          execFile("npm", ["pack", PACKAGE, "--json"], { cwd: world.root, env: { ...process.env, ...registry.npmEnv } }, (error, stdout) =>
            error ? reject(error) : resolve(stdout),
          ),
        );
        const [info] = JSON.parse(packed) as { filename: string; version: string }[];
        expect(info?.version).toBe(CURRENT);
        const install = expectOk(await world.cli(["plugins", "install", `./${info!.filename}`], { env, timeoutMs: 180_000 }));
        expect(install.stdout).toContain(`Installed plugin: ${PLUGIN_ID}`);
        expect((await statusJson(world, env)).plugin).toEqual({ id: PLUGIN_ID, version: CURRENT });
      } finally {
        await world.cleanup();
      }
    },
    10 * MINUTE,
  );
});
