// A fact the README (or a page it links) states about the code is checked against the code, as the
// manifest schema is: the runtime dependency list against package.json, the default guard dir
// against defaultGuardDir(), the configuration table and examples/openclaw.json5 against
// src/config/options.ts, the Redis table against the coordination schema. And every ```sh block in
// the README sits in a section a test runs.
import { readFileSync } from "node:fs";

import { describe, expect, it } from "vitest";

import { coordinationSchema } from "../../src/config/coordination-config.ts";
import { defaultOf, OPTIONS } from "../../src/config/options.ts";
import { defaultGuardDir, parseConfig } from "../../src/config/parse-config.ts";
import { PROVIDERS } from "../../src/providers/registry.ts";
import { shBlocks } from "../support/markdown-blocks.ts";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");
const readme = read("README.md");
const pkg = JSON.parse(read("package.json")) as { dependencies: Record<string, string> };

/** Rows of the first Markdown table after `heading`, as cells without their backticks. */
function tableAfter(markdown: string, heading: string): string[][] {
  const start = markdown.indexOf(heading);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const lines = markdown.slice(start).split("\n");
  const first = lines.findIndex((line) => line.startsWith("|"));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(
      line
        .slice(1, -1)
        .split(" | ")
        .map((cell) => cell.trim()),
    );
  }
  return rows;
}

/** The guard dir default as the docs spell it: ~ for the home, $XDG_STATE_HOME for the variable. */
const GUARD_DIR_XDG = defaultGuardDir("/home/u", { XDG_STATE_HOME: "/XDG" }).replace("/XDG", "$XDG_STATE_HOME");
const GUARD_DIR_HOME = defaultGuardDir("/home/u", {}).replace("/home/u", "~");

