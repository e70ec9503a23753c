// Coordination through one Redis primary, for processes that share no disk (replicas, containers,
// VMs holding copies of one login). Per key: a lease lock `<prefix>lock:<key>` set-if-absent with
// an owner nonce and the lease as expiry, renewed by a heartbeat and released only by its owner (Lua,
// atomic); the journal entry `<prefix>entry:<key>` and spent marker `<prefix>spent:<key>`, sealed by
// sealed-entry.ts exactly like the file journal's and stored set-if-absent with the retention as
// expiry. Waiters are woken by pub/sub on `<prefix>changed` (an entry written, a lock released),
// with a long fallback poll for a message lost while the connection was down.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Redis, type RedisOptions } from "ioredis";

import { BackendUnavailableError, JournalCorruptError, LockCompromisedError } from "../errors/errors.ts";
import type { TokenSet } from "../oauth/token-wire.ts";
import type { Coordination, HeldLock, LockEvents, LockHolder, Wake } from "./coordination.ts";
import type { JournalSize } from "./journal.ts";
import { redactUrl } from "./redis-url.ts";
import { checkKey, openEntry, openSpent, type SpentMarker, sealEntry, sealSpent } from "./sealed-entry.ts";

/** Pause between tries of an operation while the connection is down. */
const RETRY_MS = 100;

export interface RedisCoordinationOptions {
  /** `redis://` or `rediss://`, with or without credentials. */
  url: string;
  /** Used when the URL carries none (read from the environment variable the config names). */
  password?: string;
  keyPrefix: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** Lease of a lock: a holder that stops renewing for this long loses it. */
  leaseMs: number;
  /** Heartbeat period (well under leaseMs). */
  renewMs: number;
  retentionMs: number;
  /** Longest sleep of a waiter that no message woke (messages are lost while disconnected). */
  fallbackPollMs?: number;
  now?: () => number;
  events?: LockEvents;
  onQuarantine?: (error: JournalCorruptError) => void;
}

/** Renews the lease if `ARGV[1]` still owns it: 1, else 0. */
const RENEW = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`;
/** Deletes the lock if `ARGV[1]` still owns it and tells the waiters: 1, else 0. */
const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("DEL", KEYS[1]) redis.call("PUBLISH", KEYS[2], ARGV[2]) return 1 else return 0 end`;
/** Stores the value if absent, with expiry, and tells the waiters: 1 if stored, else 0. */
const PUT_IF_ABSENT = `if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then redis.call("PUBLISH", KEYS[2], ARGV[3]) return 1 else return 0 end`;
/** Moves an unreadable value aside (keeping its expiry) only if it is still the one that was read. */
const SET_ASIDE = `if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("RENAME", KEYS[1], KEYS[2]) return 1 else return 0 end`;

const DEFAULT_FALLBACK_POLL_MS = 1000;

/** The scripts above as client commands (ioredis sends EVALSHA, falling back to the script once). */
interface Scripts {
  rgRenew(lockKey: string, owner: string, leaseMs: string): Promise<number>;
  rgRelease(lockKey: string, channel: string, owner: string, key: string): Promise<number>;
  rgPutIfAbsent(redisKey: string, channel: string, value: string, ttlMs: string, key: string): Promise<number>;
  rgSetAside(redisKey: string, aside: string, text: string): Promise<number>;
}

export class RedisCoordination implements Coordination {
  readonly kind = "redis";
  readonly location: string;
  /** How waiters woke: by a message, or by the fallback poll (tests assert on it). */
  readonly wakeups = { message: 0, fallback: 0 };
  private readonly options: RedisCoordinationOptions;
  private readonly now: () => number;
  private readonly client: Redis & Scripts;
  private readonly subscriber: Redis;
  private readonly channel: string;
  private readonly waiters = new Map<string, Set<() => void>>();
  private opening: Promise<void> | undefined;
  private closed = false;
  private busy = 0;
  private keepAlive: NodeJS.Timeout | undefined;

