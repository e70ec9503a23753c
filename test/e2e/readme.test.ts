// The README is executed: every ```sh block under "Quick start", "From the npm registry", "Status"
// and "Uninstall" (and under "Linking a build" in docs/development.md) runs, as written, against
// real hosts (2026.4.15 and 2026.9.6). Only the environment is substituted: `openclaw` on PATH is the
// host under test, `git clone` of the README's URL clones this repository's HEAD (commit first),
// and each phase gets a fresh HOME (so a fresh ~/.openclaw state dir and guard dir).
//
// Per host, like a new user:
//   1. Quick start: from an empty directory, `git clone`, `npm ci`, `npm run install-plugin`, enable,
//      status, with no registry that holds the package (npm's own registry does not); the status
//      must say the hook is attached. A `cd` in one block carries over to the next, as in a shell.
//   2. From the npm registry, in a second fresh HOME: the blocks run against a local Verdaccio that
//      holds the packed package (as the public registry will once it is published), and 2026.4.x's
//      ClawHub look-up goes to a stand-in that lists no package (as clawhub.ai does for this one).
//   3. docs/development.md's link loop, then Status, then Uninstall, in the quick start's clone and HOME.
// A block that starts with `# OpenClaw 2026.4.x, …` runs only on those hosts.
import { spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { packPackage } from "../../scripts/package-plugin.mjs";
import type { StatusReport } from "../../src/cli/status-report.ts";
import { ensureHost, REPO_ROOT } from "../support/install-host.ts";
import { type ClawHubStandIn, type LocalRegistry, startClawHubWithoutPackage, startRegistry } from "../support/local-registry.ts";
import { type DocBlock, shBlocks } from "../support/markdown-blocks.ts";
import { PLUGIN_ID, parseJsonOutput } from "./harness.ts";

const MINUTE = 60_000;
const HOSTS = ["2026.4.15", "2026.9.6"];
const SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt";
/** Where the README's `git clone` points; the test clones this checkout instead. */
const REPO_URL = "https://github.com/openclaw-refresh-guard/openclaw-refresh-guard.git";
const README_SECTIONS = ["Quick start", "From the npm registry", "Status", "Uninstall"];
const DEV_SECTIONS = ["Linking a build"];

function blockRunsOn(block: DocBlock, version: string): boolean {
  return block.hosts.length === 0 || block.hosts.some((pattern) => version.startsWith(pattern.replace(/x$/, "")));
}

const readme = await readFile(join(REPO_ROOT, "README.md"), "utf8");
const development = await readFile(join(REPO_ROOT, "docs", "development.md"), "utf8");
const blocks = [...shBlocks("README.md", readme, README_SECTIONS), ...shBlocks("docs/development.md", development, DEV_SECTIONS)];
const inSection = (section: string) => blocks.filter((block) => block.section === section);
const ran = new Set<DocBlock>();

let registry: LocalRegistry;
let clawhub: ClawHubStandIn;
let work: string;

beforeAll(async () => {
  [registry, clawhub] = await Promise.all([startRegistry(), startClawHubWithoutPackage()]);
  work = await mkdtemp(join(tmpdir(), "rg-readme-"));
  const packed = packPackage({ destination: join(work, "packed"), stageDir: join(work, "stage") });
  await registry.publish(packed.tgz);
}, 5 * MINUTE);

afterAll(async () => {
  await clawhub?.stop();
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** One line per block to $RG_README_PROGRESS (a file), to see where a slow run is. */
function progress(line: string): void {
  const file = process.env.RG_README_PROGRESS;
  if (file) appendFileSync(file, `${new Date().toISOString()} ${line}\n`);
}

interface ShellRun {
  code: number | null;
  output: string;
  /** The shell's working directory when the block ended (a `cd` carries over to the next block). */
  cwd: string;
}

async function sh(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<ShellRun> {
  const cwdFile = join(work, `cwd-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const result = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn("sh", ["-e", "-c", `${script}\npwd >'${cwdFile}'`], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    // A bound for a hung command, not a speed check (`npm ci` is the slowest block).
    // The quick start's one block (clone, npm ci, build, pack, install, enable) took 11 min on a
    // 2-core machine shared by seven test runs.
    const timer = setTimeout(() => child.kill("SIGKILL"), 25 * MINUTE);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
  const after = await readFile(cwdFile, "utf8").catch(() => `${cwd}\n`);
  await rm(cwdFile, { force: true });
  return { ...result, cwd: after.trimEnd() };
}

describe("README install and usage commands", () => {
  it("has commands to run in every section", () => {
    for (const section of [...README_SECTIONS, ...DEV_SECTIONS]) expect([section, inSection(section).length > 0]).toEqual([section, true]);
  });

  it("opens with the two commands a new user needs: the demo and the tests", () => {
    const first = /```sh\n([\s\S]*?)```/.exec(readme)!;
    expect(readme.slice(0, first.index).match(/^## /m)).toBeNull();
    expect(
      first[1]!
        .split("\n")
        .filter(Boolean)
        .map((line) => line.split("#")[0]!.trim()),
    ).toEqual(["npm ci && npm run demo", "npm test"]);
  });

  it(
    `run as written on openclaw ${HOSTS.join(" and ")}, from a fresh clone, and every block runs on one of them`,
    async () => {
      // allSettled: both finish (and stop their processes) before afterAll removes their dirs.
      const results = await Promise.allSettled(HOSTS.map((version) => runReadmeOn(version)));
      for (const result of results) if (result.status === "rejected") throw result.reason;
      const missed = blocks.filter((block) => !ran.has(block));
      expect(missed.map((block) => block.script)).toEqual([]);
    },
    60 * MINUTE,
  );
});

async function runReadmeOn(version: string): Promise<void> {
  const host = await ensureHost(version);
  const root = join(work, version);
  const bin = join(root, "bin");
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, "openclaw"), `#!/bin/sh\nexec '${host.nodeBin}' '${host.bin}' "$@"\n`);
  await chmod(join(bin, "openclaw"), 0o755);

  const base: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(VITEST|OPENCLAW_|RG_|npm_|XDG_|GIT_)/i.test(key) || key === "NODE_ENV" || key === "NODE_OPTIONS" || key === "TEST") continue;
    base[key] = value;
  }
  /** A fresh HOME (so ~/.openclaw and the default guard dir are fresh), npm's cache kept for speed. */
  const phaseEnv = async (name: string): Promise<{ env: NodeJS.ProcessEnv; home: string; dir: string }> => {
    const home = join(root, `home-${name}`);
    const dir = join(root, `cwd-${name}`);
    await Promise.all([mkdir(home, { recursive: true }), mkdir(dir, { recursive: true })]);
    const env: NodeJS.ProcessEnv = {
      ...base,
      HOME: home,
      PATH: `${bin}:${base.PATH ?? ""}`,
      OPENCLAW_NO_RESPAWN: "1",
      OPENCLAW_CLAWHUB_URL: clawhub.url,
      NODE_EXTRA_CA_CERTS: SYSTEM_CA,
      npm_config_cache: process.env.npm_config_cache ?? join(homedir(), ".npm"),
      npm_config_prefer_offline: "true",
      npm_config_update_notifier: "false",
      npm_config_fund: "false",
      npm_config_audit: "false",
      // `git clone <the README's URL>` clones this checkout.
      GIT_CONFIG_COUNT: "1",
      GIT_CONFIG_KEY_0: `url.${REPO_ROOT}.insteadOf`,
      GIT_CONFIG_VALUE_0: REPO_URL,
    };
    return { env, home, dir };
  };
  const runBlocks = async (
    section: string,
    cwd: string,
    env: NodeJS.ProcessEnv,
    after?: (block: DocBlock, run: ShellRun) => Promise<void>,
  ) => {
    let output = "";
    for (const block of inSection(section).filter((b) => blockRunsOn(b, version))) {
      progress(`${version} ${section}: ${block.script.split("\n").join(" ; ")}`);
      const run = await sh(block.script, cwd, env);
      progress(`${version} ${section}: exit ${run.code}`);
      if (run.code !== 0)
        throw new Error(
          `${block.file} block (${block.section}) exited ${run.code} on ${version}:\n${block.script}\n--- output\n${run.output.slice(-4000)}`,
        );
      ran.add(block);
      cwd = run.cwd;
      output += run.output;
      await after?.(block, run);
    }
    return { cwd, output };
  };

  // 1. Quick start, from an empty directory to a guarded host.
  const quick = await phaseEnv("quick");
  const started = await runBlocks("Quick start", quick.dir, quick.env, async (block, run) => {
    if (/refresh-guard status\s*$/m.test(block.script)) expect(run.output).toMatch(/hook attached/);
  });
  const clone = started.cwd;
  expect(clone).toBe(join(quick.dir, "openclaw-refresh-guard"));
  expect(started.output).toContain(`Installed plugin: ${PLUGIN_ID}`);
  const statusJson = await sh("openclaw refresh-guard status --json", clone, quick.env);
  const report = parseJsonOutput(statusJson.output.slice(statusJson.output.indexOf("\n{") + 1)) as StatusReport;
  expect(report.host.hook).toBe("attached");
  // The seam the host's refresh goes through (2026.4.15 attaches host-undici too, but refreshes through global fetch).
  expect(report.host.seam).toBe(version.startsWith("2026.4.") ? "global-fetch" : "host-undici");
  expect(report.guard?.providers.map((provider) => provider.id)).toEqual(["openai-codex"]);
  expect(report.guard?.guardDir).toBe(join(quick.home, ".local", "state", "openclaw-refresh-guard"));

  // 2. From the npm registry, on a fresh host whose npm registry holds the package.
  const fromRegistry = await phaseEnv("registry");
  Object.assign(fromRegistry.env, registry.npmEnv);
  const installed = await runBlocks("From the npm registry", fromRegistry.dir, fromRegistry.env);
  expect(installed.output).toContain(`Installed plugin: ${PLUGIN_ID}`);
  const listed = await sh("openclaw plugins list --json", fromRegistry.dir, fromRegistry.env);
  expect(listed.output).toContain(`"${PLUGIN_ID}"`);

  // 3. The development link loop, Status and Uninstall, in the quick start's clone.
  await runBlocks("Linking a build", clone, quick.env);
  await runBlocks("Status", clone, quick.env, async (block, run) => {
    if (!/refresh-guard status --json/.test(block.script)) return;
    const linked = parseJsonOutput(run.output.slice(run.output.indexOf("\n{") + 1)) as StatusReport;
    expect(linked.plugin.id).toBe(PLUGIN_ID);
    expect(linked.host.version).toBe(version);
    expect(linked.host.hook).toBe("attached");
    expect(linked.guard?.providers.map((provider) => provider.id)).toEqual(["openai-codex"]);
    const config = JSON.parse(await readFile(join(quick.home, ".openclaw", "openclaw.json"), "utf8")) as {
      plugins: { entries: Record<string, unknown> };
    };
    const snippet = /```json5\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf("## Quick start")))![1]!;
    // The json5 snippet is a JavaScript object literal.
    const expected = new Function(`return (${snippet});`)() as { plugins: { entries: Record<string, unknown> } };
    expect(config.plugins.entries[PLUGIN_ID]).toEqual(expected.plugins.entries[PLUGIN_ID]);
  });
  await runBlocks("Uninstall", clone, quick.env);
  // After the README's uninstall the host answers without the plugin.
  const after = await sh("openclaw plugins list --json", clone, quick.env);
  expect(after.code).toBe(0);
  expect(after.output).not.toContain(`"${PLUGIN_ID}"`);
}
