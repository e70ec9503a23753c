// Coordination through Redis, for processes that share no disk (replicas, containers, VMs holding
// copies of one login): one server, or the primary Sentinel names, over TLS when asked. A facade
// over three parts: redis-connection.ts (clients and the one retry loop), redis-lease.ts (the lease
// lock and its owner record), redis-entries.ts (journal entries and spent markers). Waiters are
// woken by pub/sub on `<prefix>changed` (an entry written, a lock released), with a long fallback
// poll for a message lost while the connection was down.
import type { JournalCorruptError } from "../errors/errors.ts";
import type { TokenSet } from "../oauth/token-wire.ts";
import type { Coordination, HeldLock, LockEvents, LockHolder, Wake } from "./coordination.ts";
import type { JournalSize } from "./journal.ts";
import { RedisConnection, type RedisConnectionOptions } from "./redis-connection.ts";
import { RedisEntries } from "./redis-entries.ts";
import { RedisLeases } from "./redis-lease.ts";
import { checkKey, type SpentMarker } from "./sealed-entry.ts";

export interface RedisCoordinationOptions extends RedisConnectionOptions {
  keyPrefix: string;
  /** Lease of a lock: a holder that stops renewing for this long loses it. */
  leaseMs: number;
  /** Heartbeat period (well under leaseMs). */
  renewMs: number;
  retentionMs: number;
  /** Replicas that must acknowledge the lease and each entry (WAIT, bounded by commandTimeoutMs); default 0. */
  replicaAcks?: number;
  /** Longest sleep of a waiter that no message woke (messages are lost while disconnected). */
  fallbackPollMs?: number;
  now?: () => number;
  events?: LockEvents;
  onQuarantine?: (error: JournalCorruptError) => void;
  onUnreplicated?: (message: string) => void;
}

const DEFAULT_FALLBACK_POLL_MS = 1000;

/** What status shows about the connection beyond reachability. */
export interface RedisTopology {
  /** host:port of the server answering (with Sentinel: the current primary). */
  primary?: string;
  sentinels?: string[];
  masterName?: string;
  tls: boolean;
  replicaAcks: number;
}

export class RedisCoordination implements Coordination {
  readonly kind = "redis";
  readonly location: string;
  /** How waiters woke: by a message, or by the fallback poll (tests assert on it). */
  readonly wakeups = { message: 0, fallback: 0 };
  private readonly options: RedisCoordinationOptions;
  private readonly connection: RedisConnection;
  private readonly leases: RedisLeases;
  private readonly entries: RedisEntries;
  private readonly channel: string;
  private readonly waiters = new Map<string, Set<() => void>>();
  private opening: Promise<void> | undefined;
  private closed = false;

  constructor(options: RedisCoordinationOptions) {
    this.options = options;
    this.connection = new RedisConnection(options);
    this.location = this.connection.location;
    this.channel = `${options.keyPrefix}changed`;
    const now = options.now ?? Date.now;
    const replicaAcks = options.replicaAcks ?? 0;
    const shared = { keyPrefix: options.keyPrefix, channel: this.channel, replicaAcks, now };
    this.leases = new RedisLeases(this.connection, {
      ...shared,
      leaseMs: options.leaseMs,
      renewMs: options.renewMs,
      ...(options.events ? { events: options.events } : {}),
    });
    this.entries = new RedisEntries(this.connection, {
      ...shared,
      retentionMs: options.retentionMs,
      ...(options.onQuarantine ? { onQuarantine: options.onQuarantine } : {}),
      ...(options.onUnreplicated ? { onUnreplicated: options.onUnreplicated } : {}),
    });
    this.connection.subscriber.on("message", (_channel: string, key: string) => this.wake(key));
  }

  /** Connects both connections and subscribes; throws BackendUnavailableError if Redis cannot be reached. */
  open(): Promise<void> {
    this.opening ??= this.connection.open(this.channel).catch((error: unknown) => {
      this.opening = undefined;
      throw error;
    });
    return this.opening;
  }

  /** Round trip of one PING, in milliseconds. */
  async ping(): Promise<number> {
    const started = performance.now();
    await this.connection.run(() => this.connection.client.ping());
    return performance.now() - started;
  }

  topology(): RedisTopology {
    const o = this.options;
    const topology: RedisTopology = { tls: o.url.startsWith("rediss:"), replicaAcks: o.replicaAcks ?? 0 };
    const primary = this.connection.primary();
    if (primary !== undefined) topology.primary = primary;
    if (o.sentinels?.length) {
      topology.sentinels = o.sentinels.map((s) => `${s.host}:${s.port}`);
      topology.masterName = o.masterName ?? "mymaster";
    }
    return topology;
  }

  hasEntry(key: string): Promise<boolean> {
    return this.entries.has(checkKey(key));
  }

  readEntry(key: string, spentToken: string): Promise<TokenSet | null> {
    return this.entries.read(checkKey(key), spentToken);
  }

  writeEntry(key: string, spentToken: string, set: TokenSet): Promise<TokenSet> {
    return this.entries.write(checkKey(key), spentToken, set);
  }

  markSpent(key: string, spentToken: string, code: string, body: string): Promise<void> {
    return this.entries.markSpent(checkKey(key), spentToken, code, body);
  }

  readSpent(key: string, spentToken: string): Promise<SpentMarker | null> {
    return this.entries.readSpent(checkKey(key), spentToken);
  }

  tryLock(key: string): Promise<HeldLock | null> {
    return this.leases.tryLock(checkKey(key));
  }

  lockLocation(key: string): string {
    return this.leases.location(checkKey(key));
  }

  /** Woken by a message about `key` (an entry written, a lock released); rechecks once after listening. */
  async waitForChange(key: string, timeoutMs: number): Promise<Wake> {
    const client = this.connection.client;
    await this.wait(key, Math.max(timeoutMs, this.fallbackPollMs()), async () => {
      const [entry, lock] = await Promise.all([client.exists(this.entries.entryKey(key)), client.exists(this.leases.lockKey(key))]);
      return entry === 1 || lock === 0;
    });
    // A message does not say which of the two happened: the caller checks both again.
    return { kind: "changed" };
  }

  waitForEntry(key: string, timeoutMs: number): Promise<void> {
    return this.wait(key, timeoutMs, async () => (await this.connection.client.exists(this.entries.entryKey(key))) === 1);
  }

  holders(): Promise<LockHolder[]> {
    return this.leases.holders();
  }

  async size(): Promise<JournalSize> {
    const p = this.options.keyPrefix;
    const [entries, tombstones, quarantined] = await Promise.all([
      this.connection.scan(`${p}entry:`, "*"),
      this.connection.scan(`${p}spent:`, "*"),
      this.connection.scan(`${p}aside:`, "*"),
    ]);
    let bytes = 0;
    for (const key of [...entries.keys, ...tombstones.keys]) bytes += await this.connection.run(() => this.connection.client.strlen(key));
    return { entries: entries.keys.length, tombstones: tombstones.keys.length, quarantined: quarantined.keys.length, bytes };
  }

  /** Nothing to do: entries, markers and leases expire in Redis itself. */
  async prune(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const wakers of this.waiters.values()) for (const wake of wakers) wake();
    this.connection.close();
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
}
