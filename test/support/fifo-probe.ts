// A child process that reads one of the guard's or recovery's files where a FIFO sits (or appears
// between a stat and the open), then proves its own fs reads still work and that it can exit.
// The parent (test/special-files.test.ts) kills it if it does not report back: a hang is a failure.
// Config in PROBE_CONFIG: { scenario, guardDir, stateDir, file, key, token, normalFile, count }.
import { execFileSync } from "node:child_process";
import { promises as fsp, unlinkSync } from "node:fs";
import { join } from "node:path";
import { StatusStore } from "../../src/plugin/status-record.ts";
import { openClawAgentStores } from "../../src/siblings/openclaw-json-stores.ts";
import type { SiblingSource } from "../../src/siblings/sibling-source.ts";
import { Journal } from "../../src/store/journal.ts";
import { RefreshLocks } from "../../src/store/refresh-lock.ts";

interface ProbeConfig {
  scenario: string;
  guardDir: string;
  stateDir: string;
  file: string;
  key: string;
  token: string;
  normalFile: string;
  count: number;
}

const config = JSON.parse(process.env.PROBE_CONFIG ?? "{}") as ProbeConfig;
const warnings: string[] = [];
const warn = (message: string) => warnings.push(message);

async function codexSource(file: string): Promise<SiblingSource> {
  const { openai } = await import("../../src/providers/openai.ts");
  const [source] = openai.extraSiblingSources({ stateDir: "", agentDirs: [], home: "", providerFiles: { codexAuthFile: file } });
  if (source === undefined) throw new Error("no Codex CLI source");
  return source;
}

function journal(): Journal {
  return new Journal({
    dir: join(config.guardDir, "journal"),
    quarantineDir: join(config.guardDir, "quarantine"),
    retentionMs: 86_400_000,
    onQuarantine: (error) => warn(error.message),
  });
}

/** Replaces `target` with a FIFO at its first open (after any stat that came before it). */
function swapAtOpen(target: string): void {
  let swapped = false;
  const swap = () => {
    if (swapped) return;
    swapped = true;
    unlinkSync(target);
    execFileSync("mkfifo", ["-m", "600", target]);
  };
  const api = fsp as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const name of ["lstat", "stat"]) {
    const real = api[name]!.bind(fsp);
    api[name] = async (path: unknown, ...rest: unknown[]) => {
      const result = await real(path, ...rest);
      if (path === target) swap();
      return result;
    };
  }
  for (const name of ["open", "readFile"]) {
    const real = api[name]!.bind(fsp);
    api[name] = async (path: unknown, ...rest: unknown[]) => {
      if (path === target) swap();
      return real(path, ...rest);
    };
  }
}

async function run(): Promise<unknown> {
  switch (config.scenario) {
    case "journal-entry":
      return { entry: await journal().read(config.key, config.token) };
    case "spent-marker":
      return { marker: await journal().readTombstone(config.key, config.token) };
    case "lock-owner": {
      const locks = new RefreshLocks(join(config.guardDir, "locks"), { staleMs: 2000, updateMs: 1000 });
      return { holders: (await locks.holders()).map((holder) => ({ key: holder.key, pid: holder.pid ?? null })) };
    }
    case "status-record":
      return { counts: (await new StatusStore(join(config.guardDir, "status")).summary()).counts };
    case "codex-file":
      return { credentials: (await (await codexSource(config.file)).load(warn)).length };
    case "agent-store":
      return { credentials: (await openClawAgentStores({ stateDir: config.stateDir, providers: ["openai-codex"] }).load(warn)).length };
    case "swap-agent-store":
      swapAtOpen(config.file);
      return { credentials: (await openClawAgentStores({ stateDir: config.stateDir, providers: ["openai-codex"] }).load(warn)).length };
    case "swap-codex-file":
      swapAtOpen(config.file);
      return { credentials: (await (await codexSource(config.file)).load(warn)).length };
    case "many-entries": {
      // `count` FIFOs at journal entries, read one after another (more than libuv's 4 threads).
      const read = [];
      for (let index = 0; index < config.count; index += 1)
        read.push(await journal().read(`${config.key.slice(0, 62)}${index.toString(16).padStart(2, "0")}`, config.token));
      return { entries: read };
    }
    default:
      throw new Error(`unknown scenario ${config.scenario}`);
  }
}

const result = await run();
// The process's own fs reads still work (the thread pool is not stuck on a FIFO).
const normal = await fsp.readFile(config.normalFile, "utf8");
process.send?.({ type: "result", result, warnings, normal });
// And it can exit: nothing holds the event loop.
process.disconnect?.();
