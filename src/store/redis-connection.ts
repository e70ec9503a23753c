// The connection to Redis behind the Redis backend: a command connection and a subscriber, to one
// server or to the primary that Sentinel names, over TLS when asked. Every operation, connecting
// included, goes through run(): the one retry loop, which rides out a dropped connection (a
// restart, a failover) for up to its deadline and turns anything else into a
// BackendUnavailableError that names the URL without secrets and Redis' own refusal
// (WRONGPASS, NOAUTH, NOPERM) when there is one.
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { Redis, type RedisOptions } from "ioredis";

import { BackendUnavailableError, ConfigError } from "../errors/errors.ts";
import { redactIn, redactUrl } from "./redis-url.ts";

/** Pause between tries of an operation while the connection is down. */
const RETRY_MS = 100;
/** SCAN stops after this many keys or rounds (a keyspace someone fills, a cursor that never ends). */
export const SCAN_MAX_KEYS = 10_000;
const SCAN_MAX_ROUNDS = 1_000;

export interface RedisTlsFiles {
  /** PEM file of the CA (or CAs) that signed the server's certificate, for a private CA. */
  caFile?: string;
  /** PEM client certificate and key, when the server asks for one (`tls-auth-clients yes`). */
  certFile?: string;
  keyFile?: string;
  /** The name the server's certificate must carry, when it differs from the URL's host. */
  serverName?: string;
}

export interface RedisConnectionOptions {
  /** `redis://` or `rediss://` (TLS), with or without a user name; with sentinels its host is not used. */
  url: string;
  username?: string;
  password?: string;
  tls?: RedisTlsFiles;
  /** Sentinels to ask for the current primary of `masterName`, instead of the URL's host. */
  sentinels?: { host: string; port: number }[];
  masterName?: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

/** Redis' own refusals, named with what to check. */
const REFUSALS: [RegExp, string][] = [
  [/WRONGPASS/, "WRONGPASS: Redis refused the user name or password (check the URL's user, usernameEnv and passwordEnv)"],
  [/NOAUTH/, "NOAUTH: Redis wants a password and none was given (set passwordEnv)"],
  [
    /NOPERM/,
    "NOPERM: the ACL user may not run this command or touch this key (give it the keys ~<keyPrefix>*, the channel &<keyPrefix>changed and the commands listed in docs/redis.md)",
  ],
];
const TLS_HINT = /certificate|CERT_|SSL|TLS|handshake/i;

export class RedisConnection {
  readonly client: Redis;
  readonly subscriber: Redis;
  /** The URL without secrets, for messages and status. */
  readonly location: string;
  private readonly options: RedisConnectionOptions;
  private closed = false;
  private busy = 0;
  private keepAlive: NodeJS.Timeout | undefined;
  private lastError: Error | null = null;

