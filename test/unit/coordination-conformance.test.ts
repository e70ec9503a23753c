// Both backends keep one contract: the conformance suite of test/support/coordination-suite.ts run
// against a guard directory and against a real redis-server started here.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";

import { FileCoordination } from "../../src/store/file-coordination.ts";
import { RedisCoordination } from "../../src/store/redis-coordination.ts";
import { coordinationSuite } from "../support/coordination-suite.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

const TIMING = { retentionMs: 86_400_000 };

coordinationSuite("file (guard directory)", async () => {
  const guardDir = await mkdtemp(join(tmpdir(), "rg-conformance-"));
  return {
    async open(options = {}) {
      const backend = new FileCoordination({ guardDir, staleMs: 2000, updateMs: 1000, ...TIMING, ...options });
      await backend.open();
      return backend;
    },
    async plantGarbage(key) {
      await mkdir(join(guardDir, "journal"), { recursive: true, mode: 0o700 });
      await writeFile(join(guardDir, "journal", `${key}.json`), "not a sealed entry", { mode: 0o600 });
    },
    close: () => rm(guardDir, { recursive: true, force: true }),
  };
});

let redis: RedisServer;
let raw: Redis;
beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
});
afterAll(async () => {
  raw?.disconnect();
  await redis?.stop();
});

coordinationSuite("redis (a real redis-server)", async () => {
  const keyPrefix = `c${randomBytes(4).toString("hex")}:`;
  return {
    async open(options = {}) {
      const backend = new RedisCoordination({
        url: redis.url,
        keyPrefix,
        connectTimeoutMs: 1000,
        commandTimeoutMs: 2000,
        leaseMs: 2000,
        renewMs: 1000,
        fallbackPollMs: 60_000,
        ...TIMING,
        ...options,
      });
      await backend.open();
      return backend;
    },
    async plantGarbage(key) {
      await raw.set(`${keyPrefix}entry:${key}`, "not a sealed entry", "PX", 60_000);
    },
    async close() {
      const keys = await raw.keys(`${keyPrefix}*`);
      if (keys.length > 0) await raw.del(...keys);
    },
  };
});
