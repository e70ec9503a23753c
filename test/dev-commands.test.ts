// The commands of the README's first lines and of docs/development.md outside the link loop (that runs
// in test/e2e/readme.test.ts, the benchmark's in bench-smoke.test.ts): the demo, and the development
// commands. `npm test` itself is what CI runs; `test:unit` and `test:e2e` are checked to split exactly
// the files `npm test` runs, so neither leaves one out.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { promisify } from "node:util";

import { describe, expect, it } from "vitest";

import { REPO_ROOT } from "./support/install-host.ts";

const run = promisify(execFile);

function npm(args: string[]) {
  return run("npm", args, { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: "false" } });
}

describe("README commands", () => {
  it("npm run demo: without the guard agents fail over on reuse; with it every refresh succeeds, one redemption per expiry", async () => {
    const { stdout } = await npm(["run", "demo"]);
    const row = (label: string) => {
      const line = stdout.split("\n").find((text) => text.includes(label));
      if (line === undefined) throw new Error(`no "${label}" row in:\n${stdout}`);
      return line
        .split("│")
        .map((cell) => cell.trim())
        .filter((cell) => cell !== "")
        .slice(1)
        .map(Number);
    };
    // refreshes, succeeded, failed over, endpoint redemptions, 401 refresh_token_reused
    const [refreshes, ok, failed, redemptions, reuses] = row("without guard");
    expect(refreshes).toBe(18);
    expect(failed).toBeGreaterThan(0);
    expect(reuses).toBeGreaterThan(0);
    expect(ok! + failed!).toBe(18);
    expect(redemptions).toBe(3);
    expect(row("with refresh-guard")).toEqual([18, 18, 0, 3, 0]);
    expect(stdout).toContain("refresh-guard: every refresh succeeded with one redemption per rotation");
  }, 180_000);

  it("npm run manifest leaves openclaw.plugin.json as committed (the schema is derived from the table)", async () => {
    const before = readFileSync(join(REPO_ROOT, "openclaw.plugin.json"), "utf8");
    await npm(["run", "manifest"]);
    expect(readFileSync(join(REPO_ROOT, "openclaw.plugin.json"), "utf8")).toBe(before);
  }, 60_000);

  it("npm run lint passes with zero warnings", async () => {
    const { stdout, stderr } = await npm(["run", "lint"]);
    expect(`${stdout}${stderr}`).not.toMatch(/Found \d+ (warning|error)/);
  }, 120_000);

  it("npm run test:unit and npm run test:e2e together run every test file, and no file twice", async () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    const filters = (script: string) => {
      const command = pkg.scripts[script] ?? "";
      const vitest = command.slice(command.indexOf("vitest run") + "vitest run".length).trim();
      return vitest.split(/\s+/).filter((arg) => arg !== "" && !arg.startsWith("-"));
    };
    const all: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.name.endsWith(".test.ts")) all.push(relative(REPO_ROOT, path));
      }
    };
    await walk(join(REPO_ROOT, "test"));
    const covered = (file: string, filter: string) => file === filter || file.startsWith(`${filter.replace(/\/$/, "")}/`);
    for (const file of all) {
      const unit = filters("test:unit").some((filter) => covered(file, filter));
      const e2e = filters("test:e2e").some((filter) => covered(file, filter));
      expect([file, unit !== e2e]).toEqual([file, true]);
    }
  }, 30_000);
});
