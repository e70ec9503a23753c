// Sibling source for OpenClaw 2026.6+ state dirs, which keep credentials in SQLite:
// - shared store: <stateDir>/state/openclaw.sqlite, table config_machine_state,
//   row state_key='authProfiles.store', value_json = { version: 1, profiles: { id: { type: "oauth", … } } }
// - per agent:    <stateDir>/agents/<id>/agent/openclaw-agent.sqlite, table auth_profile_store,
//   row store_key='primary', store_json of the same shape.
// node:sqlite is synchronous and would run on the host's main thread, so it never touches the
// host's files: the database and its -journal/-wal are read without blocking (O_NONBLOCK, fstat:
// regular files only, -shm too; owned by this user, nobody else may write them; bounded size)
// into a private copy, and node:sqlite opens that copy (imported lazily: Node 24 has it, Node
// 22.5 – 22.12 only behind --experimental-sqlite). No lock of the host's is ever waited for, a
// FIFO never blocks, the auth table must be a real table (a VIEW could compute forever) and its
// value at most 1 MiB. The host's files are never written.
// Skipped with a warning that names the file, never its content: a database that cannot be read
// or opened (special file, too large, corrupt, not SQLite), a schema version newer than the host's
// known maximum, a store whose table is not a table or whose value is too large.
// Values that are the host's terminal refresh fences are not credentials and are skipped silently.
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { isRecord } from "../oauth/json.ts";
import { isAbsent, SAFE_READ_FOLLOW_FLAGS, untrustedBecause } from "../store/safe-read.ts";
import type { SiblingCredential, SiblingSource } from "./sibling-source.ts";

/** The newest schema 2026.9.6 knows (it refuses anything above, and so do we). */
const MAX_SCHEMA_VERSION = 23;
export const FENCE_PREFIX = "openclaw-oauth-refresh-fence:";
/** The largest database (with its -wal and -journal) copied for reading. */
const MAX_SQLITE_BYTES = 256 * 1024 * 1024;
/** The largest auth store value read (as the file journal caps its reads). */
const MAX_STORE_VALUE_BYTES = 1024 * 1024;

interface SqliteModule {
  DatabaseSync: new (
    path: string,
    options?: { readOnly?: boolean; timeout?: number },
  ) => {
    prepare(sql: string): { get(...params: unknown[]): unknown; all(...params: unknown[]): unknown[] };
    close(): void;
  };
}

let sqlite: Promise<SqliteModule | null> | undefined;
let missingWarned = false;

/** node:sqlite, or null where this Node has none (then one warning per process says so). */
function loadSqlite(): Promise<SqliteModule | null> {
  sqlite ??= import("node:sqlite" as string).then(
    (module) => module as SqliteModule,
    () => null,
  );
  return sqlite;
}

export interface SqliteStoreOptions {
  /** State dirs whose SQLite stores are read (this host's first, then siblingStateDirs). */
  stateDirs: readonly string[];
  /** Provider ids whose OAuth profiles count as siblings. */
  providers: readonly string[];
}

export function openClawSqliteStores(options: SqliteStoreOptions): SiblingSource {
  return {
    name: "openclaw-sqlite-stores",
    async load(warn) {
      const files: { path: string; query: StoreQuery }[] = [];
      for (const stateDir of options.stateDirs) {
        files.push({ path: join(stateDir, "state", "openclaw.sqlite"), query: SHARED_QUERY });
        const agentsDir = join(stateDir, "agents");
        let agents: string[] = [];
        try {
          agents = await fsp.readdir(agentsDir);
        } catch (error) {
          // No agents/ folder is normal; one that cannot be read is said, as the JSON reader does.
          if (!isAbsent(error)) warn(`skipped ${agentsDir}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`);
        }
        for (const agent of agents) files.push({ path: join(agentsDir, agent, "agent", "openclaw-agent.sqlite"), query: AGENT_QUERY });
      }
      const present: typeof files = [];
      for (const file of files) {
        const stat = await fsp.lstat(file.path).catch(() => null);
        if (stat === null) continue;
        present.push(file);
      }
      if (present.length === 0) return [];
      const module = await loadSqlite();
      if (module === null) {
        if (!missingWarned) {
          missingWarned = true;
          warn(
            `skipped ${present.length} OpenClaw SQLite store(s) (first: ${present[0]?.path}): this Node (${process.version}) has no node:sqlite; ` +
              "use Node 24 (as OpenClaw 2026.6+ requires) or start Node 22.5+ with --experimental-sqlite",
          );
        }
        return [];
      }
      const credentials: SiblingCredential[] = [];
      for (const file of present) credentials.push(...(await readStore(module, file.path, file.query, options.providers, warn)));
      return credentials;
    },
  };
}

