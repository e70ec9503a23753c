// The redemption journal: one immutable, sealed entry per spent refresh token, named by its key,
// holding what that token was exchanged for. Written durably (temp file, fsync, hard link: the
// first writer wins and nothing is ever overwritten), read without a lock, pruned after retention.
// Unreadable entries are moved to quarantine/, never deleted; a tombstone marks a token the
// endpoint reported spent with no successor anywhere, so callers stop retrying it.
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import { join } from "node:path";

import { JournalCorruptError } from "../core/errors.ts";
import { CREATE_FLAGS, DIR_MODE, FILE_MODE, READ_FLAGS, lstatOrNull } from "./guard-dir.ts";
import { type Sealed, open, seal } from "./token-crypto.ts";
import { REUSED, type TokenSet, isRecord, reusedBody } from "../oauth/token-wire.ts";

export const JOURNAL_VERSION = 1;
const MAX_ENTRY_BYTES = 64 * 1024;
const KEY_PATTERN = /^[0-9a-f]{64}$/;
const TMP_MAX_AGE_MS = 10 * 60 * 1000;

export interface JournalOptions {
  dir: string;
  quarantineDir: string;
  retentionMs: number;
  now?: () => number;
  /** Called once per entry moved to quarantine. */
  onQuarantine?: (error: JournalCorruptError) => void;
  /** Test seam: runs between the two halves of an entry's write (a crash there leaves a temp file). */
  midWrite?: () => Promise<void> | void;
}

export interface Tombstone {
  code: string;
  at: number;
  /** The endpoint's error body (it holds no token), replayed to later callers. */
  body: string;
}

export class Journal {
  readonly dir: string;
  private readonly options: JournalOptions;
  private readonly now: () => number;

