// The journal of the Redis backend: the entry `<prefix>entry:<key>` and spent marker
// `<prefix>spent:<key>`, sealed by sealed-entry.ts exactly like the file journal's and stored
// set-if-absent with the retention as expiry (first-writer.ts keeps the rules). Reads are bounded
// like the file journal's (a value over MAX_ENTRY_BYTES, or not a string, is never read whole) and
// an unreadable value is set aside under `<prefix>aside:` only if it is still the one that was read,
// compared by its hash inside Redis (the value is never sent back). With replicaAcks, a written
// entry waits for that many replicas (WAIT) so a promoted replica hands out the same successor.
import { JournalCorruptError } from "../errors/errors.ts";
import type { TokenSet } from "../oauth/token-wire.ts";
import { readElseSetAside, writeFirstWins } from "./first-writer.ts";
import type { RedisConnection } from "./redis-connection.ts";
import { MAX_ENTRY_BYTES, openEntry, openSpent, type SpentMarker, sealEntry, sealSpent } from "./sealed-entry.ts";

/** Stores the value if absent, with expiry, and tells the waiters: 1 if stored, else 0. */
const PUT_IF_ABSENT = `if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then redis.call("PUBLISH", KEYS[2], ARGV[3]) return 1 else return 0 end`;
/** false if absent; {-1} if not a string; {length} if over ARGV[1] bytes; else {length, value, sha1 of value}. */
const READ = `local t = redis.call("TYPE", KEYS[1]).ok
if t == "none" then return false end
if t ~= "string" then return {-1} end
local n = redis.call("STRLEN", KEYS[1])
if n > tonumber(ARGV[1]) then return {n} end
local v = redis.call("GET", KEYS[1])
return {n, v, redis.sha1hex(v)}`;
/**
 * Renames the value aside (giving it the retention as expiry if it had none) only if it is still
 * what was read: ARGV[1] its sha1, or "type" (still not a string), or "size" (still over ARGV[2]).
 */
const SET_ASIDE = `local t = redis.call("TYPE", KEYS[1]).ok
if t == "none" then return 0 end
if ARGV[1] == "type" then if t == "string" then return 0 end
elseif ARGV[1] == "size" then if t ~= "string" or redis.call("STRLEN", KEYS[1]) <= tonumber(ARGV[2]) then return 0 end
elseif t ~= "string" or redis.sha1hex(redis.call("GET", KEYS[1])) ~= ARGV[1] then return 0 end
redis.call("RENAME", KEYS[1], KEYS[2])
if redis.call("PTTL", KEYS[2]) == -1 then redis.call("PEXPIRE", KEYS[2], ARGV[3]) end
return 1`;

interface EntryScripts {
  rgPutIfAbsent(redisKey: string, channel: string, value: string, ttlMs: string, key: string): Promise<number>;
  rgRead(redisKey: string, max: string): Promise<[number, string?, string?] | null>;
  rgSetAside(redisKey: string, aside: string, match: string, max: string, ttlMs: string): Promise<number>;
}

export interface RedisEntriesOptions {
  keyPrefix: string;
  channel: string;
  retentionMs: number;
  /** Replicas that must acknowledge a written entry (WAIT); 0: none. */
  replicaAcks: number;
  now: () => number;
  onQuarantine?: (error: JournalCorruptError) => void;
  /** A written entry that fewer replicas than asked acknowledged in time (it is kept and used). */
  onUnreplicated?: (message: string) => void;
}

export class RedisEntries {
  private readonly connection: RedisConnection;
  private readonly options: RedisEntriesOptions;
  private readonly scripts: EntryScripts;

  constructor(connection: RedisConnection, options: RedisEntriesOptions) {
    this.connection = connection;
    this.options = options;
    connection.client.defineCommand("rgPutIfAbsent", { numberOfKeys: 2, lua: PUT_IF_ABSENT });
    connection.client.defineCommand("rgRead", { numberOfKeys: 1, lua: READ });
    connection.client.defineCommand("rgSetAside", { numberOfKeys: 2, lua: SET_ASIDE });
    this.scripts = connection.client as unknown as EntryScripts;
  }

  entryKey(key: string): string {
    return `${this.options.keyPrefix}entry:${key}`;
  }

  spentKey(key: string): string {
    return `${this.options.keyPrefix}spent:${key}`;
  }

  async has(key: string): Promise<boolean> {
    return (await this.connection.run(() => this.connection.client.exists(this.entryKey(key)))) === 1;
  }

  read(key: string, spentToken: string): Promise<TokenSet | null> {
    return this.readValue(this.entryKey(key), (text) => openEntry(key, spentToken, text));
  }

  async write(key: string, spentToken: string, set: TokenSet): Promise<TokenSet> {
    const content = sealEntry(key, spentToken, set, this.options.now());
    const stored = await writeFirstWins(
      set,
      () => this.putIfAbsent(this.entryKey(key), key, content),
      () => this.read(key, spentToken),
    );
    if (this.options.replicaAcks > 0) {
      const acked = await this.connection.replicate(this.options.replicaAcks).catch(() => 0);
      if (acked < this.options.replicaAcks) {
        this.options.onUnreplicated?.(
          `only ${acked} of ${this.options.replicaAcks} replicas acknowledged the journal entry at ${this.connection.location} in time; ` +
            "a failover now could lose it (the successor is still handed to this caller)",
        );
      }
    }
    return stored;
  }

  async markSpent(key: string, spentToken: string, code: string, body: string): Promise<void> {
    await this.putIfAbsent(this.spentKey(key), key, sealSpent(key, spentToken, { code, at: this.options.now(), body }));
  }

  readSpent(key: string, spentToken: string): Promise<SpentMarker | null> {
    return this.readValue(this.spentKey(key), (text) => openSpent(key, spentToken, text));
  }

  private async readValue<T>(redisKey: string, open: (text: string) => T | { unreadable: string }): Promise<T | null> {
    const max = String(MAX_ENTRY_BYTES);
    const answer = await this.connection.run(() => this.scripts.rgRead(redisKey, max));
    if (answer === null) return null;
    const [length, text, sha] = answer;
    if (length === -1) return this.setAside(redisKey, "type", "not a string value");
    if (text === undefined || sha === undefined) return this.setAside(redisKey, "size", `larger than ${MAX_ENTRY_BYTES} bytes`);
    return readElseSetAside(open(text), async (reason) => {
      await this.setAside(redisKey, sha, reason);
    });
  }

  private async putIfAbsent(redisKey: string, key: string, value: string): Promise<boolean> {
    const ttl = String(Math.round(this.options.retentionMs));
    return (await this.connection.run(() => this.scripts.rgPutIfAbsent(redisKey, this.options.channel, value, ttl, key))) === 1;
  }

  private async setAside(redisKey: string, match: string, reason: string): Promise<null> {
    const { keyPrefix, retentionMs, now } = this.options;
    const aside = `${keyPrefix}aside:${redisKey.slice(keyPrefix.length)}:${now()}`;
    const ttl = String(Math.round(retentionMs));
    const moved = await this.connection.run(() => this.scripts.rgSetAside(redisKey, aside, match, String(MAX_ENTRY_BYTES), ttl));
    if (moved === 1)
      this.options.onQuarantine?.(new JournalCorruptError(`${this.connection.location} ${redisKey}`, `${reason}; moved to ${aside}`));
    return null;
  }
}