describe("README facts match the code", () => {
  it("names exactly the runtime dependencies package.json declares", () => {
    const stated = /installs its\s+runtime dependencies \(([^)]*)\)/.exec(readme);
    expect(stated, "the README's sentence about runtime dependencies").not.toBeNull();
    expect(stated![1]!.split(/,\s*/).sort()).toEqual(Object.keys(pkg.dependencies).sort());
    // The packaging script says the same, or names no list at all.
    expect(read("scripts/package-plugin.mjs")).not.toMatch(/async-mutex and proper-lockfile from/);
  });

  it("states the default guard dir defaultGuardDir() computes, in the table and in Uninstall", () => {
    expect([GUARD_DIR_XDG, GUARD_DIR_HOME]).toEqual(["$XDG_STATE_HOME/openclaw-refresh-guard", "~/.local/state/openclaw-refresh-guard"]);
    const row = tableAfter(readme, "## Configuration").find((cells) => cells[0] === "`guardDir`")!;
    expect(row[1]).toContain(GUARD_DIR_XDG);
    expect(row[1]).toContain(GUARD_DIR_HOME);
    const uninstall = readme.slice(readme.indexOf("## Uninstall"));
    expect(uninstall).toContain(GUARD_DIR_XDG);
    expect(uninstall).toContain(GUARD_DIR_HOME);
    expect(uninstall).not.toContain("(`<state dir>/refresh-guard`) is left");
  });

  it("has one configuration row per key of options.ts and provider, with its default and bounds", () => {
    const rows = tableAfter(readme, "## Configuration");
    const keys = rows.map((cells) => cells[0]!.replace(/`/g, ""));
    const providerKeys = PROVIDERS.flatMap((p) => [
      `providers["${p.id}"].enabled`,
      `providers["${p.id}"].tokenUrl`,
      ...p.aliases.map((a) => `providers.${a}`),
    ]);
    expect(keys.sort()).toEqual([...providerKeys, ...OPTIONS.map((o) => o.path)].sort());
    for (const option of OPTIONS) {
      const row = rows.find((cells) => cells[0] === `\`${option.path}\``)!;
      if (option.kind === "number") {
        expect([option.path, row[1]]).toEqual([option.path, `\`${defaultOf(option)}\``]);
        expect([option.path, row[2]!.startsWith(`${option.min} – ${option.max}`)]).toEqual([option.path, true]);
      } else {
        for (const part of option.defaultText.match(/[~$][^\s,()]+|"auto"/g) ?? [])
          expect([option.path, row[1]]).toEqual([option.path, expect.stringContaining(part)]);
      }
    }
    for (const provider of PROVIDERS) expect(rows.some((cells) => cells[1] === `\`${provider.tokenUrl}\``)).toBe(true);
  });

  it("docs/redis.md's table names every coordination key (and no other), with the schema's defaults", () => {
    const schema = coordinationSchema() as {
      properties: { backend: { default: string }; redis: { properties: Record<string, { default?: unknown }> } };
    };
    const rows = tableAfter(read("docs/redis.md"), "| key (under `coordination`)");
    // A row may group related keys (`redis.tlsCaFile` …, naming the others in its text).
    const named = new Set(rows.flatMap((cells) => [...cells.join(" ").matchAll(/`(?:redis\.)?(\w+)`/g)].map((m) => m[1]!)));
    for (const key of Object.keys(schema.properties.redis.properties)) expect([key, named.has(key)]).toEqual([key, true]);
    for (const cells of rows) {
      const key = cells[0]!.replace(/`|…/g, "").trim();
      expect([key, key === "backend" || key.replace(/^redis\./, "") in schema.properties.redis.properties]).toEqual([key, true]);
    }
    expect(rows.find((cells) => cells[0] === "`backend`")![1]).toBe(`\`${JSON.stringify(schema.properties.backend.default)}\``);
    for (const [name, field] of Object.entries(schema.properties.redis.properties)) {
      const row = rows.find((cells) => cells[0] === `\`redis.${name}\``);
      if (field.default === undefined || row === undefined) continue;
      expect([name, row[1]]).toEqual([name, `\`${JSON.stringify(field.default)}\``]);
    }
  });

  it("examples/openclaw.json5 shows every key with its real default, and parses", () => {
    const text = read("examples/openclaw.json5");
    // Uncommented, every `// key: value,` line becomes part of the object literal (JSON5 here is a JS literal).
    const full = text.replace(/^([ \t]*)\/\/ ("?[\w-]+"?: .*?,)([ \t]*\/\/.*)?$/gm, "$1$2");
    const parsed = new Function(`return (${full.replace(/^\s*\/\/.*$/gm, "")});`)() as {
      plugins: { entries: { "refresh-guard": { config: Record<string, unknown> } } };
    };
    const config = parsed.plugins.entries["refresh-guard"].config;
    const topKeys = new Set(OPTIONS.map((o) => o.path.split(".")[0]!));
    expect(Object.keys(config).sort()).toEqual([...topKeys, "providers", "coordination"].sort());
    expect(config.guardDir).toBe(GUARD_DIR_HOME);
    for (const option of OPTIONS) {
      const [head, tail] = option.path.split(".") as [string, string | undefined];
      const value = tail === undefined ? config[head] : (config[head] as Record<string, unknown>)[tail];
      if (option.kind === "number") expect([option.path, value]).toEqual([option.path, defaultOf(option)]);
      else if (option.path !== "guardDir")
        expect([option.path, option.defaultText]).toEqual([option.path, expect.stringContaining(String(value))]);
    }
    expect(config.coordination).toEqual({ backend: "file" });
    const home = "/home/u";
    const result = parseConfig({ ...config, guardDir: undefined }, { stateDir: "/s", home, env: {} });
    expect(result.guardDir).toBe(defaultGuardDir(home, {}));
    expect(parseConfig(config, { stateDir: "/s", home, env: {} }).guardDir).toBe(defaultGuardDir(home, {}));
  });

  it("every ```sh block of the README sits in a section that test/e2e/readme.test.ts or the dev-commands test runs", () => {
    const all = shBlocks("README.md", readme, [...new Set([...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]!.trim()))]);
    const run = shBlocks("README.md", readme, ["Quick start", "From the npm registry", "Status", "Uninstall"]);
    const opening = /```sh\n([\s\S]*?)```/.exec(readme)![1]!; // before the first heading: test/dev-commands.test.ts
    expect(all.length).toBe(run.length);
    expect(opening).toContain("npm run demo");
  });
});
