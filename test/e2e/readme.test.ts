// The README is executed: every ```sh block under "Install into OpenClaw" and "Status" runs, as
// written, against real hosts (2026.4.15 and 2026.9.6), each in its own copy of this checkout and
// its own throwaway OpenClaw state dir. Only the environment is substituted: `openclaw` on PATH
// is the host under test, npm's registry is a local Verdaccio holding the packed package, and
// 2026.4.x's ClawHub look-up goes to a stand-in that lists no package (as clawhub.ai does for this one).
// A block that starts with `# OpenClaw 2026.4.x, …` runs only on those hosts. The blocks run in
// README order, except that the "Uninstall" subsection runs after "Status".
import { execFileSync, spawn } from "node:child_process";
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { packPackage } from "../../scripts/package-plugin.mjs";
import type { StatusReport } from "../../src/cli/status-report.ts";
import { ensureHost, REPO_ROOT } from "../support/install-host.ts";
import { type ClawHubStandIn, type LocalRegistry, startClawHubWithoutPackage, startRegistry } from "../support/local-registry.ts";
import { PLUGIN_ID, parseJsonOutput } from "./harness.ts";

const MINUTE = 60_000;
const SECTIONS = ["Install into OpenClaw", "Status"];
const HOSTS = ["2026.4.15", "2026.9.6"];
const SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt";

interface ReadmeBlock {
  section: string;
  /** The `### ` heading above the block, if any. */
  subsection: string | null;
  /** Host versions the block is for (from a leading `# OpenClaw 2026.4.x, 2026.5.x` line); empty: all. */
  hosts: string[];
  script: string;
}

