// proper-lockfile dates a process's first lock up to a second into the future until it has
// probed the filesystem's mtime precision; that second would be added to every crash takeover.
// A fresh process (the probe cache is per process) must not show it once the guard is open.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const filesModule = fileURLToPath(new URL("../../src/store/file-coordination.ts", import.meta.url));
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe("lock mtime on a process's first lock", () => {
  it("is not dated into the future after the file backend is opened (three fresh processes)", async () => {
    for (let run = 0; run < 3; run += 1) {
      const dir = await mkdtemp(join(tmpdir(), "rg-precision-"));
      dirs.push(dir);
      const script = `
        import { statSync } from "node:fs";
        const { FileCoordination } = await import(${JSON.stringify(filesModule)});
        const files = new FileCoordination({ guardDir: ${JSON.stringify(join(dir, "g"))}, staleMs: 2000, updateMs: 1000, retentionMs: 86400000 });
        await files.open();
        const lock = await files.locks.tryAcquire("a".repeat(64));
        const ahead = statSync(files.locks.lockPath("a".repeat(64))).mtimeMs - Date.now();
        await lock.release();
        console.log(JSON.stringify({ ahead }));
      `;
      const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
      const { ahead } = JSON.parse(out.trim().split("\n").at(-1)!) as { ahead: number };
      expect(ahead).toBeLessThan(50);
    }
  });
});
