import { describe, expect, it } from "vitest";

import { KeyedMutex } from "../../src/core/keyed-mutex.ts";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("KeyedMutex", () => {
  it("runs callers of the same key one at a time, in arrival order", async () => {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    let active = 0;
    let maxActive = 0;
    const task = (name: string) => async () => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      log.push(`start ${name}`);
      await tick();
      await tick();
      log.push(`end ${name}`);
      active -= 1;
      return name;
    };
    const results = await Promise.all(["a", "b", "c"].map((name) => mutex.run("k", task(name))));
    expect(results).toEqual(["a", "b", "c"]);
    expect(maxActive).toBe(1);
    expect(log).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
  });

  it("does not start a second caller of the key until the first finishes", async () => {
    const mutex = new KeyedMutex();
    const gate = deferred();
    let secondStarted = false;
    const first = mutex.run("k", () => gate.promise);
    const second = mutex.run("k", async () => {
      secondStarted = true;
    });
    for (let i = 0; i < 5; i += 1) await tick();
    expect(secondStarted).toBe(false);
    gate.resolve();
    await Promise.all([first, second]);
    expect(secondStarted).toBe(true);
  });

  it("runs callers of different keys concurrently", async () => {
    const mutex = new KeyedMutex();
    const gate = deferred();
    const started: string[] = [];
    const a = mutex.run("a", async () => {
      started.push("a");
      await gate.promise;
    });
    const b = mutex.run("b", async () => {
      started.push("b");
      await gate.promise;
    });
    for (let i = 0; i < 5; i += 1) await tick();
    // Both hold their key at the same time: neither waits for the other.
    expect(started.sort()).toEqual(["a", "b"]);
    expect(mutex.size).toBe(2);
    gate.resolve();
    await Promise.all([a, b]);
  });

  it("empties its map once every caller of a key is done", async () => {
    const mutex = new KeyedMutex();
    expect(mutex.size).toBe(0);
    const gate = deferred();
    const running = Promise.all([
      mutex.run("a", () => gate.promise),
      mutex.run("a", async () => undefined),
      mutex.run("b", async () => undefined),
    ]);
    expect(mutex.size).toBe(2);
    gate.resolve();
    await running;
    expect(mutex.size).toBe(0);
  });

  it("passes a rejection to its caller, frees the key and lets the next caller run", async () => {
    const mutex = new KeyedMutex();
    const failure = new Error("boom");
    const first = mutex.run("k", async () => {
      throw failure;
    });
    const second = mutex.run("k", async () => "next");
    await expect(first).rejects.toBe(failure);
    await expect(second).resolves.toBe("next");
    expect(mutex.size).toBe(0);
  });

  it("keeps a key's entry while a caller still waits on it", async () => {
    const mutex = new KeyedMutex();
    const gate = deferred();
    const first = mutex.run("k", () => gate.promise);
    let secondRan = false;
    const second = mutex.run("k", async () => {
      secondRan = true;
    });
    await tick();
    expect(mutex.size).toBe(1);
    gate.resolve();
    await first;
    await second;
    expect(secondRan).toBe(true);
    expect(mutex.size).toBe(0);
  });
});
