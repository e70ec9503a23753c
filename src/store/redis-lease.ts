// The lease lock of the Redis backend, one key per token: `<prefix>lock:<key>` set-if-absent with
// an owner record (JSON, like the file lock's: a nonce only this holder knows, pid, host, since)
// and the lease as expiry, renewed by a heartbeat and released only by its owner (Lua, atomic). A
// lock key without expiry (made PERSIST, or planted) would block its token forever: it is treated
// as blocked and replaced in the same script that takes the lock. With replicaAcks, the holder
// sends nothing until that many replicas acknowledged the lease (WAIT), so a promoted replica
// knows it.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

import { LockCompromisedError } from "../errors/errors.ts";
import type { HeldLock, LockEvents, LockHolder } from "./coordination.ts";
import type { RedisConnection } from "./redis-connection.ts";

/** Takes the lock if absent (1), or if it has no expiry (2, replaced); else 0. */
const TAKE = `if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then return 1 end
if redis.call("PTTL", KEYS[1]) == -1 then redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2]) return 2 end
return 0`;
/** Renews the lease if `ARGV[1]` still owns it: 1, else 0. */
const RENEW = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`;
/** Deletes the lock if `ARGV[1]` still owns it and tells the waiters: 1, else 0. */
const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("DEL", KEYS[1]) redis.call("PUBLISH", KEYS[2], ARGV[2]) return 1 else return 0 end`;
/** The owner record if it is a string of at most ARGV[1] bytes, else false. */
const OWNER = `if redis.call("TYPE", KEYS[1]).ok ~= "string" or redis.call("STRLEN", KEYS[1]) > tonumber(ARGV[1]) then return false end
return redis.call("GET", KEYS[1])`;
const MAX_OWNER_BYTES = 1024;

interface LeaseScripts {
  rgTake(lockKey: string, owner: string, leaseMs: string): Promise<number>;
  rgRenew(lockKey: string, owner: string, leaseMs: string): Promise<number>;
  rgRelease(lockKey: string, channel: string, owner: string, key: string): Promise<number>;
  rgOwner(lockKey: string, max: string): Promise<string | null>;
}

export interface RedisLeaseOptions {
  keyPrefix: string;
  channel: string;
  leaseMs: number;
  renewMs: number;
  /** Replicas that must acknowledge the lease before the holder may send (WAIT); 0: none. */
  replicaAcks: number;
  now: () => number;
  events?: LockEvents;
}

/** The owner record stored in a lock key. */
interface OwnerRecord {
  nonce: string;
  pid: number;
  host: string;
  since: number;
}

export class RedisLeases {
  private readonly connection: RedisConnection;
  private readonly options: RedisLeaseOptions;
  private readonly scripts: LeaseScripts;

  constructor(connection: RedisConnection, options: RedisLeaseOptions) {
    this.connection = connection;
    this.options = options;
    const client = connection.client;
    client.defineCommand("rgTake", { numberOfKeys: 1, lua: TAKE });
    client.defineCommand("rgRenew", { numberOfKeys: 1, lua: RENEW });
    client.defineCommand("rgRelease", { numberOfKeys: 2, lua: RELEASE });
    client.defineCommand("rgOwner", { numberOfKeys: 1, lua: OWNER });
    this.scripts = client as unknown as LeaseScripts;
  }

  lockKey(key: string): string {
    return `${this.options.keyPrefix}lock:${key}`;
  }

  location(key: string): string {
    return `${this.connection.location} ${this.lockKey(key)}`;
  }

  async tryLock(key: string): Promise<HeldLock | null> {
    const { connection, scripts, options } = this;
    const lockKey = this.lockKey(key);
    const path = this.location(key);
    const record: OwnerRecord = {
      nonce: randomBytes(12).toString("hex"),
      pid: process.pid,
      host: hostname().slice(0, 64),
      since: options.now(),
    };
    const owner = JSON.stringify(record);
    const taken = await connection.run(() => scripts.rgTake(lockKey, owner, String(options.leaseMs)));
    if (taken === 0) return null;
    if (taken === 2) options.events?.onBlocked?.(path, "replaced (the lock key had no expiry)");
    let compromised = false;
    let released = false;
    const lose = () => {
      if (compromised) return;
      compromised = true;
      clearInterval(heartbeat);
      options.events?.onCompromised?.(key, path);
    };
    // Renews the lease to its full length if still ours: true, else false (and the lock is lost).
    const renew = async (): Promise<boolean> => {
      const renewed = await connection.run(() => scripts.rgRenew(lockKey, owner, String(options.leaseMs)));
      if (renewed !== 1) lose();
      return renewed === 1;
    };
    const release = async () => {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      if (compromised) return;
      // Best effort: a release that cannot reach Redis leaves the lease to expire by itself.
      await connection.run(() => scripts.rgRelease(lockKey, options.channel, owner, key)).catch(() => undefined);
    };
    const heartbeat = setInterval(() => {
      // A failed beat (Redis briefly away) leaves the lease to run; assertHeld checks before sending.
      if (!released && !compromised) renew().catch(() => undefined);
    }, options.renewMs);
    heartbeat.unref();
    if (options.replicaAcks > 0) {
      const acked = await connection.replicate(options.replicaAcks).catch(async (error: unknown) => {
        await release();
        throw error;
      });
      if (acked < options.replicaAcks) {
        await release();
        throw connection.unavailable(`only ${acked} of ${options.replicaAcks} replicas acknowledged the lease (replicaAcks) at`, null);
      }
    }
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
      release,
    };
  }

  async holders(): Promise<LockHolder[]> {
    const holders: LockHolder[] = [];
    const prefix = `${this.options.keyPrefix}lock:`;
    const { keys } = await this.connection.scan(prefix, "*");
    for (const lockKey of keys) {
      const text = await this.connection.run(() => this.scripts.rgOwner(lockKey, String(MAX_OWNER_BYTES)));
      if (text === null) continue;
      const holder: LockHolder = { key: lockKey.slice(prefix.length), ageMs: 0 };
      const record = parseOwner(text);
      if (record !== null) {
        holder.ageMs = Math.max(0, this.options.now() - record.since);
        holder.pid = record.pid;
      }
      holders.push(holder);
    }
    return holders;
  }
}

function parseOwner(text: string): OwnerRecord | null {
  try {
    const value = JSON.parse(text) as Partial<OwnerRecord>;
    if (typeof value.since !== "number" || typeof value.pid !== "number" || !Number.isInteger(value.pid)) return null;
    return value as OwnerRecord;
  } catch {
    return null;
  }
}
