// The 2026.6+ SQLite stores as sibling sources, on real SQLite files laid out like the host's,
// and the Codex CLI write-back.

import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { openAiIdentity } from "../../src/providers/openai.ts";
import { codexCliAuth, writeCodexSuccessor } from "../../src/providers/openai-codex-cli.ts";
import { FENCE_PREFIX, fenceDigest, openClawSqliteStores } from "../../src/siblings/openclaw-sqlite-stores.ts";
import { resolveSiblingStateDirs } from "../../src/siblings/state-dirs.ts";

const { DatabaseSync } = createRequire(import.meta.url)("node:sqlite") as typeof import("node:sqlite");

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "rg-sqlite-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function oauth(refresh: string, access = `at_${refresh}`, accountId = "acct-1") {
  return { type: "oauth", provider: "openai", access, refresh, expires: Date.now() + 3_600_000, accountId };
}

async function sharedStore(stateDir: string, profiles: Record<string, unknown>, userVersion = 18): Promise<string> {
  await mkdir(join(stateDir, "state"), { recursive: true });
  const path = join(stateDir, "state", "openclaw.sqlite");
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("CREATE TABLE config_machine_state(state_key TEXT PRIMARY KEY, value_json TEXT, updated_at_ms INTEGER) STRICT");
  db.prepare("INSERT INTO config_machine_state VALUES (?, ?, ?)").run(
    "authProfiles.store",
    JSON.stringify({ version: 1, profiles }),
    Date.now(),
  );
  db.exec(`PRAGMA user_version = ${userVersion}`);
  db.close();
  return path;
}

async function agentStore(stateDir: string, agent: string, profiles: Record<string, unknown>): Promise<string> {
  const dir = join(stateDir, "agents", agent, "agent");
  await mkdir(dir, { recursive: true });
  const path = join(dir, "openclaw-agent.sqlite");
  const db = new DatabaseSync(path);
  db.exec("CREATE TABLE auth_profile_store(store_key TEXT PRIMARY KEY, store_json TEXT, updated_at INTEGER) STRICT");
  db.prepare("INSERT INTO auth_profile_store VALUES ('primary', ?, ?)").run(JSON.stringify({ version: 1, profiles }), Date.now());
  db.exec("PRAGMA user_version = 23");
  db.close();
  return path;
}