  constructor(options: JournalOptions) {
    this.dir = options.dir;
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  entryName(key: string): string {
    return `${checkKey(key)}.json`;
  }

  private entryPath(key: string): string {
    return join(this.dir, this.entryName(key));
  }

  private tombstonePath(key: string): string {
    return join(this.dir, `${checkKey(key)}.spent`);
  }

  async has(key: string): Promise<boolean> {
    return (await lstatOrNull(this.entryPath(key))) !== null;
  }

  /** The successor of `spentToken`, or null when there is none (or it was unreadable: quarantined). */
  async read(key: string, spentToken: string): Promise<TokenSet | null> {
    const path = this.entryPath(key);
    let text: string;
    try {
      text = await readPrivate(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      if ((error as NodeJS.ErrnoException).code === "EFBIG") return this.quarantine(path, "larger than 64 KiB");
      if ((error as NodeJS.ErrnoException).code === "ELOOP") return this.quarantine(path, "a symbolic link");
      throw error;
    }
    let envelope: unknown;
    try {
      envelope = JSON.parse(text);
    } catch {
      return this.quarantine(path, "not JSON (truncated?)");
    }
    if (!isRecord(envelope)) return this.quarantine(path, "not an object");
    if (envelope.v !== JOURNAL_VERSION) return this.quarantine(path, `unknown version ${String(envelope.v)}`);
    if (envelope.key !== key) return this.quarantine(path, "written for another key");
    let plain: unknown;
    try {
      plain = JSON.parse(open(spentToken, aad(key), envelope as unknown as Sealed));
    } catch {
      return this.quarantine(path, "does not decrypt with this token (altered or wrong key)");
    }
    const set = toTokenSet(plain);
    if (set === null) return this.quarantine(path, "incomplete token set");
    return set;
  }

  /**
   * Records that `spentToken` was exchanged for `set`. If an entry exists already, the first
   * writer wins: its set is returned and ours is dropped.
   */
  async write(key: string, spentToken: string, set: TokenSet): Promise<TokenSet> {
    const path = this.entryPath(key);
    const envelope = {
      v: JOURNAL_VERSION,
      key,
      createdAt: this.now(),
      ...seal(spentToken, aad(key), JSON.stringify(fromTokenSet(set))),
    };
    const won = await this.writeOnce(path, JSON.stringify(envelope));
    if (won) return set;
    const winner = await this.read(key, spentToken);
    // An existing but unreadable entry was just quarantined: try once more to be first.
    if (winner === null && (await this.writeOnce(path, JSON.stringify(envelope)))) return set;
    return winner ?? set;
  }

  async tombstone(key: string, code: string, body: string): Promise<void> {
    const record = { v: JOURNAL_VERSION, code, at: this.now(), body: body.slice(0, 4096) };
    await this.writeOnce(this.tombstonePath(key), JSON.stringify(record));
  }

  async readTombstone(key: string): Promise<Tombstone | null> {
    try {
      const parsed: unknown = JSON.parse(await readPrivate(this.tombstonePath(key)));
      if (isRecord(parsed) && typeof parsed.code === "string" && typeof parsed.at === "number") {
        const body = typeof parsed.body === "string" ? parsed.body : reusedBody();
        return { code: parsed.code, at: parsed.at, body };
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    }
    // An unreadable tombstone still means "spent": a reader must not redeem again.
    return { code: REUSED, at: 0, body: reusedBody() };
  }

  /** Writes `content` at `path` unless something is there; true if this call created it. */
  private async writeOnce(path: string, content: string): Promise<boolean> {
    const tmp = join(this.dir, `.${randomBytes(8).toString("hex")}.tmp`);
    const handle = await fsp.open(tmp, CREATE_FLAGS, FILE_MODE);
    try {
      const half = Math.floor(content.length / 2);
      await handle.write(content.slice(0, half));
      await this.options.midWrite?.();
      await handle.write(content.slice(half));
      await handle.chmod(FILE_MODE);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await fsp.link(tmp, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw error;
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    await syncDir(this.dir);
    return true;
  }

  private async quarantine(path: string, reason: string): Promise<null> {
    const name = path.slice(this.dir.length + 1);
    const target = join(this.options.quarantineDir, `${name}.${this.now()}.${randomBytes(3).toString("hex")}`);
    await fsp.mkdir(this.options.quarantineDir, { recursive: true, mode: DIR_MODE });
    try {
      await fsp.rename(path, target);
    } catch (error) {
      // Another reader moved it first and reported it.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
    this.options.onQuarantine?.(new JournalCorruptError(path, `${reason}; kept as ${target}`));
    return null;
  }

  /** Removes entries, tombstones and quarantined files older than retention; stray temp files. */
  async prune(): Promise<number> {
    const now = this.now();
    let removed = 0;
    for await (const file of this.files()) {
      const maxAge = file.name.endsWith(".tmp") ? TMP_MAX_AGE_MS : this.options.retentionMs;
      if (now - file.stat.mtimeMs > maxAge) {
        await fsp.rm(file.path, { force: true });
        removed += 1;
      }
    }
    return removed;
  }

  async size(): Promise<{ entries: number; tombstones: number; quarantined: number; bytes: number }> {
    const result = { entries: 0, tombstones: 0, quarantined: 0, bytes: 0 };
    for await (const file of this.files()) {
      result.bytes += file.stat.size;
      if (file.quarantined) result.quarantined += 1;
      else if (file.name.endsWith(".json")) result.entries += 1;
      else if (file.name.endsWith(".spent")) result.tombstones += 1;
    }
    return result;
  }

  /** Every regular file of the journal and of the quarantine. */
  private async *files() {
    for (const [dir, quarantined] of [[this.dir, false], [this.options.quarantineDir, true]] as const) {
      let names: string[];
      try {
        names = await fsp.readdir(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const path = join(dir, name);
        const stat = await lstatOrNull(path);
        if (stat !== null && stat.isFile()) yield { name, path, stat, quarantined };
      }
    }
  }
}

function aad(key: string): string {
  return `refresh-guard/v${JOURNAL_VERSION}/${key}`;
}

function checkKey(key: string): string {
  if (!KEY_PATTERN.test(key)) throw new Error("refresh-guard: journal key must be 64 hex digits");
  return key;
}

async function readPrivate(path: string): Promise<string> {
  const handle = await fsp.open(path, READ_FLAGS);
  try {
    const stat = await handle.stat();
    if (stat.size > MAX_ENTRY_BYTES) throw Object.assign(new Error("entry too large"), { code: "EFBIG" });
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, "r");
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the link itself is already atomic.
  } finally {
    await handle.close();
  }
}

function fromTokenSet(set: TokenSet): Record<string, unknown> {
  return {
    access_token: set.accessToken,
    refresh_token: set.refreshToken,
    id_token: set.idToken,
    expires_at: set.expiresAt,
    account_id: set.accountId,
    extra: set.extra,
  };
}

function toTokenSet(plain: unknown): TokenSet | null {
  if (!isRecord(plain)) return null;
  const { access_token, refresh_token, id_token, expires_at, account_id, extra } = plain;
  if (typeof access_token !== "string" || typeof refresh_token !== "string" || typeof expires_at !== "number") {
    return null;
  }
  const set: TokenSet = {
    accessToken: access_token,
    refreshToken: refresh_token,
    expiresAt: expires_at,
    extra: isRecord(extra) ? extra : {},
  };
  if (typeof id_token === "string") set.idToken = id_token;
  if (typeof account_id === "string") set.accountId = account_id;
  return set;
}