  constructor(options: RedisConnectionOptions) {
    this.options = options;
    this.location = redactUrl(options.url);
    const clientOptions: RedisOptions = {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs,
      commandTimeout: options.commandTimeoutMs,
      // A command waits for a reconnect (a restart, a failover) up to commandTimeoutMs, then fails closed.
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
      // Never print the URL or its password: errors are turned into BackendUnavailableError below.
      showFriendlyErrorStack: false,
    };
    // Credentials go to ioredis as options, never inside the URL it keeps (a user name alone in the
    // URL would otherwise override the password from passwordEnv with an empty one).
    const url = new URL(options.url);
    const username = options.username ?? (url.username !== "" ? decodeURIComponent(url.username) : undefined);
    const password = options.password ?? (url.password !== "" ? decodeURIComponent(url.password) : undefined);
    url.username = "";
    url.password = "";
    if (username !== undefined) clientOptions.username = username;
    if (password !== undefined) clientOptions.password = password;
    const tls = tlsOptions(options);
    if (tls !== undefined) clientOptions.tls = tls;
    if (options.sentinels !== undefined && options.sentinels.length > 0) {
      clientOptions.sentinels = options.sentinels;
      clientOptions.name = options.masterName ?? "mymaster";
      clientOptions.sentinelRetryStrategy = (attempt) => Math.min(attempt * 100, 1000);
      clientOptions.connectTimeout = Math.min(options.connectTimeoutMs, 1000);
      // Sentinels speak TLS too when the URL says rediss://.
      if (tls !== undefined) {
        clientOptions.enableTLSForSentinelMode = true;
        clientOptions.sentinelTLS = tls;
      }
    }
    this.client = new Redis(url.toString(), clientOptions);
    this.subscriber = new Redis(url.toString(), { ...clientOptions, commandTimeout: undefined });
    // ioredis reports connection errors (refused, TLS) as events; the last one explains a timeout.
    this.client.on("error", (error: Error) => {
      this.lastError = error;
    });
    this.subscriber.on("error", (error: Error) => {
      this.lastError = error;
    });
    // An idle connection must not keep a CLI process alive; run() keeps it alive while a command is out.
    for (const connection of [this.client, this.subscriber]) connection.on("connect", () => connection.stream.unref());
  }

  /** Connects both connections and subscribes to `channel`, within connectTimeoutMs. */
  async open(channel: string): Promise<void> {
    try {
      await this.run(
        async () => {
          await Promise.all([connectOnce(this.client), connectOnce(this.subscriber)]);
          await this.subscriber.subscribe(channel);
          await this.client.ping();
        },
        { timeoutMs: this.options.connectTimeoutMs, what: "cannot reach" },
      );
    } catch (error) {
      this.client.disconnect();
      this.subscriber.disconnect();
      throw error;
    }
  }

