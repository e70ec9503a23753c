import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { DirWatch } from "../../src/store/dir-watch.ts";

let root: string;

// DirWatch's only timer is each waiter's timeout (setTimeout); the watch itself is fs.watch, real
// I/O. Faking just setTimeout/clearTimeout means a timeout fires only when a test advances the
// clock: a waiter that resolves without that was woken by the watch, and one that must wake on its
// timeout does so at the exact millisecond.
beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-watch-"));
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
});

afterEach(async () => {
  vi.useRealTimers();
  await fsp.rm(root, { recursive: true, force: true });
});

function watchers(watch: DirWatch): unknown[] {
  return (watch as unknown as { watchers: unknown[] }).watchers;
}

/** Resolves once the watch has reported `name` (and handed it to its waiters). */
function delivered(watch: DirWatch, name: string): Promise<void> {
  const target = watch as unknown as { notify: (filename: string | Buffer | null) => void };
  const notify = target.notify.bind(watch);
  return new Promise((resolve) => {
    target.notify = (filename) => {
      notify(filename);
      if (filename !== null && String(filename) === name) resolve();
    };
  });
}

describe("DirWatch", () => {
  it("wakes a waiter as soon as a watched name appears, long before its timeout", async () => {
    const watch = new DirWatch([root]);
    const waiting = watch.wait(["entry.json"], 10_000);
    await fsp.writeFile(join(root, "entry.json"), "x");
    // No fake time passes: only the watch can have woken it, and its timeout was cleared.
    await waiting;
    expect(vi.getTimerCount()).toBe(0);
  });

  it("wakes a waiter when a watched name disappears", async () => {
    const lock = join(root, "k.lock");
    await fsp.mkdir(lock);
    const watch = new DirWatch([root]);
    const waiting = watch.wait(["k.lock"], 10_000);
    await fsp.rmdir(lock);
    await waiting;
    expect(vi.getTimerCount()).toBe(0);
  });

  it("ignores changes to other names and wakes on the timeout instead", async () => {
    const watch = new DirWatch([root]);
    const seen = delivered(watch, "unrelated.json");
    let woke = false;
    const waiting = watch.wait(["entry.json"], 400).then(() => {
      woke = true;
    });
    await fsp.writeFile(join(root, "unrelated.json"), "x");
    await seen;
    expect(woke).toBe(false);
    await vi.advanceTimersByTimeAsync(399);
    expect(woke).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(woke).toBe(true);
    await waiting;
  });

  it("watches every directory it was given", async () => {
    const second = join(root, "second");
    await fsp.mkdir(second);
    const watch = new DirWatch([root, second]);
    const waiting = watch.wait(["b.lock"], 10_000);
    await fsp.mkdir(join(second, "b.lock"));
    await waiting;
    expect(vi.getTimerCount()).toBe(0);
  });

  it("still wakes on the timeout when a directory cannot be watched", async () => {
    const watch = new DirWatch([join(root, "missing")]);
    let woke = false;
    const waiting = watch.wait(["x"], 100).then(() => {
      woke = true;
    });
    expect(watchers(watch)).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(99);
    expect(woke).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(woke).toBe(true);
    await waiting;
  });

  it("wakes only the waiters whose names changed", async () => {
    const watch = new DirWatch([root]);
    const woke: string[] = [];
    const a = watch.wait(["a"], 800).then(() => woke.push("a"));
    const b = watch.wait(["b"], 800).then(() => woke.push("b"));
    await fsp.writeFile(join(root, "a"), "x");
    await a;
    expect(woke).toEqual(["a"]);
    await vi.advanceTimersByTimeAsync(800);
    await b;
    expect(woke).toEqual(["a", "b"]);
  });

  it("opens its watchers while someone waits and closes them when nobody does", async () => {
    const watch = new DirWatch([root]);
    expect(watchers(watch)).toHaveLength(0);
    const first = watch.wait(["a"], 5_000);
    const second = watch.wait(["b"], 5_000);
    // One watcher per directory, shared by both waiters.
    expect(watchers(watch)).toHaveLength(1);
    await fsp.writeFile(join(root, "a"), "x");
    await first;
    expect(watchers(watch)).toHaveLength(1);
    await fsp.writeFile(join(root, "b"), "x");
    await second;
    expect(watchers(watch)).toHaveLength(0);
  });

  it("says why a wait ended: the name that changed, or the timeout", async () => {
    const watch = new DirWatch([root]);
    const waiting = watch.wait(["entry.json", "k.lock"], 10_000);
    await fsp.writeFile(join(root, "entry.json"), "x");
    expect(await waiting).toEqual({ kind: "event", name: "entry.json" });
    const timedOut = watch.wait(["other"], 50);
    await vi.advanceTimersByTimeAsync(50);
    expect(await timedOut).toEqual({ kind: "timeout" });
  });

  it("with lingerMs keeps its watchers open between waits, and closes them once nobody waited that long", async () => {
    const watch = new DirWatch([root], { lingerMs: 150 });
    const first = watch.wait(["a"], 20);
    await vi.advanceTimersByTimeAsync(20);
    await first;
    expect(watch.watching).toBe(true);
    const watcher = watchers(watch)[0];
    const second = watch.wait(["a"], 20);
    await vi.advanceTimersByTimeAsync(20);
    await second;
    // The same watcher served the second wait: nothing was closed and reopened.
    expect(watchers(watch)[0]).toBe(watcher);
    // Still open just before the linger runs out, closed once it has.
    await vi.advanceTimersByTimeAsync(149);
    expect(watchers(watch)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(watchers(watch)).toHaveLength(0);
    expect(watch.watching).toBe(false);
  });

  it("is not watching where a directory cannot be watched", async () => {
    const watch = new DirWatch([root, join(root, "missing")], { lingerMs: 1000 });
    const waiting = watch.wait(["x"], 20);
    await vi.advanceTimersByTimeAsync(20);
    await waiting;
    expect(watch.watching).toBe(false);
  });
});
