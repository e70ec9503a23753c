// One contract, every backend: the conformance suite of the Coordination interface, in the manner
// of async-mutex's mutexSuite(factory). test/unit/coordination-conformance.test.ts runs it against
// the file backend (a guard directory) and a real redis-server; a new backend passes it or is not one.
import { createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { JournalCorruptError } from "../../src/errors/errors.ts";
import type { TokenSet } from "../../src/oauth/token-wire.ts";
import type { Coordination } from "../../src/store/coordination.ts";

export interface BackendOptions {
  onQuarantine?: (error: JournalCorruptError) => void;
}

/** What the suite needs of a backend: fresh instances over one shared store, and a way to damage it. */
export interface CoordinationHarness {
  /** A new, opened instance over the harness's store (as another process would open it). */
  open(options?: BackendOptions): Promise<Coordination>;
  /** Puts a value that is not a sealed entry where `key`'s entry lives. */
  plantGarbage(key: string): Promise<void>;
  close(): Promise<void>;
}

const EXPIRES = Date.now() + 3_600_000;
const set = (refreshToken: string): TokenSet => ({ accessToken: `at-${refreshToken}`, refreshToken, expiresAt: EXPIRES, extra: {} });
const keyOf = (token: string) => createHash("sha256").update(token).digest("hex");

export function coordinationSuite(name: string, factory: () => Promise<CoordinationHarness>): void {
  describe(`Coordination contract: ${name}`, () => {
    let harness: CoordinationHarness;
    let opened: Coordination[];
    const open = async (options?: BackendOptions) => {
      const backend = await harness.open(options);
      opened.push(backend);
      return backend;
    };

    beforeEach(async () => {
      harness = await factory();
      opened = [];
    });

    afterEach(async () => {
      await Promise.all(opened.map((backend) => backend.close()));
      await harness.close();
    });

    it("first writer wins: a second writer, and every reader, gets the first one's set", async () => {
      const [a, b] = [await open(), await open()];
      const key = keyOf("rt-first");
      expect(await a.hasEntry(key)).toBe(false);
      expect((await a.writeEntry(key, "rt-first", set("rt-a"))).refreshToken).toBe("rt-a");
      expect((await b.writeEntry(key, "rt-first", set("rt-b"))).refreshToken).toBe("rt-a");
      expect(await b.hasEntry(key)).toBe(true);
      expect((await b.readEntry(key, "rt-first"))?.refreshToken).toBe("rt-a");
    });

    it("eight concurrent writers store one set, and all of them return it", async () => {
      const writers = await Promise.all(Array.from({ length: 8 }, () => open()));
      const key = keyOf("rt-concurrent");
      const stored = await Promise.all(writers.map((w, i) => w.writeEntry(key, "rt-concurrent", set(`rt-${i}`))));
      expect(new Set(stored.map((s) => s.refreshToken)).size).toBe(1);
    });

    it("read, else set aside: an entry that does not open is moved aside and reported, and the next writer wins", async () => {
      const reports: string[] = [];
      const backend = await open({ onQuarantine: (error) => reports.push(error.message) });
      const key = keyOf("rt-garbage");
      await harness.plantGarbage(key);
      expect(await backend.readEntry(key, "rt-garbage")).toBeNull();
      expect(reports).toHaveLength(1);
      expect((await backend.size()).quarantined).toBe(1);
      expect(await backend.hasEntry(key)).toBe(false);
      expect((await backend.writeEntry(key, "rt-garbage", set("rt-after"))).refreshToken).toBe("rt-after");
    });

    it("an entry read with another token does not open (it is sealed under the spent token)", async () => {
      const backend = await open();
      const key = keyOf("rt-sealed");
      await backend.writeEntry(key, "rt-sealed", set("rt-sealed-next"));
      expect(await backend.readEntry(key, "rt-not-the-one")).toBeNull();
    });

    it("the first spent marker stays, readable with the spent token", async () => {
      const [a, b] = [await open(), await open()];
      const key = keyOf("rt-spent");
      expect(await a.readSpent(key, "rt-spent")).toBeNull();
      await a.markSpent(key, "rt-spent", "refresh_token_reused", "{}");
      await b.markSpent(key, "rt-spent", "invalid_grant", "{}");
      expect((await b.readSpent(key, "rt-spent"))?.code).toBe("refresh_token_reused");
    });

    it("one lock holder at a time; released, the next one takes it; holders() lists it with our pid", async () => {
      const [a, b] = [await open(), await open()];
      const key = keyOf("rt-lock");
      const held = await a.tryLock(key);
      expect(held).not.toBeNull();
      expect(await b.tryLock(key)).toBeNull();
      await held!.assertHeld();
      expect(held!.compromised).toBe(false);
      const holders = await b.holders();
      expect(holders.map((h) => h.pid)).toEqual([process.pid]);
      await held!.release();
      const next = await b.tryLock(key);
      expect(next).not.toBeNull();
      await next!.release();
    });

    it("a waiter wakes when the lock is released and when the entry appears, well before its timeout", async () => {
      const [a, b] = [await open(), await open()];
      const key = keyOf("rt-wait");
      const held = await a.tryLock(key);
      const started = Date.now();
      const woke = b.waitForChange(key, 20_000);
      setTimeout(() => void held!.release(), 100);
      const wake = await woke;
      expect(wake.kind === "timeout").toBe(false);
      const entry = b.waitForEntry(key, 20_000);
      setTimeout(() => void a.writeEntry(key, "rt-wait", set("rt-wait-next")), 100);
      await entry;
      expect(await b.hasEntry(key)).toBe(true);
      expect(Date.now() - started).toBeLessThan(10_000);
    });

    it("size() counts entries and spent markers", async () => {
      const backend = await open();
      await backend.writeEntry(keyOf("rt-s1"), "rt-s1", set("rt-s1-next"));
      await backend.writeEntry(keyOf("rt-s2"), "rt-s2", set("rt-s2-next"));
      await backend.markSpent(keyOf("rt-s3"), "rt-s3", "refresh_token_reused", "{}");
      const size = await backend.size();
      expect(size.entries).toBe(2);
      expect(size.tombstones).toBe(1);
      expect(size.bytes).toBeGreaterThan(0);
    });
  });
}
