// A real npm registry for the install tests: Verdaccio (test/support/registry-server.cjs) in its own
// process on a free 127.0.0.1 port, storage in a temp dir, public npm as uplink for everything but
// this package. Also the previous release packed from git, and a ClawHub stand-in that knows no
// package (what clawhub.ai answers for this one), for 2026.4.x hosts that ask ClawHub first.
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";

import { REPO_ROOT } from "./install-host.ts";

const execFileP = promisify(execFile);

export interface LocalRegistry {
  /** http://127.0.0.1:<port>/ */
  url: string;
  /** An npm userconfig that points at the registry and carries a (dummy) publish token. */
  userconfig: string;
  /** Env for npm and for a host's npm runs: this registry, nothing from the user's ~/.npmrc. */
  npmEnv: NodeJS.ProcessEnv;
  publish(tgz: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startRegistry(): Promise<LocalRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "rg-registry-"));
  const child = spawn(process.execPath, [join(REPO_ROOT, "test", "support", "registry-server.cjs"), dir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`registry did not start in 60 s:\n${stderr}`)), 60_000);
    lines.once("line", (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { url: string }).url);
      } catch {
        reject(new Error(`registry printed ${line}\n${stderr}`));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`registry exited ${code}:\n${stderr}`));
    });
  });
  // Drain the rest so the child never blocks on a full pipe.
  child.stdout.resume();
  const userconfig = join(dir, "npmrc");
  await writeFile(userconfig, `registry=${url}\n${url.replace(/^https?:/, "")}:_authToken=local-test-token\n`);
  const npmEnv: NodeJS.ProcessEnv = {
    npm_config_registry: url,
    npm_config_userconfig: userconfig,
    npm_config_update_notifier: "false",
    npm_config_fund: "false",
    npm_config_audit: "false",
  };
  return {
    url,
    userconfig,
    npmEnv,
    async publish(tgz: string): Promise<void> {
      await execFileP("npm", ["publish", tgz, "--tag", "latest"], { env: { ...process.env, ...npmEnv }, cwd: dir });
    },
    async stop(): Promise<void> {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ClawHubStandIn {
  url: string;
  /** Paths asked, in order. */
  requests: string[];
  stop(): Promise<void>;
}

/** Answers 404 to everything, as clawhub.ai does for a package it does not list. */
export async function startClawHubWithoutPackage(): Promise<ClawHubStandIn> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "not found" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * The package as it was released at `commit` (0.1.0: 6c79157), built and packed the way it was
 * then (`npm pack` of the checkout, manifest untouched). Uses this checkout's node_modules.
 */
export async function packReleaseFromGit(commit: string): Promise<{ tgz: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "rg-release-"));
  const src = join(dir, "src-tree");
  await mkdir(src);
  const { stdout } = await execFileP("git", ["archive", "--format=tar", commit], {
    cwd: REPO_ROOT,
    encoding: "buffer",
    maxBuffer: 64 * 1024 * 1024,
  });
  await new Promise<void>((resolve, reject) => {
    const tar = spawn("tar", ["-x", "-C", src], { stdio: ["pipe", "ignore", "inherit"] });
    tar.once("error", reject);
    tar.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`tar exited ${code}`))));
    tar.stdin.end(stdout);
  });
  await symlink(join(REPO_ROOT, "node_modules"), join(src, "node_modules"));
  await execFileP(process.execPath, [join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], { cwd: src });
  const packed = await execFileP("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: src });
  const [info] = JSON.parse(packed.stdout) as { filename: string }[];
  if (info === undefined) throw new Error(`npm pack printed nothing: ${packed.stdout}`);
  return { tgz: join(dir, info.filename), cleanup: () => rm(dir, { recursive: true, force: true }) };
}
