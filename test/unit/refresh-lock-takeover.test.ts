// Proven-death takeover with real processes: a lock whose holder is provably gone (killed, a
// zombie, or its pid reused) is taken over at once, long before the heartbeat goes stale; a holder
// that may still run (stopped, in another pid namespace, from another boot, or a record without
// the identity fields) is waited out for staleMs exactly as before. Breakers take turns: one wins.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { promises as fsp, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { proveDead, selfIdentity } from "../../src/store/process-identity.ts";
import { type HeldLock, RefreshLocks } from "../../src/store/refresh-lock.ts";
import { tokenKey } from "../../src/store/token-crypto.ts";

const lockModule = fileURLToPath(new URL("../../src/store/refresh-lock.ts", import.meta.url));
const TIMING = { staleMs: 2000, updateMs: 1000 };
const KEY = tokenKey("rt_takeover-test");
const hasProc = selfIdentity().boot !== undefined;

let dir: string;
let children: ChildProcess[];
let held: HeldLock[];

beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), "rg-takeover-"));
  children = [];
  held = [];
});

afterEach(async () => {
  for (const lock of held) await lock.release().catch(() => undefined);
  for (const child of children) {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A script that takes the lock (or waits to), prints `held <pid>` and keeps it (or `none`). */
function holderScript(mode: "hold" | "contend"): string {
  return `
    const { RefreshLocks } = await import(${JSON.stringify(lockModule)});
    const locks = new RefreshLocks(${JSON.stringify(dir)}, ${JSON.stringify(TIMING)});
    await locks.primeMtimePrecision();
    ${
      mode === "hold"
        ? `const lock = await locks.tryAcquire(${JSON.stringify(KEY)});
           console.log(lock === null ? "none" : "held " + process.pid);`
        : `console.log("ready " + process.pid);
           const until = Date.now() + 1500;
           let lock = null;
           while (lock === null && Date.now() < until) {
             lock = await locks.tryAcquire(${JSON.stringify(KEY)});
             if (lock === null) await new Promise((r) => setTimeout(r, 2));
           }
           console.log(lock === null ? "none" : "won " + process.pid);`
    }
    setInterval(() => undefined, 1 << 30);
  `;
}

/** Spawns `argv` (its own process group) and resolves with the first line matching `pattern`. */
function start(argv: string[], pattern: RegExp): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "inherit"], detached: true });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((candidate) => pattern.test(candidate));
      if (line !== undefined) resolve({ child, line });
    });
    child.on("exit", (code) => reject(new Error(`exited ${code} before "${pattern}": ${out}`)));
  });
}

const node = (mode: "hold" | "contend") => [process.execPath, "--input-type=module", "-e", holderScript(mode)];

async function holder(prefix: string[] = []): Promise<{ child: ChildProcess; pid: number }> {
  const { child, line } = await start([...prefix, ...node("hold")], /^(held \d+|none)$/);
  expect(line).toMatch(/^held /);
  return { child, pid: Number(line.split(" ")[1]) };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve())));
}

/** Tries the lock every 20 ms for `ms`; the time it took to get it, or null. */
async function tryFor(locks: RefreshLocks, ms: number): Promise<number | null> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    const lock = await locks.tryAcquire(KEY);
    if (lock !== null) {
      held.push(lock);
      return Date.now() - started;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return null;
}

function waiter(): { locks: RefreshLocks; proofs: string[] } {
  const proofs: string[] = [];
  return { locks: new RefreshLocks(dir, TIMING, { onDeadHolder: (_key, _path, proof) => proofs.push(proof) }), proofs };
}

async function rewriteOwner(change: (owner: Record<string, unknown>) => void): Promise<void> {
  const path = join(dir, `${KEY}.owner`);
  const owner = JSON.parse(await fsp.readFile(path, "utf8")) as Record<string, unknown>;
  change(owner);
  await fsp.writeFile(path, JSON.stringify(owner));
}