interface StoreQuery {
  table: string;
  column: string;
  where: string;
}

const SHARED_QUERY: StoreQuery = { table: "config_machine_state", column: "value_json", where: "state_key = 'authProfiles.store'" };
const AGENT_QUERY: StoreQuery = { table: "auth_profile_store", column: "store_json", where: "store_key = 'primary'" };

class StoreProblem extends Error {}

/** `path` read without blocking, if it is there: null when absent; StoreProblem when it is not a regular, trusted, bounded file. */
async function readSide(path: string, budget: number, trusted: boolean): Promise<Buffer | null> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(path, SAFE_READ_FOLLOW_FLAGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    throw new StoreProblem(`${basename(path)} cannot be opened (${code ?? "error"})`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new StoreProblem(`${basename(path)} is not a regular file`);
    const untrusted = trusted ? untrustedBecause(stat) : null;
    if (untrusted !== null) throw new StoreProblem(`${basename(path)} is ${untrusted}`);
    if (stat.size > budget) throw new StoreProblem(`larger than ${MAX_SQLITE_BYTES} bytes with its journal`);
    const buffer = Buffer.alloc(Math.min(stat.size, budget) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) throw new StoreProblem(`larger than ${MAX_SQLITE_BYTES} bytes with its journal`);
    }
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

async function readStore(
  module: SqliteModule,
  path: string,
  query: StoreQuery,
  providers: readonly string[],
  warn: (message: string) => void,
): Promise<SiblingCredential[]> {
  let copyDir: string | undefined;
  try {
    // The host's files, read into a private copy: the database, then its -wal and -journal (a hot
    // journal rolls the copy back as it would the original); -shm only checked (rebuilt from the WAL).
    const main = await readSide(path, MAX_SQLITE_BYTES, true);
    if (main === null) return [];
    let budget = MAX_SQLITE_BYTES - main.length;
    const sides: [string, Buffer][] = [];
    for (const suffix of ["-wal", "-journal"]) {
      const side = await readSide(`${path}${suffix}`, budget, true);
      if (side === null) continue;
      budget -= side.length;
      sides.push([suffix, side]);
    }
    await readSide(`${path}-shm`, MAX_SQLITE_BYTES, false);
    copyDir = await fsp.mkdtemp(join(tmpdir(), "refresh-guard-sqlite-"));
    const copy = join(copyDir, basename(path));
    await fsp.writeFile(copy, main, { mode: 0o600 });
    for (const [suffix, side] of sides) await fsp.writeFile(`${copy}${suffix}`, side, { mode: 0o600 });
    return readCopy(module, copy, path, query, providers, warn);
  } catch (error) {
    if (!(error instanceof StoreProblem)) throw error;
    warn(`skipped ${path}: ${error.message}`);
    return [];
  } finally {
    if (copyDir !== undefined) await fsp.rm(copyDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Reads the private copy `copy` of `path` (every message names `path`). */
function readCopy(
  module: SqliteModule,
  copy: string,
  path: string,
  query: StoreQuery,
  providers: readonly string[],
  warn: (message: string) => void,
): SiblingCredential[] {
  let db: InstanceType<SqliteModule["DatabaseSync"]>;
  try {
    db = new module.DatabaseSync(copy, { timeout: 0 });
  } catch (error) {
    warn(`skipped ${path}: cannot open (${sqliteProblem(error)})`);
    return [];
  }
  try {
    const version = (db.prepare("PRAGMA user_version").get() as { user_version?: unknown } | undefined)?.user_version;
    if (typeof version !== "number" || version > MAX_SCHEMA_VERSION) {
      warn(`skipped ${path}: schema version ${String(version)} is newer than ${MAX_SCHEMA_VERSION}, which this refresh-guard knows`);
      return [];
    }
    // Only a real table is read: a VIEW (or a virtual table) could compute without end.
    const kind = db.prepare("SELECT type, sql FROM sqlite_master WHERE name = ?").get(query.table) as
      | { type?: unknown; sql?: unknown }
      | undefined;
    // A store the host has not created its auth table in yet holds nothing to recover.
    if (kind === undefined) return [];
    if (kind.type !== "table" || (typeof kind.sql === "string" && /^\s*create\s+virtual\b/i.test(kind.sql))) {
      warn(`skipped ${path}: ${query.table} is a ${String(kind.type)}, not a plain table`);
      return [];
    }
    const size = db.prepare(`SELECT length(CAST(${query.column} AS BLOB)) AS n FROM ${query.table} WHERE ${query.where}`).get() as
      | { n?: unknown }
      | undefined;
    if (size === undefined) return [];
    if (typeof size.n === "number" && size.n > MAX_STORE_VALUE_BYTES) {
      warn(`skipped ${path}: auth profile store is larger than ${MAX_STORE_VALUE_BYTES} bytes`);
      return [];
    }
    const row = db.prepare(`SELECT ${query.column} AS json FROM ${query.table} WHERE ${query.where}`).get();
    const text = isRecord(row) && typeof row.json === "string" ? row.json : null;
    if (text === null) return [];
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      warn(`skipped ${path}: auth profile store is not valid JSON`);
      return [];
    }
    return credentialsIn(json, path, providers, warn);
  } catch (error) {
    warn(`skipped ${path}: cannot read (${sqliteProblem(error)})`);
    return [];
  } finally {
    try {
      db.close();
    } catch {
      // Closing a private copy cannot lose anything.
    }
  }
}

function credentialsIn(json: unknown, path: string, providers: readonly string[], warn: (message: string) => void): SiblingCredential[] {
  const profiles = isRecord(json) && isRecord(json.profiles) ? json.profiles : null;
  if (profiles === null) {
    warn(`skipped ${path}: auth profile store has no "profiles" object`);
    return [];
  }
  const credentials: SiblingCredential[] = [];
  for (const [id, profile] of Object.entries(profiles)) {
    if (!isRecord(profile) || profile.type !== "oauth") continue;
    if (typeof profile.provider !== "string" || !providers.includes(profile.provider)) continue;
    if (typeof profile.refresh !== "string" || profile.refresh === "") continue;
    if (profile.refresh.startsWith(FENCE_PREFIX)) {
      // Not a credential. A fence the host wrote while refreshing this profile identifies the
      // token it was made from (and so that token's account), without holding it.
      const fence = FENCE_PATTERN.exec(profile.refresh);
      if (fence !== null && typeof profile.accountId === "string") {
        const provider = profile.provider;
        const digest = fence[2];
        const fenced: SiblingCredential = {
          source: `${path}#${id} (fenced)`,
          refreshToken: profile.refresh,
          accountId: profile.accountId,
          fencedFrom: (token) => fenceDigest(id, provider, token) === digest,
        };
        // The fence keeps the profile's email: with the account it says whose token was fenced.
        if (typeof profile.email === "string" && profile.email !== "") fenced.email = profile.email;
        credentials.push(fenced);
      }
      continue;
    }
    const credential: SiblingCredential = { source: `${path}#${id}`, refreshToken: profile.refresh };
    if (typeof profile.access === "string" && !profile.access.startsWith(FENCE_PREFIX)) {
      credential.accessToken = profile.access;
      if (typeof profile.expires === "number") credential.expiresAt = profile.expires;
    }
    if (typeof profile.accountId === "string") credential.accountId = profile.accountId;
    if (typeof profile.email === "string" && profile.email !== "") credential.email = profile.email;
    credentials.push(credential);
  }
  return credentials;
}

/** `openclaw-oauth-refresh-fence:v1:<claimId>:[failed:]refresh:<sha256>` (2026.6 – 2026.9.6). */
const FENCE_PATTERN = /^openclaw-oauth-refresh-fence:v1:[a-f0-9]{32}:(failed:)?refresh:([a-f0-9]{64})$/;

/** The digest 2026.9.6 puts in a fence in place of the refresh token it fenced. */
export function fenceDigest(profileId: string, provider: string, refreshToken: string): string {
  return createHash("sha256")
    .update(JSON.stringify(["openclaw.oauth-refresh-generation", 1, profileId, provider, "refresh", refreshToken]))
    .digest("hex");
}

/** The SQLite error's code and message (they carry no row content). */
function sqliteProblem(error: unknown): string {
  const { code, errstr, message } = error as { code?: string; errstr?: string; message?: string };
  return [code, errstr ?? message].filter(Boolean).join(": ") || "unknown error";
}
