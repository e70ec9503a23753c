// Nothing synchronous and unbounded on the host's main thread (issue 18, case 3): reading
// OpenClaw's SQLite stores never blocks on a FIFO (database, -journal, -wal, -shm), never runs a
// VIEW's endless query, never waits for locks, and never reads a huge value. Each load runs in a
// child process on the built module, so a hang shows as a timeout here instead of freezing the
// test runner; real FIFOs, real SQLite files, real lock holders.
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";

const { DatabaseSync } = createRequire(import.meta.url)("node:sqlite") as typeof import("node:sqlite");

const MODULE = resolve(import.meta.dirname, "../../dist/siblings/openclaw-sqlite-stores.js");
const HUNG_MS = 10_000;

let root: string;

beforeAll(() => {
  // The child loads the built module: `npm test` and `npm run test:unit` build first.
  if (!existsSync(MODULE)) throw new Error(`${MODULE} is missing: run npm run build first`);
});

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "rg-sqlite-hard-"));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function oauth(refresh: string) {
  return { type: "oauth", provider: "openai", access: `at_${refresh}`, refresh, expires: Date.now() + 3_600_000, accountId: "acct-1" };
}

async function sharedStore(stateDir: string, value: string, table = true): Promise<string> {
  await mkdir(join(stateDir, "state"), { recursive: true });
  const path = join(stateDir, "state", "openclaw.sqlite");
  const db = new DatabaseSync(path);
  if (table) {
    db.exec("CREATE TABLE config_machine_state(state_key TEXT PRIMARY KEY, value_json TEXT, updated_at_ms INTEGER) STRICT");
    db.prepare("INSERT INTO config_machine_state VALUES (?, ?, ?)").run("authProfiles.store", value, Date.now());
  } else {
    // A VIEW in the table's place whose query never ends.
    db.exec(
      "CREATE VIEW config_machine_state AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) " +
        "SELECT 'authProfiles.store' AS state_key, '{}' AS value_json FROM r WHERE x < 0",
    );
  }
  db.exec("PRAGMA user_version = 18");
  db.close();
  return path;
}

async function agentStore(stateDir: string, agent: string, refresh: string): Promise<string> {
  const dir = join(stateDir, "agents", agent, "agent");
  await mkdir(dir, { recursive: true });
  const path = join(dir, "openclaw-agent.sqlite");
  const db = new DatabaseSync(path);
  db.exec("CREATE TABLE auth_profile_store(store_key TEXT PRIMARY KEY, store_json TEXT, updated_at INTEGER) STRICT");
  db.prepare("INSERT INTO auth_profile_store VALUES ('primary', ?, ?)").run(
    JSON.stringify({ version: 1, profiles: { "openai:default": oauth(refresh) } }),
    Date.now(),
  );
  db.exec("PRAGMA user_version = 23");
  db.close();
  return path;
}

interface Loaded {
  ms: number;
  refresh: string[];
  warnings: string[];
}

/** Loads the stores of `stateDirs` in a child process; "hung" when it has not finished within HUNG_MS. */
function loadInChild(stateDirs: string[]): Promise<Loaded | "hung"> {
  const script = `
    import { openClawSqliteStores } from ${JSON.stringify(MODULE)};
    const started = performance.now();
    const warnings = [];
    const credentials = await openClawSqliteStores({ stateDirs: JSON.parse(process.env.RG_DIRS), providers: ["openai"] }).load((m) => warnings.push(m));
    process.stdout.write(JSON.stringify({ ms: performance.now() - started, refresh: credentials.map((c) => c.refreshToken), warnings }));
    process.exit(0);
  `;
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, ["--no-warnings", "--input-type=module", "-e", script], {
      env: { ...process.env, RG_DIRS: JSON.stringify(stateDirs) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolvePromise("hung");
    }, HUNG_MS);
    child.on("exit", () => {
      clearTimeout(timer);
      if (out !== "") resolvePromise(JSON.parse(out) as Loaded);
      else resolvePromise("hung");
    });
  });
}