describe.runIf(process.platform === "linux" && hasProc)("proven-death takeover", () => {
  it("records boot id, pid namespace, pid, start time and the lock's own identity", async () => {
    const { pid } = await holder();
    const owner = JSON.parse(await fsp.readFile(join(dir, `${KEY}.owner`), "utf8"));
    const stat = await fsp.lstat(join(dir, `${KEY}.lock`));
    expect(owner).toMatchObject({
      pid,
      boot: readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(),
      pidns: selfIdentity().pidns,
      start: readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[19],
      lock: { ino: stat.ino, born: stat.birthtimeMs },
    });
  });

  it("dead (SIGKILL): taken over at once, not after staleMs", async () => {
    const { child } = await holder();
    const { locks, proofs } = waiter();
    expect(await locks.tryAcquire(KEY)).toBeNull();
    child.kill("SIGKILL");
    await exited(child);
    const ms = await tryFor(locks, 1000);
    expect(ms).not.toBeNull();
    expect(ms!).toBeLessThan(500);
    expect(proofs).toEqual(["dead"]);
  });

  it("zombie (killed, its parent never reaps it): taken over at once", async () => {
    // sh starts the holder in the background, then becomes `sleep`, which never waits for children.
    const script = `${[process.execPath, "--input-type=module", "-e"].map((arg) => `'${arg}'`).join(" ")} "$HOLDER" & exec sleep 600`;
    const shell = spawn("sh", ["-c", script], {
      stdio: ["ignore", "pipe", "inherit"],
      detached: true,
      env: { ...process.env, HOLDER: holderScript("hold") },
    });
    children.push(shell);
    const pid = await new Promise<number>((resolve) => {
      let out = "";
      shell.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const match = /held (\d+)/.exec(out);
        if (match) resolve(Number(match[1]));
      });
    });
    const { locks, proofs } = waiter();
    expect(await locks.tryAcquire(KEY)).toBeNull();
    process.kill(pid, "SIGKILL");
    const started = Date.now();
    while (!/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"))) {
      expect(Date.now() - started).toBeLessThan(2000);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const ms = await tryFor(locks, 1000);
    expect(ms).not.toBeNull();
    expect(ms!).toBeLessThan(500);
    expect(proofs).toEqual(["zombie"]);
  });

  it("reused pid (a live process whose start time differs from the record's): taken over at once", async () => {
    const { pid } = await holder();
    await rewriteOwner((owner) => {
      owner.start = String(Number(owner.start) - 1);
    });
    const { locks, proofs } = waiter();
    expect(await tryFor(locks, 300)).not.toBeNull();
    expect(proofs).toEqual(["reused"]);
    expect(() => process.kill(pid, 0)).not.toThrow();
  });

  it("stopped (SIGSTOP) is alive: no takeover before the heartbeat is stale", async () => {
    const { child } = await holder();
    child.kill("SIGSTOP");
    try {
      const { locks, proofs } = waiter();
      expect(await tryFor(locks, 1200)).toBeNull();
      expect(proofs).toEqual([]);
      expect(proveDead(JSON.parse(await fsp.readFile(join(dir, `${KEY}.owner`), "utf8")))).toBeNull();
    } finally {
      child.kill("SIGCONT");
    }
  });

  it("a record from another boot is never proof, even when its pid is gone: heartbeat only", async () => {
    const { child } = await holder();
    await rewriteOwner((owner) => {
      owner.boot = "00000000-0000-0000-0000-000000000000";
    });
    child.kill("SIGKILL");
    await exited(child);
    const { locks, proofs } = waiter();
    const ms = await tryFor(locks, 4000);
    expect(ms).not.toBeNull();
    // The heartbeat was at most updateMs old at the kill: staleMs − updateMs at the earliest.
    expect(ms!).toBeGreaterThan(TIMING.staleMs - TIMING.updateMs - 100);
    expect(proofs).toEqual([]);
  });

  it("a record without identity fields (written where there is no /proc) is never proof", async () => {
    const { child } = await holder();
    await rewriteOwner((owner) => {
      delete owner.boot;
      delete owner.pidns;
      delete owner.start;
    });
    child.kill("SIGKILL");
    await exited(child);
    const { locks, proofs } = waiter();
    expect(await tryFor(locks, 600)).toBeNull();
    expect(proofs).toEqual([]);
  });

  it("a record naming an earlier lock directory never condemns the current one", async () => {
    const { pid } = await holder();
    await rewriteOwner((owner) => {
      owner.start = "1";
      owner.lock = { ino: 1, born: 1 };
    });
    const { locks, proofs } = waiter();
    expect(await tryFor(locks, 600)).toBeNull();
    expect(proofs).toEqual([]);
    expect(() => process.kill(pid, 0)).not.toThrow();
  });

  it("breakers take turns: of four processes racing for a dead holder's lock, exactly one wins", async () => {
    const { child } = await holder();
    const racers = await Promise.all([0, 1, 2, 3].map(() => start(node("contend"), /^ready \d+$/)));
    const results = racers.map(
      ({ child: racer }) =>
        new Promise<string>((resolve) => {
          let out = "";
          racer.stdout!.on("data", (chunk: Buffer) => {
            out += chunk.toString();
            const line = out.split("\n").find((candidate) => /^(won \d+|none)$/.test(candidate));
            if (line !== undefined) resolve(line);
          });
          // A racer that dies says so, instead of leaving the test to its timeout.
          racer.once("exit", (code, signal) => resolve(`exited ${code ?? signal}: ${out}`));
        }),
    );
    child.kill("SIGKILL");
    const lines = await Promise.all(results);
    expect(lines.filter((line) => line.startsWith("exited"))).toEqual([]);
    expect(lines.filter((line) => line.startsWith("won"))).toHaveLength(1);
  });

  const canUnshare = (() => {
    try {
      execFileSync("unshare", ["--pid", "--fork", "--mount-proc", "true"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  })();

  it.runIf(canUnshare)("another pid namespace: a live holder is never taken over, a dead one only after staleMs", async () => {
    const { child, pid } = await holder(["unshare", "--pid", "--fork", "--mount-proc"]);
    // Inside its namespace the holder is pid 1 or so; in ours that pid is someone else (or nobody).
    const owner = JSON.parse(await fsp.readFile(join(dir, `${KEY}.owner`), "utf8"));
    expect(owner.pidns).not.toBe(selfIdentity().pidns);
    expect(owner.pid).toBe(pid);
    const { locks, proofs } = waiter();
    expect(await tryFor(locks, 1200)).toBeNull();
    process.kill(-child.pid!, "SIGKILL");
    await exited(child);
    const ms = await tryFor(locks, 4000);
    expect(ms).not.toBeNull();
    expect(proofs).toEqual([]);
  });
});
