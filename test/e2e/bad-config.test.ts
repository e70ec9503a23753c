// A mistake in refresh-guard's settings must not stop the host. OpenClaw refuses every command
// while a plugin's config fails that plugin's manifest schema (and neither `config unset` nor
// `doctor --fix` repairs it), so the manifest documents the keys without validating them and the
// plugin checks them itself. On real hosts: a value out of bounds and an unknown key, set the way a
// user would (`openclaw config set`, and by editing openclaw.json), leave every command working;
// the plugin reports the full path, attaches nothing, and `status` says why.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { StatusReport } from "../../src/cli/status-report.ts";
import { createTestTls, type TestTls } from "../support/tls.ts";
import { HostWorld, hostUnderTest, type PackedPlugin, PLUGIN_ID, packPlugin, parseJsonOutput } from "./harness.ts";

const MINUTE = 60_000;
const HOSTS: Record<string, string[]> = {
  "2026.4.15": [],
  "2026.9.6": ["--force", "--accept-capabilities"],
};

let tls: TestTls;
let plugin: PackedPlugin;
const worlds: HostWorld[] = [];

beforeAll(async () => {
  tls = createTestTls();
  plugin = await packPlugin();
}, 5 * MINUTE);

afterAll(async () => {
  for (const world of worlds) await world.cleanup();
  await plugin?.cleanup();
  tls?.cleanup();
});

describe.each(Object.entries(HOSTS))("OpenClaw %s with a bad refresh-guard config", (version, flags) => {
  it(
    "keeps every command working, names the bad key, and attaches nothing",
    async () => {
      const world = await HostWorld.create(await hostUnderTest(version, flags), tls, "bad-config");
      worlds.push(world);
      await world.installPlugin(plugin.tgz);

      // As a user would type it: the host accepts it, the plugin refuses it.
      const set = await world.cli(["config", "set", `plugins.entries.${PLUGIN_ID}.config.lock.staleMs`, "--", "-5"]);
      expect(set.code, set.stderr).toBe(0);
      const models = await world.cli(["models", "status", "--json"]);
      expect(models.code, models.stderr).toBe(0);
      expect(parseJsonOutput(models.stdout)).toHaveProperty("configPath");
      const status = await world.status(true);
      // The plugin's own error line (stderr), naming the full path.
      expect(status.stderr).toContain("event=config_invalid");
      expect(status.stderr).toContain("lock.staleMs: must be between 2000 and 600000, got -5");
      const report = parseJsonOutput(status.stdout) as StatusReport;
      expect(report.host.hook).toBe("not attached");
      expect(report.configProblem).toMatch(
        /plugins\.entries\["refresh-guard"\]\.config\.lock\.staleMs: must be between 2000 and 600000, got -5/,
      );

      // A hand-edited typo: the same.
      const file = join(world.stateDir, "openclaw.json");
      const config = JSON.parse(await readFile(file, "utf8")) as { plugins: { entries: Record<string, { config?: unknown }> } };
      const entry = config.plugins.entries[PLUGIN_ID] ?? config.plugins.entries[`"${PLUGIN_ID}"`];
      if (entry === undefined) throw new Error(`no plugins.entries.${PLUGIN_ID} in ${file}`);
      entry.config = { lock: { stale: 5000 } };
      await writeFile(file, JSON.stringify(config, null, 2));
      const again = await world.cli(["models", "status", "--json"]);
      expect(again.code, again.stderr).toBe(0);
      const typo = parseJsonOutput((await world.status(true)).stdout) as StatusReport;
      expect(typo.configProblem).toMatch(/config\.lock\.stale: unknown key/);
      expect(typo.host.hook).toBe("not attached");

      // Fixed with the host's own command, the plugin is back.
      const fixed = await world.cli([
        "config",
        "set",
        `plugins.entries.${PLUGIN_ID}.config`,
        '{"providers":{"openai-codex":{"enabled":true}}}',
        "--strict-json",
      ]);
      expect(fixed.code, fixed.stderr).toBe(0);
      const healthy = parseJsonOutput((await world.status(true)).stdout) as StatusReport;
      expect(healthy.configProblem).toBeUndefined();
    },
    10 * MINUTE,
  );
});
