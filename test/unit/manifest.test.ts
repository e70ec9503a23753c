// The manifest's JSON Schema and the code parser come from one table: the schema the host checks
// must be exactly the one derived from it, and every default it states must parse to the timing
// the guard uses.
import { readFileSync } from "node:fs";

import { describe, expect, it } from "vitest";

import { configSchema } from "../../src/config/config-schema.ts";
import { defaultOf, OPTIONS } from "../../src/config/options.ts";
import { parseConfig } from "../../src/config/parse-config.ts";
import { DEFAULT_TIMING } from "../../src/core/timing.ts";

const manifest = JSON.parse(readFileSync(new URL("../../openclaw.plugin.json", import.meta.url), "utf8")) as { configSchema: unknown };

describe("config table", () => {
  it("is what openclaw.plugin.json declares (run `npm run manifest` after changing options.ts)", () => {
    expect(manifest.configSchema).toEqual(configSchema());
  });

  it("states defaults that parse to the guard's own timing defaults, and to the Redis defaults", () => {
    const raw: Record<string, unknown> = { coordination: { backend: "redis", redis: { url: "redis://cache" } } };
    for (const option of OPTIONS) {
      if (option.path === "coordination.backend") continue;
      if (option.kind === "number" || option.kind === "choice" || (option.kind === "text" && option.default !== undefined))
        setAt(raw, option.path, option.kind === "number" ? defaultOf(option) : option.default);
    }
    const parsed = parseConfig(raw, { home: "/h" });
    expect(parsed.timing).toEqual(DEFAULT_TIMING);
    expect(parsed.coordination).toEqual(
      parseConfig({ coordination: { backend: "redis", redis: { url: "redis://cache" } } }, { home: "/h" }).coordination,
    );
  });

  it("accepts each bound and refuses just past it", () => {
    for (const option of OPTIONS) {
      if (option.kind !== "number") continue;
      const withWait = (value: number) => {
        const raw: Record<string, unknown> = { coordination: { backend: "redis", redis: { url: "redis://cache" } } };
        if (option.path === "lock.staleMs") setAt(raw, "lock.waitTimeoutMs", 600_000);
        setAt(raw, option.path, value);
        return raw;
      };
      const context = { home: "/h" };
      if (option.path !== "lock.waitTimeoutMs") expect(() => parseConfig(withWait(option.min), context)).not.toThrow();
      expect(() => parseConfig(withWait(option.max), context)).not.toThrow();
      expect(() => parseConfig(withWait(option.min - 1), context)).toThrow(/between/);
      expect(() => parseConfig(withWait(option.max + 1), context)).toThrow(/between/);
    }
  });
});

function setAt(raw: Record<string, unknown>, path: string, value: unknown): void {
  const names = path.split(".");
  let level = raw;
  for (const name of names.slice(0, -1)) {
    level[name] ??= {};
    level = level[name] as Record<string, unknown>;
  }
  level[names.at(-1) as string] = value;
}
