import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Installs redis-server on a fresh machine (as root) so the Redis tests can start their own.
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    pool: "forks",
    // Two cores: the multi-process and real-host files spawn their own processes.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
