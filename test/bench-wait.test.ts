// docs/redis.md's `npm run bench:wait`, run as written with few rounds: it starts its own primary and
// replica, and reports p50/p99 of lease + entry + release for the file backend, Redis, and Redis
// waiting for one replica (WAIT), in one run.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

describe("npm run bench:wait", () => {
  it("prints the three arms side by side and cleans up its servers", async () => {
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn("npm", ["run", "-s", "bench:wait", "--", "5"], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.once("error", reject);
      child.once("exit", (code) => resolve({ code, stdout, stderr }));
    });
    expect(run.code, run.stderr).toBe(0);
    for (const arm of ["file (guard dir)", "redis, replicaAcks 0", "redis + 1 replica, replicaAcks 1"]) {
      expect(run.stdout).toMatch(new RegExp(`\\| ${arm.replace(/[()+,]/g, "\\$&")}\\s+\\|\\s+\\d+\\.\\d+ \\|\\s+\\d+\\.\\d+ \\|`));
    }
  }, 120_000);
});
