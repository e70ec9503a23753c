// vitest global setup: what the whole suite needs on the machine before any test file runs.
import { ensureRedisServer } from "./redis-server.ts";

export default function setup(): void {
  ensureRedisServer();
}
