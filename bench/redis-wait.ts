// The cost of WAIT: one refresh's coordination (take the lease, write the sealed entry, release)
// on the file backend, on Redis without replicas acknowledging, and on Redis waiting for one
// replica (replicaAcks 1, what Sentinel setups default to), in one run on this machine against a
// real redis-server primary and replica on loopback. Run: node bench/redis-wait.ts [rounds]
// (kept apart from bench/bench.ts; it starts and stops its own servers).
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Redis } from "ioredis";

import type { Coordination } from "../src/store/coordination.ts";
import { FileCoordination } from "../src/store/file-coordination.ts";
import { RedisCoordination } from "../src/store/redis-coordination.ts";
import { startRedis } from "../test/support/redis-server.ts";

const rounds = Number(process.argv[2] ?? 300);
const EXPIRES = Date.now() + 3_600_000;

async function measure(backend: Coordination, label: string): Promise<string> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i += 1) {
    const token = `rt-${label}-${i}-${Math.random()}`;
    const key = createHash("sha256").update(token).digest("hex");
    const started = performance.now();
    const held = await backend.tryLock(key);
    if (held === null) throw new Error("lock not free");
    await held.assertHeld();
    await backend.writeEntry(key, token, { accessToken: "at", refreshToken: `${token}-next`, expiresAt: EXPIRES, extra: {} });
    await held.release();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => (times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0).toFixed(2);
  return `| ${label.padEnd(34)} | ${at(0.5).padStart(6)} | ${at(0.99).padStart(6)} |`;
}

const primary = await startRedis();
const replica = await startRedis(["--replicaof", "127.0.0.1", String(primary.port)]);
const guardDir = await mkdtemp(join(tmpdir(), "rg-bench-wait-"));
const opened: Coordination[] = [];
try {
  const redis = async (replicaAcks: number) => {
    const backend = new RedisCoordination({
      url: primary.url,
      keyPrefix: `bench${replicaAcks}:`,
      connectTimeoutMs: 2000,
      commandTimeoutMs: 5000,
      leaseMs: 10_000,
      renewMs: 5000,
      retentionMs: 3_600_000,
      replicaAcks,
    });
    await backend.open();
    opened.push(backend);
    return backend;
  };
  const file = new FileCoordination({ guardDir, staleMs: 10_000, updateMs: 5000, retentionMs: 3_600_000 });
  await file.open();
  // Let the replica finish its first sync before measuring.
  const probe = new Redis(primary.url);
  for (let i = 0; i < 100 && !/slave0:.*state=online/.test(await probe.info("replication")); i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  probe.disconnect();
  const first = await redis(1);
  await measure(first, "warm-up");
  const rows = [
    await measure(file, "file (guard dir)"),
    await measure(await redis(0), "redis, replicaAcks 0"),
    await measure(first, "redis + 1 replica, replicaAcks 1"),
  ];
  console.log(`lease + entry + release, ${rounds} rounds each (ms)\n`);
  console.log("| backend                            |    p50 |    p99 |");
  console.log("| ---------------------------------- | -----: | -----: |");
  for (const row of rows) console.log(row);
} finally {
  await Promise.all(opened.map((backend) => backend.close()));
  await replica.stop();
  await primary.stop();
  await rm(guardDir, { recursive: true, force: true });
}
