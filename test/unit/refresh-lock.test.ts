import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { ERR_LOCK_COMPROMISED, LockCompromisedError } from "../../src/errors/errors.ts";
import { type HeldLock, type LockEvents, RefreshLocks } from "../../src/store/refresh-lock.ts";
import { tokenKey } from "../../src/store/token-crypto.ts";
import { untilInDir } from "../support/watch-until.ts";

// proper-lockfile's floors: stale >= 2000 ms, update >= 1000 ms.
const TIMING = { staleMs: 2000, updateMs: 1000 };
const KEY = tokenKey("rt_lock-test");
const OTHER_KEY = tokenKey("rt_other");

let dir: string;
let held: HeldLock[];

function locks(events: LockEvents = {}, now?: () => number): RefreshLocks {
  return new RefreshLocks(dir, TIMING, events, now);
}

async function take(instance: RefreshLocks, key = KEY): Promise<HeldLock | null> {
  const lock = await instance.tryAcquire(key);
  if (lock !== null) held.push(lock);
  return lock;
}

async function setMtime(path: string, ms: number): Promise<void> {
  const when = new Date(ms);
  await fsp.utimes(path, when, when);
}

beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), "rg-lock-"));
  held = [];
});

afterEach(async () => {
  for (const lock of held) await lock.release().catch(() => undefined);
  await fsp.rm(dir, { recursive: true, force: true });
});

