// The manifest's JSON Schema and the code parser come from one table: the schema the host checks
// must be exactly the one derived from it, and every default it states must parse to the timing
// the guard uses.
import { readFileSync } from "node:fs";

import { describe, expect, it } from "vitest";

import { configSchema, defaultOf, OPTIONS } from "../../src/config/options.ts";
import { parseConfig } from "../../src/config/parse-config.ts";
import { DEFAULT_TIMING } from "../../src/core/timing.ts";

const manifest = JSON.parse(readFileSync(new URL("../../openclaw.plugin.json", import.meta.url), "utf8")) as { configSchema: unknown };

describe("config table", () => {
  it("is what openclaw.plugin.json declares (run `npm run manifest` after changing options.ts)", () => {
    expect(manifest.configSchema).toEqual(configSchema());
  });

  it("states defaults that parse to the guard's own timing defaults", () => {
    const raw: Record<string, Record<string, number> | number> = {};
    for (const option of OPTIONS) {
      if (option.kind !== "number") continue;
      const [head, tail] = option.path.split(".") as [string, string | undefined];
      if (tail === undefined) raw[head] = defaultOf(option);
      else raw[head] = { ...(raw[head] as Record<string, number> | undefined), [tail]: defaultOf(option) };
    }
    expect(parseConfig(raw, { home: "/h" }).timing).toEqual(DEFAULT_TIMING);
  });

  it("accepts each bound and refuses just past it", () => {
    for (const option of OPTIONS) {
      if (option.kind !== "number") continue;
      const [head, tail] = option.path.split(".") as [string, string | undefined];
      const at = (value: number) => (tail === undefined ? { [head]: value } : { [head]: { [tail]: value } });
      const wait = option.path === "lock.staleMs" ? { waitTimeoutMs: 600_000 } : {};
      const withWait = (value: number) => (head === "lock" ? { lock: { ...wait, ...(at(value).lock as object) } } : at(value));
      const context = { home: "/h" };
      if (option.path !== "lock.waitTimeoutMs") expect(() => parseConfig(withWait(option.min), context)).not.toThrow();
      expect(() => parseConfig(withWait(option.max), context)).not.toThrow();
      expect(() => parseConfig(withWait(option.min - 1), context)).toThrow(/between/);
      expect(() => parseConfig(withWait(option.max + 1), context)).toThrow(/between/);
    }
  });
});