  /**
   * Runs one Redis operation: the one retry loop. A connection that drops (a restart, a failover)
   * is ridden out until the deadline by trying again: every operation of the backend is safe to
   * repeat (set-if-absent, owner-checked scripts, reads). An answer Redis itself gave (ReplyError)
   * is never retried.
   */
  async run<T>(operation: () => Promise<T>, how: { timeoutMs?: number; what?: string } = {}): Promise<T> {
    const timeoutMs = how.timeoutMs ?? this.options.commandTimeoutMs;
    const what = how.what ?? "lost";
    if (this.closed) throw this.unavailable("closed the connection to", null);
    if (this.busy++ === 0) this.keepAlive = setInterval(() => undefined, 60_000);
    const deadline = Date.now() + timeoutMs;
    let last: unknown = null;
    this.lastError = null;
    try {
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) throw this.unavailable(what, last ?? new Error(`no answer within ${timeoutMs} ms`));
        try {
          return await within(operation(), left, timeoutMs);
        } catch (error) {
          last = error;
          if (this.closed || isReplyError(error)) throw this.unavailable(what, error);
          await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_MS, Math.max(0, deadline - Date.now()))));
        }
      }
    } finally {
      if (--this.busy === 0) clearInterval(this.keepAlive);
    }
  }

  /**
   * Waits until `replicas` replicas have every write of this connection (WAIT), at most
   * commandTimeoutMs; resolves to how many did. 0 asked: nothing to wait for.
   */
  async replicate(replicas: number): Promise<number> {
    if (replicas <= 0) return 0;
    const timeout = Math.max(1, this.options.commandTimeoutMs - 100);
    return this.run(() => this.client.call("WAIT", String(replicas), String(timeout)) as Promise<number>, {
      timeoutMs: this.options.commandTimeoutMs * 2,
    });
  }

  /** host:port of the server the command connection is talking to (with Sentinel: the current primary). */
  primary(): string | undefined {
    const stream = this.client.stream as { remoteAddress?: string; remotePort?: number } | undefined;
    if (stream?.remoteAddress === undefined) return undefined;
    return `${stream.remoteAddress}:${stream.remotePort}`;
  }

  /** Keys matching `prefix` + `suffix` (the prefix escaped for MATCH), at most SCAN_MAX_KEYS; bounded in rounds. */
  async scan(prefix: string, suffix: string): Promise<{ keys: string[]; complete: boolean }> {
    const pattern = `${escapeGlob(prefix)}${suffix}`;
    const keys: string[] = [];
    let cursor = "0";
    for (let round = 0; round < SCAN_MAX_ROUNDS; round += 1) {
      const [next, batch] = await this.run(() => this.client.scan(cursor, "MATCH", pattern, "COUNT", 500));
      // MATCH is a glob; the prefix check keeps exactly our keys whatever the server matched.
      for (const key of batch) if (key.startsWith(prefix)) keys.push(key);
      cursor = next;
      if (cursor === "0") return { keys, complete: true };
      if (keys.length >= SCAN_MAX_KEYS) break;
    }
    return { keys: keys.slice(0, SCAN_MAX_KEYS), complete: false };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.disconnect();
    this.subscriber.disconnect();
  }

  unavailable(what: string, cause: unknown): BackendUnavailableError {
    // A timeout says less than the connection error behind it (a refused certificate, a refused port).
    if (cause instanceof Error && cause.message.startsWith("no answer within") && this.lastError !== null) {
      cause = new Error(`${cause.message}; last connection error: ${this.lastError.message}`, { cause: this.lastError });
    }
    const message = cause instanceof Error ? redactIn(cause.message, this.options.url) : "";
    const refusal = REFUSALS.find(([pattern]) => pattern.test(message))?.[1];
    const tls = refusal === undefined && TLS_HINT.test(message) ? " (TLS: check coordination.redis.tlsCaFile and tlsServerName)" : "";
    const reason = refusal !== undefined ? `: ${refusal} (${message})` : message !== "" ? `: ${message}${tls}` : "";
    const where = this.options.sentinels?.length
      ? ` (primary "${this.options.masterName ?? "mymaster"}" from sentinels ${this.options.sentinels.map((s) => `${s.host}:${s.port}`).join(", ")})`
      : "";
    return new BackendUnavailableError(
      `${what} Redis at ${this.location}${where}${reason}. Nothing was redeemed (fail closed). Start or fix Redis, or check ` +
        `plugins.entries["refresh-guard"].config.coordination.redis (url, usernameEnv, passwordEnv, tls*); to fall back to the local file lock ` +
        `while Redis is away, set coordination.redis.onUnavailable to "file".`,
      { path: this.location, cause },
    );
  }
}

/** `prefix` with the glob characters of SCAN MATCH escaped. */
export function escapeGlob(prefix: string): string {
  return prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function isReplyError(error: unknown): boolean {
  return (error as Error)?.name === "ReplyError";
}

function tlsOptions(options: RedisConnectionOptions): ConnectionOptions | undefined {
  const files = options.tls ?? {};
  const secure = options.url.startsWith("rediss:");
  if (!secure && Object.values(files).some((value) => value !== undefined)) {
    throw new ConfigError("coordination.redis.url", "tlsCaFile, tlsCertFile, tlsKeyFile and tlsServerName need a rediss:// URL");
  }
  if (!secure) return undefined;
  const read = (field: string, file: string | undefined): Buffer | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ConfigError(`coordination.redis.${field}`, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
  };
  const tls: ConnectionOptions = {};
  const ca = read("tlsCaFile", files.caFile);
  const cert = read("tlsCertFile", files.certFile);
  const key = read("tlsKeyFile", files.keyFile);
  if (ca !== undefined) tls.ca = ca;
  if (cert !== undefined) tls.cert = cert;
  if (key !== undefined) tls.key = key;
  if (files.serverName !== undefined) tls.servername = files.serverName;
  return tls;
}

function within<T>(what: Promise<T>, ms: number, total: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    what,
    new Promise<T>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${total} ms`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
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
