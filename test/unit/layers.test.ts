// The Layout table (docs/development.md, linked from the README) states the architecture: each folder of src/ is one layer, listed top
// to bottom, and a layer imports only from itself and the layers below it. This test reads that
// order from that page itself (so the two cannot drift) and checks every import of src/**/*.ts
// against it, static and dynamic, type-only included; and that no module takes part in an import cycle.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SRC = join(ROOT, "src");

/** The layers, top first, as the Layout table lists them (`src/index.ts` is the entry above all). */
function layersFromReadme(): string[] {
  const readme = readFileSync(join(ROOT, "docs", "development.md"), "utf8");
  const start = readme.indexOf("## Layout");
  if (start < 0) throw new Error("docs/development.md has no ## Layout section");
  const layers: string[] = [];
  for (const line of readme.slice(start).split("\n").slice(1)) {
    if (line.startsWith("#")) break;
    const match = /^\|\s*`src\/([a-z-]+)\/`/.exec(line);
    if (match?.[1] !== undefined) layers.push(match[1]);
  }
  return layers;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Relative specifiers this file imports or re-exports, statically or through `import(...)`. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specifiers: string[] = [];
  const patterns = [/^\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"/gms, /^\s*import\s+"([^"]+)"/gm, /\bimport\(\s*"([^"]+)"\s*\)/g];
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) if (match[1]?.startsWith(".")) specifiers.push(match[1]);
  }
  return specifiers;
}

/** `plugin` for src/plugin/x.ts; `index` for src/index.ts. */
function layerOf(file: string): string {
  const path = relative(SRC, file);
  return path.includes("/") ? (path.split("/")[0] as string) : "index";
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((file) => [file, importsOf(file).map((specifier) => resolve(dirname(file), specifier))]));

describe("the layering rule in the Layout table (docs/development.md)", () => {
  const layers = layersFromReadme();

  it("lists every folder of src/ exactly once, and nothing that is not there", () => {
    const folders = readdirSync(SRC, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    expect([...layers].sort()).toEqual([...new Set(folders)].sort());
    expect(new Set(layers).size).toBe(layers.length);
  });

  it("every import in src/ stays in its layer or goes down", () => {
    const rank = new Map(["index", ...layers].map((layer, index) => [layer, index]));
    const upward: string[] = [];
    for (const [file, targets] of graph) {
      const from = layerOf(file);
      for (const target of targets) {
        const to = layerOf(target);
        if ((rank.get(to) ?? -1) < (rank.get(from) ?? Number.POSITIVE_INFINITY))
          upward.push(`${relative(SRC, file)} → ${relative(SRC, target)} (${from} imports ${to}, above it)`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("every import resolves to a file in src/", () => {
    const missing = [...graph].flatMap(([file, targets]) =>
      targets.filter((target) => !graph.has(target)).map((target) => `${relative(SRC, file)} → ${relative(SRC, target)}`),
    );
    expect(missing).toEqual([]);
  });

  it("no module of src/ is part of an import cycle", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (file: string): void => {
      state.set(file, "open");
      stack.push(file);
      for (const target of graph.get(file) ?? []) {
        if (state.get(target) === "open") {
          cycles.push([...stack.slice(stack.indexOf(target)), target].map((path) => relative(SRC, path)).join(" → "));
        } else if (!state.has(target)) visit(target);
      }
      stack.pop();
      state.set(file, "done");
    };
    for (const file of files) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });
});
