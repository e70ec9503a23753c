import { existsSync, promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { GuardEvent } from "../../src/core/refresh-guard.ts";
import { StatusStore } from "../../src/plugin/status-record.ts";

let root: string;

beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-status-"));
});

afterEach(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

const shared = (ms: number): GuardEvent => ({ type: "shared", provider: "openai-codex", key: "1a2b3c4d", hops: 1, ms });

async function lines(): Promise<{ type: string; ms: number }[]> {
  const text = await fsp.readFile(join(root, "outcomes.jsonl"), "utf8");
  return text
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line) as { type: string; ms: number });
}

describe("StatusStore", () => {
  it("coalesces the outcomes of one event-loop turn into one append, after the turn, keeping every record in order", async () => {
    const store = new StatusStore(root);
    const writes = [store.record(shared(1)), store.record(shared(2)), store.record(shared(3))];
    // Nothing is written during the turn that recorded them: the callers are answered first.
    expect(existsSync(join(root, "outcomes.jsonl"))).toBe(false);
    // One write serves the whole turn.
    expect(new Set(writes).size).toBe(1);
    await Promise.all(writes);
    expect((await lines()).map((record) => record.ms)).toEqual([1, 2, 3]);
  });

  it("shows this process's own outcomes in its summary even before they are written", async () => {
    const store = new StatusStore(root);
    void store.record(shared(5));
    void store.record({ type: "redeemed", provider: "openai-codex", key: "1a2b3c4d", hops: 0, ms: 7 });
    const summary = await store.summary();
    expect(summary.counts).toMatchObject({ shared: 1, redeemed: 1 });
  });

  it("writes each outcome at once with coalesce off", async () => {
    const store = new StatusStore(root, Date.now, { coalesce: false });
    const first = store.record(shared(1));
    const second = store.record(shared(2));
    expect(first).not.toBe(second);
    await Promise.all([first, second]);
    expect((await lines()).map((record) => record.ms).sort()).toEqual([1, 2]);
  });

  it("writes coalesced outcomes synchronously when the process exits before the next turn", async () => {
    const { spawnSync } = await import("node:child_process");
    const script = [
      `import { StatusStore } from ${JSON.stringify(new URL("../../src/plugin/status-record.ts", import.meta.url).href)};`,
      `const store = new StatusStore(${JSON.stringify(root)});`,
      `void store.record({ type: "shared", provider: "openai-codex", key: "1a2b3c4d", hops: 1, ms: 9 });`,
      `process.exit(0);`,
    ].join("\n");
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    expect((await lines()).map((record) => record.ms)).toEqual([9]);
  });
});