  constructor(options: RedisCoordinationOptions) {
    this.options = options;
    this.location = redactUrl(options.url);
    this.now = options.now ?? Date.now;
    this.channel = `${options.keyPrefix}changed`;
    const clientOptions: RedisOptions = {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs,
      commandTimeout: options.commandTimeoutMs,
      // A command waits for a reconnect (a restart) up to commandTimeoutMs, then fails closed.
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
      // Never print the URL or its password: errors are turned into BackendUnavailableError below.
      showFriendlyErrorStack: false,
    };
    if (options.password !== undefined) clientOptions.password = options.password;
    const client = new Redis(options.url, clientOptions);
    client.defineCommand("rgRenew", { numberOfKeys: 1, lua: RENEW });
    client.defineCommand("rgRelease", { numberOfKeys: 2, lua: RELEASE });
    client.defineCommand("rgPutIfAbsent", { numberOfKeys: 2, lua: PUT_IF_ABSENT });
    client.defineCommand("rgSetAside", { numberOfKeys: 2, lua: SET_ASIDE });
    this.client = client as Redis & Scripts;
    this.subscriber = new Redis(options.url, { ...clientOptions, commandTimeout: undefined });
    // ioredis reports connection errors as events too; they are reported through commands.
    this.client.on("error", () => undefined);
    this.subscriber.on("error", () => undefined);
    this.subscriber.on("message", (_channel: string, key: string) => this.wake(key));
    // An idle connection must not keep a CLI process alive; run() keeps it alive while a command is out.
    for (const connection of [this.client, this.subscriber]) connection.on("connect", () => connection.stream.unref());
  }

  /** Connects both connections and subscribes; throws BackendUnavailableError if Redis cannot be reached. */
  open(): Promise<void> {
    this.opening ??= this.connect().catch((error: unknown) => {
      this.opening = undefined;
      this.client.disconnect();
      this.subscriber.disconnect();
      throw error;
    });
    return this.opening;
  }

  private async connect(): Promise<void> {
    const within = <T>(what: Promise<T>): Promise<T> =>
      Promise.race([
        what,
        new Promise<T>((_resolve, reject) =>
          setTimeout(
            () => reject(new Error(`no answer within ${this.options.connectTimeoutMs} ms`)),
            this.options.connectTimeoutMs,
          ).unref(),
        ),
      ]);
    // A refused connection (Redis restarting) is tried again until connectTimeoutMs has passed;
    // ioredis reconnects in the background meanwhile.
    const deadline = Date.now() + this.options.connectTimeoutMs;
    const ready = async (connection: Redis): Promise<void> => {
      for (;;) {
        try {
          return await connectOnce(connection);
        } catch (error) {
          if (Date.now() >= deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        }
      }
    };
    if (this.busy++ === 0) this.keepAlive = setInterval(() => undefined, 60_000);
    try {
      await within(Promise.all([ready(this.client), ready(this.subscriber)]));
      await within(this.subscriber.subscribe(this.channel));
      await within(this.client.ping());
    } catch (error) {
      throw this.unavailable("cannot reach", error);
    } finally {
      if (--this.busy === 0) clearInterval(this.keepAlive);
    }
  }

  /** Round trip of one PING, in milliseconds. */
  async ping(): Promise<number> {
    const started = performance.now();
    await this.run(() => this.client.ping());
    return performance.now() - started;
  }

  hasEntry(key: string): Promise<boolean> {
    return this.run(async () => (await this.client.exists(this.entryKey(key))) === 1);
  }

  async readEntry(key: string, spentToken: string): Promise<TokenSet | null> {
    const text = await this.run(() => this.client.get(this.entryKey(key)));
    if (text === null) return null;
    const opened = openEntry(key, spentToken, text);
    if ("unreadable" in opened) return this.setAside(this.entryKey(key), text, opened.unreadable);
    return opened;
  }

  async writeEntry(key: string, spentToken: string, set: TokenSet): Promise<TokenSet> {
    const content = sealEntry(key, spentToken, set, this.now());
    if (await this.putIfAbsent(this.entryKey(key), key, content)) return set;
    const winner = await this.readEntry(key, spentToken);
    // An existing but unreadable entry was just set aside: try once more to be first.
    if (winner === null && (await this.putIfAbsent(this.entryKey(key), key, content))) return set;
    return winner ?? set;
  }

  async markSpent(key: string, spentToken: string, code: string, body: string): Promise<void> {
    await this.putIfAbsent(this.spentKey(key), key, sealSpent(key, spentToken, { code, at: this.now(), body }));
  }

  async readSpent(key: string, spentToken: string): Promise<SpentMarker | null> {
    const text = await this.run(() => this.client.get(this.spentKey(key)));
    if (text === null) return null;
    const opened = openSpent(key, spentToken, text);
    if ("unreadable" in opened) return this.setAside(this.spentKey(key), text, opened.unreadable);
    return opened;
  }

  async tryLock(key: string): Promise<HeldLock | null> {
    const lockKey = this.lockKey(key);
    const path = this.lockLocation(key);
    // The owner record: a nonce only this holder knows, and who it is, for status.
    const owner = `${randomBytes(12).toString("hex")} ${process.pid} ${this.now()} ${hostname().slice(0, 64)}`;
    const taken = await this.run(() => this.client.set(lockKey, owner, "PX", this.options.leaseMs, "NX"));
    if (taken !== "OK") return null;
    let compromised = false;
    let released = false;
    const lose = () => {
      if (compromised) return;
      compromised = true;
      clearInterval(heartbeat);
      this.options.events?.onCompromised?.(key, path);
    };
    // Renews the lease to its full length if still ours: true, else false (and the lock is lost).
    const renew = async (): Promise<boolean> => {
      const renewed = await this.run(() => this.client.rgRenew(lockKey, owner, String(this.options.leaseMs)));
      if (renewed !== 1) lose();
      return renewed === 1;
    };
    const heartbeat = setInterval(() => {
      // A failed beat (Redis briefly away) leaves the lease to run; assertHeld checks before sending.
      if (!released && !compromised) renew().catch(() => undefined);
    }, this.options.renewMs);
    heartbeat.unref();
    return {
      key,
      path,
      get compromised() {
        return compromised;
      },
      // Checks ownership and renews the lease in one step, so the request leaves with a full lease.
      assertHeld: async () => {
        if (compromised || !(await renew())) throw new LockCompromisedError(path);
      },
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(heartbeat);
        if (compromised) return;
        // Best effort: a release that cannot reach Redis leaves the lease to expire by itself.
        await this.run(() => this.client.rgRelease(lockKey, this.channel, owner, key)).catch(() => undefined);
      },
    };
  }

