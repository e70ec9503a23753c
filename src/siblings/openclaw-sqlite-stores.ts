// Sibling source for OpenClaw 2026.6+ state dirs, which keep credentials in SQLite:
// - shared store: <stateDir>/state/openclaw.sqlite, table config_machine_state,
//   row state_key='authProfiles.store', value_json = { version: 1, profiles: { id: { type: "oauth", … } } }
// - per agent:    <stateDir>/agents/<id>/agent/openclaw-agent.sqlite, table auth_profile_store,
//   row store_key='primary', store_json of the same shape.
// Read-only connections through node:sqlite (imported lazily: Node 24 has it, Node 22.5 – 22.12
// only behind --experimental-sqlite). Never written: writes belong to the host.
// Skipped with a warning that names the file, never its content: a database that cannot be opened
// or read (locked, corrupt, not SQLite), a schema version newer than the host's known maximum.
// Values that are the host's terminal refresh fences are not credentials and are skipped silently.
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { isRecord } from "../oauth/json.ts";
import { isAbsent } from "../store/safe-read.ts";
import type { SiblingCredential, SiblingSource } from "./sibling-source.ts";

/** The newest schema 2026.9.6 knows (it refuses anything above, and so do we). */
const MAX_SCHEMA_VERSION = 23;
export const FENCE_PREFIX = "openclaw-oauth-refresh-fence:";
/** A reader waits at most this long for a writer's lock before skipping the file. */
const BUSY_TIMEOUT_MS = 250;

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
      const files: { path: string; query: string }[] = [];
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
        const stat = await fsp.stat(file.path).catch(() => null);
        if (stat === null) continue;
        if (!stat.isFile()) {
          warn(`skipped ${file.path}: not a regular file`);
          continue;
        }
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
      for (const file of present) credentials.push(...readStore(module, file.path, file.query, options.providers, warn));
      return credentials;
    },
  };
}

const SHARED_QUERY = "SELECT value_json AS json FROM config_machine_state WHERE state_key = 'authProfiles.store'";
const AGENT_QUERY = "SELECT store_json AS json FROM auth_profile_store WHERE store_key = 'primary'";

function readStore(
  module: SqliteModule,
  path: string,
  query: string,
  providers: readonly string[],
  warn: (message: string) => void,
): SiblingCredential[] {
  let db: InstanceType<SqliteModule["DatabaseSync"]>;
  try {
    db = new module.DatabaseSync(path, { readOnly: true, timeout: BUSY_TIMEOUT_MS });
  } catch (error) {
    warn(`skipped ${path}: cannot open read-only (${sqliteProblem(error)})`);
    return [];
  }
  try {
    const version = (db.prepare("PRAGMA user_version").get() as { user_version?: unknown } | undefined)?.user_version;
    if (typeof version !== "number" || version > MAX_SCHEMA_VERSION) {
      warn(`skipped ${path}: schema version ${String(version)} is newer than ${MAX_SCHEMA_VERSION}, which this refresh-guard knows`);
      return [];
    }
    let row: unknown;
    try {
      row = db.prepare(query).get();
    } catch (error) {
      const problem = sqliteProblem(error);
      // A store the host has not created its auth table in yet holds nothing to recover.
      if (/no such table/i.test(problem)) return [];
      warn(`skipped ${path}: cannot read (${problem})`);
      return [];
    }
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
      // Closing a read-only handle cannot lose anything.
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
