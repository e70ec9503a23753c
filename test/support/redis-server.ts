// A real redis-server per test: a free port on 127.0.0.1, a temp dir, append-only persistence with
// fsync on every write (what the README recommends), and the signals a test needs (SIGKILL and
// restart on the same port and data, SIGSTOP). ensureRedisServer() (the vitest global setup) puts
// the Debian package on a fresh machine when it is missing.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? "redis-server";
export const REDIS_SENTINEL = process.env.REDIS_SENTINEL_BIN ?? "redis-sentinel";

export class RedisServer {
  readonly port: number;
  readonly dir: string;
  /** Extra server arguments, e.g. ["--requirepass", "…"]. */
  readonly extraArgs: readonly string[];
  private child: ChildProcess | null = null;

  constructor(port: number, dir: string, extraArgs: readonly string[] = []) {
    this.port = port;
    this.dir = dir;
    this.extraArgs = extraArgs;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (or restarts) the server on the same port and data dir; resolves once it accepts connections. */
  async start(): Promise<void> {
    const child = spawn(
      REDIS_SERVER,
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        this.dir,
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--protected-mode",
        "no",
        ...this.extraArgs,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    let output = "";
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) {
          child.stdout?.off("data", onData);
          resolve();
        }
      };
      child.stdout?.on("data", onData);
      child.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${output}`)));
    });
    child.stdout?.resume();
    child.stderr?.resume();
  }

  /** Sends `signal` to the server process (SIGKILL: a crash; SIGSTOP/SIGCONT: a frozen server). */
  async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    if (signal !== "SIGKILL" && signal !== "SIGTERM") {
      child.kill(signal);
      return;
    }
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
    this.child = null;
  }

  async stop(): Promise<void> {
    await this.signal("SIGKILL");
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A redis-sentinel process on a free loopback port, monitoring `masterName` at the given primary. */
export class RedisSentinel {
  readonly port: number;
  readonly dir: string;
  private child: ChildProcess | null = null;

  constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts monitoring; a primary is declared down after `downAfterMs` without an answer. */
  async start(primaryPort: number, quorum: number, masterName = "mymaster", downAfterMs = 1000): Promise<void> {
    const config = join(this.dir, "sentinel.conf");
    await writeFile(
      config,
      [
        `port ${this.port}`,
        "bind 127.0.0.1",
        "protected-mode no",
        `dir ${this.dir}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${primaryPort} ${quorum}`,
        `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
        `sentinel failover-timeout ${masterName} 4000`,
        `sentinel parallel-syncs ${masterName} 1`,
        "",
      ].join("\n"),
    );
    const child = spawn(REDIS_SENTINEL, [config], { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    let output = "";
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("+monitor master")) {
          child.stdout?.off("data", onData);
          resolve();
        }
      };
      child.stdout?.on("data", onData);
      child.once("exit", (code) => reject(new Error(`redis-sentinel exited (${code}): ${output}`)));
    });
    child.stdout?.resume();
    child.stderr?.resume();
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

export async function startSentinel(primaryPort: number, quorum: number, masterName?: string): Promise<RedisSentinel> {
  const sentinel = new RedisSentinel(await freePort(), await mkdtemp(join(tmpdir(), "rg-sentinel-")));
  try {
    await sentinel.start(primaryPort, quorum, masterName);
  } catch (error) {
    await sentinel.stop();
    throw error;
  }
  return sentinel;
}

export async function startRedis(extraArgs: readonly string[] = []): Promise<RedisServer> {
  const server = new RedisServer(await freePort(), await mkdtemp(join(tmpdir(), "rg-redis-")), extraArgs);
  await server.start();
  return server;
}

/** A port nothing listens on right now (and, for a test, nothing will: used for "unreachable"). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * Makes sure redis-server can be started. Missing on a fresh machine: installed with apt-get when
 * running as root (CI, containers) — otherwise the error says the one command to run.
 */
export function ensureRedisServer(): void {
  if (hasRedis() && hasBinary(REDIS_SENTINEL)) return;
  const root = process.getuid?.() === 0;
  if (!root) {
    throw new Error(
      "redis-server or redis-sentinel is not installed; the Redis tests need them: sudo apt-get install -y redis-server redis-sentinel (or set REDIS_SERVER_BIN, REDIS_SENTINEL_BIN)",
    );
  }
  process.stderr.write("redis-server or redis-sentinel missing: apt-get install -y redis-server redis-sentinel\n");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "redis-server", "redis-sentinel"], { stdio: "inherit", env });
  // The packages start system services on 6379 and 26379; the tests start their own servers.
  for (const service of ["redis-server", "redis-sentinel"]) {
    try {
      execFileSync("service", [service, "stop"], { stdio: "ignore" });
    } catch {
      // No service manager in a container: nothing was started.
    }
  }
  if (!hasRedis() || !hasBinary(REDIS_SENTINEL))
    throw new Error("apt-get installed redis-server and redis-sentinel but they still cannot be run");
}

function hasRedis(): boolean {
  return hasBinary(REDIS_SERVER);
}

function hasBinary(binary: string): boolean {
  try {
    execFileSync(binary, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