  lockLocation(key: string): string {
    return `${this.location} ${this.lockKey(key)}`;
  }

  /** Woken by a message about `key` (an entry written, a lock released); rechecks once after listening. */
  async waitForChange(key: string, timeoutMs: number): Promise<Wake> {
    await this.wait(key, Math.max(timeoutMs, this.fallbackPollMs()), async () => {
      const [entry, lock] = await Promise.all([this.client.exists(this.entryKey(key)), this.client.exists(this.lockKey(key))]);
      return entry === 1 || lock === 0;
    });
    // A message does not say which of the two happened: the caller checks both again.
    return { kind: "changed" };
  }

  waitForEntry(key: string, timeoutMs: number): Promise<void> {
    return this.wait(key, timeoutMs, async () => (await this.client.exists(this.entryKey(key))) === 1);
  }

  async holders(): Promise<LockHolder[]> {
    const holders: LockHolder[] = [];
    const prefix = `${this.options.keyPrefix}lock:`;
    for (const lockKey of await this.scan(`${prefix}*`)) {
      const owner = await this.run(() => this.client.get(lockKey));
      if (owner === null) continue;
      const [, pid, since] = owner.split(" ");
      const holder: LockHolder = { key: lockKey.slice(prefix.length), ageMs: Math.max(0, this.now() - Number(since)) };
      if (pid !== undefined && /^\d+$/.test(pid)) holder.pid = Number(pid);
      holders.push(holder);
    }
    return holders;
  }

  async size(): Promise<JournalSize> {
    const p = this.options.keyPrefix;
    const [entries, tombstones, quarantined] = await Promise.all([
      this.scan(`${p}entry:*`),
      this.scan(`${p}spent:*`),
      this.scan(`${p}aside:*`),
    ]);
    let bytes = 0;
    for (const key of [...entries, ...tombstones]) bytes += await this.run(() => this.client.strlen(key));
    return { entries: entries.length, tombstones: tombstones.length, quarantined: quarantined.length, bytes };
  }

