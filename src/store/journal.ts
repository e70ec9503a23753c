// The file journal: one immutable, sealed entry per spent refresh token, named by its key,
// holding what that token was exchanged for (sealed-entry.ts). Written durably (temp file, fsync,
// hard link: the first writer wins and nothing is ever overwritten), read without a lock, pruned
// after retention. Unreadable entries are moved to quarantine/, never deleted; a sealed spent
// marker records a token the endpoint reported spent with no successor anywhere, so callers stop
// retrying it.
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import { join } from "node:path";

import { JournalCorruptError } from "../errors/errors.ts";
import type { TokenSet } from "../oauth/token-wire.ts";
import { readElseSetAside, writeFirstWins } from "./first-writer.ts";
import { CREATE_FLAGS, DIR_MODE, FILE_MODE, lstatOrNull } from "./guard-dir.ts";
import { isAbsent, readRegularFile, SafeReadError } from "./safe-read.ts";
import { checkKey, ENTRY_VERSION, MAX_ENTRY_BYTES, openEntry, openSpent, type SpentMarker, sealEntry, sealSpent } from "./sealed-entry.ts";

export const JOURNAL_VERSION = ENTRY_VERSION;
/** Temp files older than this were left by a crashed writer. */
export const TMP_MAX_AGE_MS = 10 * 60 * 1000;

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

export type Tombstone = SpentMarker;

export interface JournalSize {
  entries: number;
  tombstones: number;
  quarantined: number;
  bytes: number;
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
    const text = await this.readFile(path);
    if (text === null) return null;
    return readElseSetAside(openEntry(key, spentToken, text), async (reason) => {
      await this.quarantine(path, reason);
    });
  }

  /**
   * Records that `spentToken` was exchanged for `set`. If an entry exists already, the first
   * writer wins: its set is returned and ours is dropped.
   */
  async write(key: string, spentToken: string, set: TokenSet): Promise<TokenSet> {
    const path = this.entryPath(key);
    const content = sealEntry(key, spentToken, set, this.now());
    return writeFirstWins(
      set,
      () => this.writeOnce(path, content),
      () => this.read(key, spentToken),
    );
  }

  /** Marks `spentToken` spent (sealed under it, so only its holder can). The first marker stays. */
  async tombstone(key: string, spentToken: string, code: string, body: string): Promise<void> {
    await this.writeOnce(this.tombstonePath(key), sealSpent(key, spentToken, { code, at: this.now(), body }));
  }

  /** The spent marker of `spentToken`; a marker it cannot open (forged, damaged) is quarantined and ignored. */
  async readTombstone(key: string, spentToken: string): Promise<Tombstone | null> {
    const path = this.tombstonePath(key);
    const text = await this.readFile(path);
    if (text === null) return null;
    return readElseSetAside(openSpent(key, spentToken, text), async (reason) => {
      await this.quarantine(path, reason);
    });
  }

  /** The file's text; null when absent or when it was not a readable regular file (then quarantined). */
  private async readFile(path: string): Promise<string | null> {
    try {
      return await readRegularFile(path, MAX_ENTRY_BYTES);
    } catch (error) {
      if (isAbsent(error)) return null;
      if (error instanceof SafeReadError && error.code !== "EACCES") {
        const reason =
          error.code === "EFBIG"
            ? `larger than ${MAX_ENTRY_BYTES} bytes`
            : error.code === "ELOOP"
              ? "a symbolic link"
              : "not a regular file";
        return this.quarantine(path, reason);
      }
      throw error;
    }
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
      if (isAbsent(error)) return null;
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

  async size(): Promise<JournalSize> {
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
    for (const [dir, quarantined] of [
      [this.dir, false],
      [this.options.quarantineDir, true],
    ] as const) {
      let names: string[];
      try {
        names = await fsp.readdir(dir);
      } catch (error) {
        if (isAbsent(error)) continue;
        throw error;
      }
      for (const name of names) {
        const path = join(dir, name);
        const stat = await lstatOrNull(path);
        if (stat?.isFile()) yield { name, path, stat, quarantined };
      }
    }
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
