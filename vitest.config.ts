import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    pool: "forks",
    // Two cores: the multi-process and real-host files spawn their own processes.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