  /** Nothing to do: entries, markers and leases expire in Redis itself. */
  async prune(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const wakers of this.waiters.values()) for (const wake of wakers) wake();
    this.client.disconnect();
    this.subscriber.disconnect();
  }

  private fallbackPollMs(): number {
    return this.options.fallbackPollMs ?? DEFAULT_FALLBACK_POLL_MS;
  }

  private wait(key: string, timeoutMs: number, changed: () => Promise<boolean>): Promise<void> {
    return new Promise<void>((resolve) => {
      const wakers = this.waiters.get(key) ?? new Set();
      this.waiters.set(key, wakers);
      const done = (how: "message" | "fallback" | null) => {
        if (!wakers.delete(wake)) return;
        if (wakers.size === 0 && this.waiters.get(key) === wakers) this.waiters.delete(key);
        clearTimeout(timer);
        if (how !== null) this.wakeups[how] += 1;
        resolve();
      };
      const wake = () => done("message");
      wakers.add(wake);
      const timer = setTimeout(() => done("fallback"), timeoutMs);
      // Listening now: a change that came before is seen by this check, one after by a message.
      changed().then(
        (yes) => yes && done(null),
        () => done(null),
      );
    });
  }

  private wake(key: string): void {
    for (const wake of [...(this.waiters.get(key) ?? [])]) wake();
  }

  private async putIfAbsent(redisKey: string, key: string, value: string): Promise<boolean> {
    const stored = await this.run(() =>
      this.client.rgPutIfAbsent(redisKey, this.channel, value, String(Math.round(this.options.retentionMs)), key),
    );
    return stored === 1;
  }

  private async setAside(redisKey: string, text: string, reason: string): Promise<null> {
    const aside = `${this.options.keyPrefix}aside:${redisKey.slice(this.options.keyPrefix.length)}:${this.now()}`;
    const moved = await this.run(() => this.client.rgSetAside(redisKey, aside, text));
    if (moved === 1) this.options.onQuarantine?.(new JournalCorruptError(`${this.location} ${redisKey}`, `${reason}; moved to ${aside}`));
    return null;
  }

  private async scan(pattern: string): Promise<string[]> {
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await this.run(() => this.client.scan(cursor, "MATCH", pattern, "COUNT", 500));
      cursor = next;
      keys.push(...batch);
    } while (cursor !== "0");
    return keys;
  }

  /** Runs one Redis operation; any failure to get an answer becomes BackendUnavailableError. */
  /**
   * Runs one Redis operation. A connection that drops (a restart) is ridden out for up to
   * commandTimeoutMs by trying again: every operation here is safe to repeat (set-if-absent,
   * owner-checked scripts, reads). An answer Redis itself gave (ReplyError) is never retried.
   */
  private async run<T>(operation: () => Promise<T>): Promise<T> {
    if (this.closed) throw this.unavailable("closed the connection to", null);
    if (this.busy++ === 0) this.keepAlive = setInterval(() => undefined, 60_000);
    const deadline = Date.now() + this.options.commandTimeoutMs;
    try {
      for (;;) {
        try {
          return await operation();
        } catch (error) {
          if (this.closed || (error as Error)?.name === "ReplyError" || Date.now() >= deadline) throw this.unavailable("lost", error);
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        }
      }
    } finally {
      if (--this.busy === 0) clearInterval(this.keepAlive);
    }
  }

  private unavailable(what: string, cause: unknown): BackendUnavailableError {
    const reason = cause instanceof Error ? `: ${cause.message.replaceAll(this.options.url, this.location)}` : "";
    return new BackendUnavailableError(
      `${what} Redis at ${this.location}${reason}. Nothing was redeemed (fail closed). Start or fix Redis, or check ` +
        `plugins.entries["refresh-guard"].config.coordination.redis (url, passwordEnv); to fall back to the local file lock ` +
        `while Redis is away, set coordination.redis.onUnavailable to "file".`,
      { path: this.location, cause },
    );
  }

  private lockKey(key: string): string {
    return `${this.options.keyPrefix}lock:${checkKey(key)}`;
  }

  private entryKey(key: string): string {
    return `${this.options.keyPrefix}entry:${checkKey(key)}`;
  }

  private spentKey(key: string): string {
    return `${this.options.keyPrefix}spent:${checkKey(key)}`;
  }
}

/** Resolves once `client` is ready; rejects on its first connection error (it keeps retrying in the background). */
function connectOnce(client: Redis): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      client.off("ready", onReady);
      reject(error);
    };
    const onReady = () => {
      client.off("error", onError);
      resolve();
    };
    client.once("error", onError);
    client.once("ready", onReady);
    if (client.status === "wait" || client.status === "end") client.connect().catch(() => undefined);
  });
}