describe("openClawSqliteStores", () => {
  it("reads the shared store and every agent store of each state dir, read-only, provider-filtered", async () => {
    const a = join(root, "a");
    const b = join(root, "b");
    const shared = await sharedStore(a, {
      "openai:default": oauth("rt_shared"),
      "anthropic:x": { ...oauth("rt_other"), provider: "anthropic" },
    });
    const agent = await agentStore(a, "a1", { "openai:work": oauth("rt_agent") });
    await sharedStore(b, { "openai:default": oauth("rt_b") });
    const before = (await stat(shared)).mtimeMs;
    const warnings: string[] = [];
    const credentials = await openClawSqliteStores({ stateDirs: [a, b], providers: ["openai"] }).load((m) => warnings.push(m));
    expect(credentials.map((c) => [c.source, c.refreshToken, c.accountId])).toEqual([
      [`${shared}#openai:default`, "rt_shared", "acct-1"],
      [`${agent}#openai:work`, "rt_agent", "acct-1"],
      [`${join(b, "state", "openclaw.sqlite")}#openai:default`, "rt_b", "acct-1"],
    ]);
    expect(credentials[0]!.accessToken).toBe("at_rt_shared");
    expect(warnings).toEqual([]);
    expect((await stat(shared)).mtimeMs).toBe(before);
  });

  it("never offers a fence as a credential, but a fence made from a token names that token's account", async () => {
    const a = join(root, "a");
    const digest = fenceDigest("openai:default", "openai", "rt_spent");
    const fence = `${FENCE_PREFIX}v1:${"c".repeat(32)}:refresh:${digest}`;
    await sharedStore(a, {
      "openai:default": { ...oauth(fence, `${FENCE_PREFIX}v1:${"c".repeat(32)}:access:${"d".repeat(64)}`), expires: 1 },
      "openai:failed": { ...oauth(`${FENCE_PREFIX}v1:${"e".repeat(32)}:failed:refresh:${"f".repeat(64)}`), expires: 1 },
    });
    const credentials = await openClawSqliteStores({ stateDirs: [a], providers: ["openai"] }).load(() => undefined);
    expect(credentials).toHaveLength(2);
    for (const credential of credentials) {
      expect(credential.fencedFrom).toBeTypeOf("function");
      expect(credential.accessToken).toBeUndefined();
    }
    expect(credentials[0]!.fencedFrom!("rt_spent")).toBe(true);
    expect(credentials[0]!.fencedFrom!("rt_other")).toBe(false);
    expect(credentials[1]!.fencedFrom!("rt_spent")).toBe(false);
  });

  it("warns about an agents/ folder it cannot list, like the JSON reader, and still reads the shared store", async () => {
    const a = join(root, "a");
    await sharedStore(a, { "openai:default": oauth("rt_shared") });
    await writeFile(join(a, "agents"), "not a directory");
    const warnings: string[] = [];
    const credentials = await openClawSqliteStores({ stateDirs: [a], providers: ["openai"] }).load((m) => warnings.push(m));
    expect(credentials.map((credential) => credential.refreshToken)).toEqual(["rt_shared"]);
    expect(warnings).toEqual([`skipped ${join(a, "agents")}: ENOTDIR`]);
  });

  it("refuses a schema newer than 23 and skips a file that is not SQLite, naming the file and never its content", async () => {
    const a = join(root, "a");
    const b = join(root, "b");
    const newer = await sharedStore(a, { "openai:default": oauth("rt_secret_newer") }, 24);
    await mkdir(join(b, "state"), { recursive: true });
    const garbage = join(b, "state", "openclaw.sqlite");
    await writeFile(garbage, "rt_secret_garbage is not a database at all, just text ".repeat(100));
    const warnings: string[] = [];
    const credentials = await openClawSqliteStores({ stateDirs: [a, b], providers: ["openai"] }).load((m) => warnings.push(m));
    expect(credentials).toEqual([]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain(`skipped ${newer}: schema version 24 is newer than 23`);
    expect(warnings[1]).toContain(`skipped ${garbage}:`);
    expect(warnings.join("\n")).not.toContain("rt_secret");
  });

  it("reads a store whose writer holds an exclusive lock from a private copy, without waiting for the lock", async () => {
    const a = join(root, "a");
    const path = await sharedStore(a, { "openai:default": oauth("rt_locked") });
    const writer = new DatabaseSync(path);
    writer.exec("PRAGMA locking_mode = EXCLUSIVE");
    writer.exec("BEGIN EXCLUSIVE");
    writer.prepare("UPDATE config_machine_state SET updated_at_ms = 1").run();
    try {
      const warnings: string[] = [];
      const credentials = await openClawSqliteStores({ stateDirs: [a], providers: ["openai"] }).load((m) => warnings.push(m));
      expect(credentials.map((credential) => credential.refreshToken)).toEqual(["rt_locked"]);
      expect(warnings).toEqual([]);
    } finally {
      writer.exec("ROLLBACK");
      writer.close();
    }
  });

  it("finds nothing and warns nothing where a state dir has no stores", async () => {
    const warnings: string[] = [];
    expect(await openClawSqliteStores({ stateDirs: [join(root, "none")], providers: ["openai"] }).load((m) => warnings.push(m))).toEqual(
      [],
    );
    expect(warnings).toEqual([]);
  });
});

describe("resolveSiblingStateDirs", () => {
  it("auto finds ~/.openclaw and ~/.openclaw-<profile> directories except the host's own; a list is taken as is", async () => {
    const home = join(root, "home");
    for (const name of [".openclaw", ".openclaw-work", ".openclaw-dev", ".openclawx", "openclaw"])
      await mkdir(join(home, name), { recursive: true });
    await writeFile(join(home, ".openclaw-file"), "");
    expect(await resolveSiblingStateDirs("auto", home, join(home, ".openclaw-dev"))).toEqual([
      join(home, ".openclaw"),
      join(home, ".openclaw-work"),
    ]);
    expect(await resolveSiblingStateDirs(["/x/state", "/own"], home, "/own")).toEqual(["/x/state"]);
    expect(await resolveSiblingStateDirs([], home, "/own")).toEqual([]);
  });
});

describe("Codex CLI write-back", () => {
  const successor = {
    accessToken: "at_next",
    refreshToken: "rt_next",
    idToken: "id_next",
    expiresAt: Date.now() + 3_600_000,
    accountId: "acct-1",
    extra: {},
  };

  async function codexFile(refresh: string): Promise<string> {
    const dir = join(root, ".codex");
    await mkdir(dir, { recursive: true });
    const file = join(dir, "auth.json");
    const content = {
      OPENAI_API_KEY: null,
      tokens: { id_token: "id_old", access_token: "at_old", refresh_token: refresh, account_id: "acct-1" },
      last_refresh: "2026-01-01T00:00:00Z",
      extra_field: 7,
    };
    await writeFile(file, JSON.stringify(content));
    await chmod(file, 0o644);
    return file;
  }

  it("the source of auth.json writes the successor back: same shape, same mode, last_refresh now", async () => {
    const file = await codexFile("rt_old");
    const source = codexCliAuth(file, openAiIdentity);
    expect((await source.load(() => undefined))[0]?.refreshToken).toBe("rt_old");
    expect(await source.handBack!("rt_old", successor)).toEqual({ kind: "written" });
    const written = JSON.parse(await readFile(file, "utf8"));
    expect(written).toEqual({
      OPENAI_API_KEY: null,
      tokens: { id_token: "id_next", access_token: "at_next", refresh_token: "rt_next", account_id: "acct-1" },
      last_refresh: written.last_refresh,
      extra_field: 7,
    });
    expect(Date.now() - Date.parse(written.last_refresh)).toBeLessThan(60_000);
    // The owner's mode is kept.
    expect((await stat(file)).mode & 0o777).toBe(0o644);
  });

  it("leaves the file alone when the Codex CLI has rotated it meanwhile", async () => {
    const file = await codexFile("rt_codex_newer");
    const before = await readFile(file, "utf8");
    expect(await writeCodexSuccessor(file, "rt_old", successor, openAiIdentity)).toEqual({ kind: "not-held" });
    expect(await readFile(file, "utf8")).toBe(before);
  });
});