describe("RefreshLocks", () => {
  it("refuses a second tryAcquire while the lock is held, from the same or another instance", async () => {
    const a = locks();
    const first = await take(a);
    expect(first).not.toBeNull();
    expect(await take(a)).toBeNull();
    expect(await take(locks())).toBeNull();
    await expect(first!.assertHeld()).resolves.toBeUndefined();
  });

  it("locks each key separately", async () => {
    const a = locks();
    expect(await take(a, KEY)).not.toBeNull();
    expect(await take(a, OTHER_KEY)).not.toBeNull();
  });

  it("can be taken again after release, and release removes the lock and owner record", async () => {
    const a = locks();
    const first = await take(a);
    expect(first).not.toBeNull();
    expect((await fsp.readdir(dir)).sort()).toEqual([`${KEY}.lock`, `${KEY}.owner`]);
    await first!.release();
    expect(await fsp.readdir(dir)).toEqual([]);
    const second = await take(locks());
    expect(second).not.toBeNull();
    await expect(second!.assertHeld()).resolves.toBeUndefined();
  });

  it("release is idempotent", async () => {
    const first = await take(locks());
    await first!.release();
    await expect(first!.release()).resolves.toBeUndefined();
    const second = await take(locks());
    // The first holder's second release did not remove the new holder's lock.
    await first!.release();
    await expect(second!.assertHeld()).resolves.toBeUndefined();
    expect(await take(locks())).toBeNull();
  });

  it("lockPath and lockName name the lock directory for a key", () => {
    const a = locks();
    expect(a.lockPath(KEY)).toBe(join(dir, `${KEY}.lock`));
    expect(a.lockName(KEY)).toBe(`${KEY}.lock`);
  });

  it("keeps a held lock fresh with its heartbeat so it never goes stale", async () => {
    // proper-lockfile's heartbeat is its own real timer (every updateMs, at least 1 s) and its
    // staleness test reads the real clock, so this test lives through real beats: it waits on
    // them (each one touches the lock's mtime, which the directory watch reports) until the
    // heartbeat has carried the lock past staleMs, which without it would now be stale.
    const a = locks();
    const taken = Date.now();
    const first = await take(a);
    await untilInDir(dir, async () => (await fsp.stat(a.lockPath(KEY))).mtimeMs > taken + TIMING.staleMs);
    expect(await take(locks())).toBeNull();
    await expect(first!.assertHeld()).resolves.toBeUndefined();
    expect(first!.compromised).toBe(false);
  }, 10_000);

  it("takes over a lock whose mtime is older than staleMs; the old holder's assertHeld then throws", async () => {
    const a = locks();
    const old = await take(a);
    expect(old).not.toBeNull();
    await setMtime(a.lockPath(KEY), Date.now() - TIMING.staleMs - 5_000);

    const newcomer = await take(locks());
    expect(newcomer).not.toBeNull();
    await expect(newcomer!.assertHeld()).resolves.toBeUndefined();

    const error = await old!.assertHeld().then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(LockCompromisedError);
    expect((error as LockCompromisedError).code).toBe(ERR_LOCK_COMPROMISED);
    expect((error as LockCompromisedError).path).toBe(a.lockPath(KEY));
    expect(old!.compromised).toBe(true);
  });

  it("a taken-over holder's release leaves the new holder's lock in place", async () => {
    const a = locks();
    const old = await take(a);
    await setMtime(a.lockPath(KEY), Date.now() - TIMING.staleMs - 5_000);
    const newcomer = await take(locks());
    expect(newcomer).not.toBeNull();

    await old!.release();

    await expect(newcomer!.assertHeld()).resolves.toBeUndefined();
    expect(await take(locks())).toBeNull();
    const owner = JSON.parse(await fsp.readFile(join(dir, `${KEY}.owner`), "utf8")) as { pid: number };
    expect(owner.pid).toBe(process.pid);
  });

  it("the old holder's heartbeat notices the takeover and reports it once", async () => {
    const compromised: string[] = [];
    let reported!: () => void;
    const report = new Promise<void>((resolve) => (reported = resolve));
    const a = locks({
      onCompromised: (key) => {
        compromised.push(key);
        reported();
      },
    });
    const old = await take(a);
    await setMtime(a.lockPath(KEY), Date.now() - TIMING.staleMs - 5_000);
    expect(await take(locks())).not.toBeNull();
    // The report comes from the old holder's next heartbeat (proper-lockfile's real timer, updateMs).
    await report;
    expect(compromised).toEqual([KEY]);
    expect(old!.compromised).toBe(true);
  }, 10_000);

  it("assertHeld throws once the lock directory is gone", async () => {
    const a = locks();
    const lock = await take(a);
    await fsp.rmdir(a.lockPath(KEY));
    await expect(lock!.assertHeld()).rejects.toBeInstanceOf(LockCompromisedError);
  });

  it("removes a lock whose mtime lies far in the future, reports the skew, and then lets it be taken", async () => {
    const skews: { key: string; path: string; aheadMs: number }[] = [];
    const clock = 1_800_000_000_000;
    const a = locks({ onClockSkew: (key, path, aheadMs) => skews.push({ key, path, aheadMs }) }, () => clock);
    await fsp.mkdir(a.lockPath(KEY));
    await fsp.writeFile(join(dir, `${KEY}.owner`), JSON.stringify({ pid: 999_999, since: 0 }));
    await setMtime(a.lockPath(KEY), Math.max(Date.now(), clock) + 3_600_000);

    expect(await take(a)).toBeNull();
    expect(skews).toHaveLength(1);
    expect(skews[0]!.key).toBe(KEY);
    expect(skews[0]!.path).toBe(a.lockPath(KEY));
    expect(skews[0]!.aheadMs).toBeGreaterThan(3_500_000);
    expect(await fsp.readdir(dir)).toEqual([]);

    const lock = await take(a);
    expect(lock).not.toBeNull();
    await expect(lock!.assertHeld()).resolves.toBeUndefined();
  });

  it("leaves a lock only slightly in the future alone (within staleMs)", async () => {
    const skews: number[] = [];
    const a = locks({ onClockSkew: (_key, _path, aheadMs) => skews.push(aheadMs) });
    const holder = await take(locks());
    expect(holder).not.toBeNull();
    await setMtime(a.lockPath(KEY), Date.now() + TIMING.staleMs / 2);
    expect(await take(a)).toBeNull();
    expect(skews).toEqual([]);
    await expect(holder!.assertHeld()).resolves.toBeUndefined();
  });

  it("holders() lists each held key with the holder's pid and the lock's age", async () => {
    const clock = { now: Date.now() };
    const a = locks({}, () => clock.now);
    expect(await a.holders()).toEqual([]);
    await take(a, KEY);
    clock.now += 5_000;
    const holders = await a.holders();
    expect(holders).toHaveLength(1);
    expect(holders[0]!.key).toBe(KEY);
    expect(holders[0]!.pid).toBe(process.pid);
    expect(holders[0]!.ageMs).toBe(5_000);
  });

  it("holders() reports a lock without an owner record by age alone", async () => {
    const a = locks();
    await fsp.mkdir(a.lockPath(OTHER_KEY));
    const holders = await a.holders();
    expect(holders).toHaveLength(1);
    expect(holders[0]!.key).toBe(OTHER_KEY);
    expect(holders[0]!.pid).toBeUndefined();
    expect(holders[0]!.ageMs).toBeGreaterThanOrEqual(0);
  });

  it("prune removes lock directories and orphaned owner records left by crashes, and keeps live ones", async () => {
    const instance = locks();
    const live = await take(instance);
    const leftover = join(dir, `${OTHER_KEY}.lock`);
    await fsp.mkdir(leftover);
    await fsp.writeFile(join(dir, `${OTHER_KEY}.owner`), '{"pid":1}');
    const orphan = join(dir, `${tokenKey("rt_orphan")}.owner`);
    await fsp.writeFile(orphan, '{"pid":2}');
    const hourAgo = Date.now() - 2 * 3_600_000;
    for (const path of [leftover, join(dir, `${OTHER_KEY}.owner`), orphan]) await setMtime(path, hourAgo);
    expect(await instance.prune(3_600_000)).toBe(3);
    expect((await fsp.readdir(dir)).sort()).toEqual([`${KEY}.lock`, `${KEY}.owner`].sort());
    await live!.assertHeld();
  });

  it("holders() is empty when the lock directory does not exist", async () => {
    const missing = new RefreshLocks(join(dir, "missing"), TIMING);
    expect(await missing.holders()).toEqual([]);
  });

  it("the owner record is private (0600) even under umask 0", async () => {
    const saved = process.umask(0);
    try {
      await take(locks());
    } finally {
      process.umask(saved);
    }
    expect((await fsp.stat(join(dir, `${KEY}.owner`))).mode & 0o777).toBe(0o600);
  });
});