/** ```sh blocks under the given `## ` headings (their `### ` subsections included), in order. */
function readmeBlocks(markdown: string, sections: readonly string[]): ReadmeBlock[] {
  const blocks: ReadmeBlock[] = [];
  let section: string | null = null;
  let subsection: string | null = null;
  let lines: string[] | null = null;
  for (const line of markdown.split("\n")) {
    if (lines !== null) {
      if (line.startsWith("```")) {
        const hostLine = /^#\s*OpenClaw\s+(.+)$/.exec(lines[0] ?? "");
        blocks.push({
          section: section!,
          subsection,
          hosts: hostLine ? hostLine[1]!.split(",").map((h) => h.trim()) : [],
          script: lines.join("\n"),
        });
        lines = null;
      } else lines.push(line);
      continue;
    }
    const heading = /^## (.+)$/.exec(line);
    const subheading = /^### (.+)$/.exec(line);
    if (heading) {
      section = sections.includes(heading[1]!.trim()) ? heading[1]!.trim() : null;
      subsection = null;
    } else if (subheading) subsection = subheading[1]!.trim();
    else if (section !== null && /^```sh\s*$/.test(line)) lines = [];
  }
  return blocks;
}

function blockRunsOn(block: ReadmeBlock, version: string): boolean {
  return block.hosts.length === 0 || block.hosts.some((pattern) => version.startsWith(pattern.replace(/x$/, "")));
}

const readme = await readFile(join(REPO_ROOT, "README.md"), "utf8");
const blocks = readmeBlocks(readme, SECTIONS);
const ran = new Set<ReadmeBlock>();

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

interface ShellRun {
  code: number | null;
  output: string;
}

function sh(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<ShellRun> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-e", "-c", script], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    // A bound for a hung command, not a speed check (`npm ci` is the slowest block).
    const timer = setTimeout(() => child.kill("SIGKILL"), 10 * MINUTE);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The checkout's files as a clone would have them (tracked and new, not ignored). */
async function copyCheckout(to: string): Promise<void> {
  const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: REPO_ROOT, encoding: "utf8" })
    .split("\0")
    .filter(Boolean);
  for (const file of files) {
    await mkdir(join(to, file, ".."), { recursive: true });
    await cp(join(REPO_ROOT, file), join(to, file)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error; // deleted in the work tree, not yet committed
    });
  }
}

describe("README install and usage commands", () => {
  it("has commands to run in both sections", () => {
    for (const section of SECTIONS) expect(blocks.filter((block) => block.section === section).length).toBeGreaterThan(0);
  });

  it(
    `run as written on openclaw ${HOSTS.join(" and ")}, and every block runs on one of them`,
    async () => {
      // allSettled: both finish (and stop their processes) before afterAll removes their dirs.
      const results = await Promise.allSettled(HOSTS.map((version) => runReadmeOn(version)));
      for (const result of results) if (result.status === "rejected") throw result.reason;
      const missed = blocks.filter((block) => !ran.has(block));
      expect(missed.map((block) => block.script)).toEqual([]);
    },
    25 * MINUTE,
  );
});

async function runReadmeOn(version: string): Promise<void> {
  const host = await ensureHost(version);
  const root = join(work, version);
  const checkout = join(root, "refresh-guard");
  const bin = join(root, "bin");
  const state = join(root, "state");
  await Promise.all([checkout, bin, state, join(root, "home")].map((dir) => mkdir(dir, { recursive: true })));
  await copyCheckout(checkout);
  await writeFile(join(bin, "openclaw"), `#!/bin/sh\nexec '${host.nodeBin}' '${host.bin}' "$@"\n`);
  await chmod(join(bin, "openclaw"), 0o755);

  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(VITEST|OPENCLAW_|RG_|npm_)/i.test(key) || key === "NODE_ENV" || key === "NODE_OPTIONS" || key === "TEST") continue;
    env[key] = value;
  }
  Object.assign(env, registry.npmEnv, {
    PATH: `${bin}:${env.PATH ?? ""}`,
    OPENCLAW_STATE_DIR: state,
    OPENCLAW_HOME: join(root, "home"),
    OPENCLAW_NO_RESPAWN: "1",
    OPENCLAW_CLAWHUB_URL: clawhub.url,
    NODE_EXTRA_CA_CERTS: SYSTEM_CA,
    // `npm ci` fetches from the lockfile's own URLs (through npm's cache) instead of the test registry.
    npm_config_replace_registry_host: "never",
    npm_config_prefer_offline: "true",
  });

  const mine = blocks.filter((block) => blockRunsOn(block, version));
  const last = (block: ReadmeBlock) => block.subsection === "Uninstall";
  const ordered = [...mine.filter((block) => !last(block)), ...mine.filter(last)];
  const outputs: string[] = [];
  for (const block of ordered) {
    const run = await sh(block.script, checkout, env);
    if (run.code !== 0)
      throw new Error(
        `README block (${block.section}) exited ${run.code} on ${version}:\n${block.script}\n--- output\n${run.output.slice(-4000)}`,
      );
    outputs.push(run.output);
    ran.add(block);
    // Before uninstalling: the plugin answers, as installed from the checkout, and the config is the README's.
    if (/refresh-guard status --json/.test(block.script)) {
      const report = parseJsonOutput(run.output.slice(run.output.indexOf("\n{") + 1)) as StatusReport;
      expect(report.plugin.id).toBe(PLUGIN_ID);
      expect(report.host.version).toBe(version);
      expect(report.guard?.providers.map((provider) => provider.id)).toEqual(["openai-codex"]);
      const config = JSON.parse(await readFile(join(state, "openclaw.json"), "utf8")) as { plugins: { entries: Record<string, unknown> } };
      const snippet = /```json5\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf("### Enable it for a provider")))![1]!;
      // The json5 snippet is a JavaScript object literal.
      const expected = new Function(`return (${snippet});`)() as { plugins: { entries: Record<string, unknown> } };
      expect(config.plugins.entries[PLUGIN_ID]).toEqual(expected.plugins.entries[PLUGIN_ID]);
    }
  }
  expect(outputs.join("\n")).toContain(`Installed plugin: ${PLUGIN_ID}`);
  // After the README's uninstall the host answers without the plugin.
  const after = await sh("openclaw plugins list --json", checkout, env);
  expect(after.code).toBe(0);
  expect(after.output).not.toContain(`"${PLUGIN_ID}"`);
}
