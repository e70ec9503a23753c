// The README's configuration tables come from the one table in src/config/options.ts: every key
// is documented with the default and bounds the parser uses. (Wherever the tables live: README.md
// or a page under docs/.)
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

import { defaultOf, OPTIONS } from "../../src/config/options.ts";
import { PROVIDERS } from "../../src/providers/registry.ts";

const root = new URL("../../", import.meta.url);
const docs = [
  readFileSync(new URL("README.md", root), "utf8"),
  ...readdirSync(new URL("docs/", root))
    .filter((name) => name.endsWith(".md"))
    .map((name) => readFileSync(new URL(`docs/${name}`, root), "utf8")),
].join("\n");

/** Table rows by their first cell's key (`lock.staleMs`; rows of the `coordination` table without the prefix). */
const rows = new Map<string, string>();
for (const line of docs.split("\n")) {
  const key = /^\|\s*`([^`]+)`\s*\|/.exec(line)?.[1];
  if (key !== undefined && !rows.has(key)) rows.set(key, line);
}

function rowOf(path: string): string | undefined {
  return rows.get(path) ?? rows.get(path.replace(/^coordination\./, ""));
}

describe("the configuration tables in the docs", () => {
  it.each(OPTIONS.map((option) => [option.path, option] as const))("document %s with its default and bounds", (path, option) => {
    const row = rowOf(path);
    expect(row, `no table row for ${path}`).toBeDefined();
    if (option.kind === "number") {
      expect(row).toContain(`\`${defaultOf(option)}\``);
      expect(row).toContain(`${option.min} – ${option.max}`);
    } else if (option.kind === "path" && option.homePath !== undefined) {
      expect(row).toContain(`\`~/${option.homePath}\``);
    }
  });

  it("document every provider id", () => {
    for (const id of PROVIDERS.flatMap((provider) => [provider.id, ...provider.aliases])) {
      expect(rows.has(`providers["${id}"].enabled`) || rows.has(`providers.${id}`), id).toBe(true);
    }
  });
});