describe("reading OpenClaw's SQLite stores never blocks or runs without bound", () => {
  it("a FIFO at the database's -journal, -wal or -shm is refused at once, naming the file", async () => {
    const dirs: string[] = [];
    for (const suffix of ["-journal", "-wal", "-shm"]) {
      const stateDir = join(root, `fifo${suffix}`);
      const path = await sharedStore(stateDir, JSON.stringify({ version: 1, profiles: { "openai:default": oauth(`rt${suffix}`) } }));
      execFileSync("mkfifo", [`${path}${suffix}`]);
      dirs.push(stateDir);
    }
    const results = await Promise.all(dirs.map((dir) => loadInChild([dir])));
    for (const [index, suffix] of ["-journal", "-wal", "-shm"].entries()) {
      const result = results[index]!;
      expect(result, suffix).not.toBe("hung");
      const loaded = result as Loaded;
      expect(loaded.refresh).toEqual([]);
      expect(loaded.warnings).toEqual([expect.stringContaining(`openclaw.sqlite${suffix} is not a regular file`)]);
    }
  }, 60_000);

  it("a FIFO in the database's own place is refused", async () => {
    const stateDir = join(root, "fifo-db");
    await mkdir(join(stateDir, "state"), { recursive: true });
    execFileSync("mkfifo", [join(stateDir, "state", "openclaw.sqlite")]);
    const result = await loadInChild([stateDir]);
    expect(result).not.toBe("hung");
    expect((result as Loaded).warnings).toEqual([expect.stringContaining("not a regular file")]);
  }, 30_000);

  it("a VIEW with an endless recursive query in the auth table's place is not queried", async () => {
    const stateDir = join(root, "view");
    await sharedStore(stateDir, "", false);
    const result = await loadInChild([stateDir]);
    expect(result).not.toBe("hung");
    expect((result as Loaded).warnings).toEqual([expect.stringContaining("config_machine_state is a view, not a plain table")]);
  }, 30_000);

  it("twenty locked databases are read from copies without waiting for any lock", async () => {
    const stateDir = join(root, "locked");
    const paths: string[] = [];
    for (let agent = 0; agent < 20; agent += 1) paths.push(await agentStore(stateDir, `agent-${agent}`, `rt_agent_${agent}`));
    // A real process holding an exclusive write lock on every one of them.
    const holder = spawn(
      process.execPath,
      [
        "--no-warnings",
        "-e",
        `const { DatabaseSync } = require("node:sqlite");
         const held = JSON.parse(process.env.RG_PATHS).map((path) => {
           const db = new DatabaseSync(path);
           db.exec("PRAGMA locking_mode = EXCLUSIVE");
           db.exec("BEGIN EXCLUSIVE");
           db.prepare("UPDATE auth_profile_store SET updated_at = 1").run();
           return db;
         });
         process.stdout.write("locked");
         setInterval(() => held.length, 1000);`,
      ],
      { env: { ...process.env, RG_PATHS: JSON.stringify(paths) }, stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      await new Promise<void>((resolvePromise) => holder.stdout.once("data", () => resolvePromise()));
      const result = await loadInChild([stateDir]);
      expect(result).not.toBe("hung");
      const loaded = result as Loaded;
      expect(loaded.warnings).toEqual([]);
      expect(loaded.refresh.sort()).toEqual(paths.map((_, agent) => `rt_agent_${agent}`).sort());
      // Twenty busy waits of 250 ms would be 5 s.
      expect(loaded.ms).toBeLessThan(2500);
    } finally {
      holder.kill("SIGKILL");
    }
  }, 60_000);

  it("an auth store value over 1 MiB is not read", async () => {
    const stateDir = join(root, "huge");
    const value = JSON.stringify({ version: 1, profiles: { "openai:default": oauth("rt_huge") }, pad: "x".repeat(3 * 1024 * 1024) });
    await sharedStore(stateDir, value);
    const result = await loadInChild([stateDir]);
    expect(result).not.toBe("hung");
    expect((result as Loaded).refresh).toEqual([]);
    expect((result as Loaded).warnings).toEqual([expect.stringContaining("larger than 1048576 bytes")]);
  }, 30_000);
});
