// `openclaw refresh-guard status` reads what exists and builds nothing: no guard is opened, no
// directory created, no lock primed, whatever the config and whether or not a provider is enabled.
import { chmod, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

import { parseConfig } from "../../src/config/parse-config.ts";
import { GuardRuntime } from "../../src/plugin/guard-runtime.ts";
import { tokenKey } from "../../src/store/token-crypto.ts";

const homes: string[] = [];
const lines: string[] = [];
const logger = {
  debug: (line: string) => lines.push(line),
  info: (line: string) => lines.push(line),
  warn: (line: string) => lines.push(line),
  error: (line: string) => lines.push(line),
};

afterEach(async () => {
  await Promise.all(homes.splice(0).map((home) => rm(home, { recursive: true, force: true })));
  lines.length = 0;
});

async function freshHome(): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), "rg-status-home-"));
  homes.push(home);
  return home;
}

/** Every path under `dir`, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

describe("status reads, it never builds", () => {
  it.each([
    ["a provider enabled", { providers: { "openai-codex": { tokenUrl: "https://127.0.0.1:9/oauth/token" } } }],
    ["no provider enabled", {}],
  ])("on a fresh HOME (%s) reports an empty guard dir and creates no directory", async (_name, raw) => {
    const home = await freshHome();
    const stateDir = join(home, ".openclaw");
    const config = parseConfig(raw, { stateDir, home, env: {} });
    expect(config.guardDir).toBe(join(home, ".local", "state", "openclaw-refresh-guard"));

    const report = await new GuardRuntime(config, { logger, stateDir }).report();

    expect(report.guardDirProblem).toBeUndefined();
    expect(report.locks).toEqual([]);
    expect(report.journal).toEqual({ entries: 0, tombstones: 0, quarantined: 0, bytes: 0 });
    expect(report.outcomes).toEqual({ redeemed: 0, shared: 0, recovered: 0, failed: 0, warning: 0 });
    expect(await tree(home)).toEqual([]);
  });

  it("lists a held lock of an existing guard dir without adding anything to it", async () => {
    const home = await freshHome();
    const guardDir = join(home, "guard");
    const key = tokenKey("rt_held");
    await mkdir(join(guardDir, "locks", `${key}.lock`), { recursive: true, mode: 0o700 });
    await chmod(guardDir, 0o700);
    const before = await tree(guardDir);
    const config = parseConfig({ guardDir, providers: { "openai-codex": {} } }, { stateDir: join(home, ".openclaw"), home, env: {} });

    const report = await new GuardRuntime(config, { logger, stateDir: join(home, ".openclaw") }).report();

    expect(report.locks.map((lock) => lock.key)).toEqual([key.slice(0, 8)]);
    expect(await tree(guardDir)).toEqual(before);
  });

  it("reports an unsafe guard dir with its fix instead of using it", async () => {
    const home = await freshHome();
    const guardDir = join(home, "guard");
    await mkdir(guardDir);
    await chmod(guardDir, 0o777);
    const config = parseConfig({ guardDir, providers: { "openai-codex": {} } }, { stateDir: join(home, ".openclaw"), home, env: {} });

    const report = await new GuardRuntime(config, { logger, stateDir: join(home, ".openclaw") }).report();

    expect(report.guardDirProblem).toContain("chmod 700");
    expect(await tree(guardDir)).toEqual([]);
  });
});
