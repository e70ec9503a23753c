// A real redis-server per test: a free port on 127.0.0.1, a temp dir, append-only persistence with
// fsync on every write (what the README recommends), and the signals a test needs (SIGKILL and
// restart on the same port and data, SIGSTOP). ensureRedisServer() (the vitest global setup) puts
// the Debian package on a fresh machine when it is missing.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? "redis-server";

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
  if (hasRedis()) return;
  const root = process.getuid?.() === 0;
  if (!root) {
    throw new Error(
      "redis-server is not installed; the Redis tests need it: sudo apt-get install -y redis-server (or set REDIS_SERVER_BIN)",
    );
  }
  process.stderr.write("redis-server missing: apt-get install -y redis-server\n");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "redis-server"], { stdio: "inherit", env });
  // The package starts a system service on 6379; the tests start their own servers.
  try {
    execFileSync("service", ["redis-server", "stop"], { stdio: "ignore" });
  } catch {
    // No service manager in a container: nothing was started.
  }
  if (!hasRedis()) throw new Error("apt-get installed redis-server but it still cannot be run");
}

function hasRedis(): boolean {
  try {
    execFileSync(REDIS_SERVER, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
