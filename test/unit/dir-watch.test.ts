import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { DirWatch } from "../../src/store/dir-watch.ts";

let root: string;

beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-watch-"));
});

afterEach(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

async function timed(promise: Promise<unknown>): Promise<number> {
  const started = performance.now();
  await promise;
  return performance.now() - started;
}

function watchers(watch: DirWatch): unknown[] {
  return (watch as unknown as { watchers: unknown[] }).watchers;
}

describe("DirWatch", () => {
  it("wakes a waiter as soon as a watched name appears, long before its timeout", async () => {
    const watch = new DirWatch([root]);
    const waiting = watch.wait(["entry.json"], 10_000);
    setTimeout(() => void fsp.writeFile(join(root, "entry.json"), "x"), 50);
    expect(await timed(waiting)).toBeLessThan(2_000);
  });

  it("wakes a waiter when a watched name disappears", async () => {
    const lock = join(root, "k.lock");
    await fsp.mkdir(lock);
    const watch = new DirWatch([root]);
    const waiting = watch.wait(["k.lock"], 10_000);
    setTimeout(() => void fsp.rmdir(lock), 50);
    expect(await timed(waiting)).toBeLessThan(2_000);
  });

  it("ignores changes to other names and wakes on the timeout instead", async () => {
    const watch = new DirWatch([root]);
    const waiting = watch.wait(["entry.json"], 400);
    setTimeout(() => void fsp.writeFile(join(root, "unrelated.json"), "x"), 50);
    expect(await timed(waiting)).toBeGreaterThanOrEqual(350);
  });

  it("watches every directory it was given", async () => {
    const second = join(root, "second");
    await fsp.mkdir(second);
    const watch = new DirWatch([root, second]);
    const waiting = watch.wait(["b.lock"], 10_000);
    setTimeout(() => void fsp.mkdir(join(second, "b.lock")), 50);
    expect(await timed(waiting)).toBeLessThan(2_000);
  });

  it("still wakes on the timeout when a directory cannot be watched", async () => {
    const watch = new DirWatch([join(root, "missing")]);
    expect(await timed(watch.wait(["x"], 100))).toBeGreaterThanOrEqual(90);
  });

  it("wakes only the waiters whose names changed", async () => {
    const watch = new DirWatch([root]);
    const woke: string[] = [];
    const a = watch.wait(["a"], 800).then(() => woke.push("a"));
    const b = watch.wait(["b"], 800).then(() => woke.push("b"));
    await new Promise((resolve) => setTimeout(resolve, 30));
    await fsp.writeFile(join(root, "a"), "x");
    await a;
    expect(woke).toEqual(["a"]);
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
    setTimeout(() => void fsp.writeFile(join(root, "entry.json"), "x"), 30);
    expect(await waiting).toEqual({ kind: "event", name: "entry.json" });
    expect(await watch.wait(["other"], 50)).toEqual({ kind: "timeout" });
  });

  it("with lingerMs keeps its watchers open between waits, and closes them once nobody waited that long", async () => {
    const watch = new DirWatch([root], { lingerMs: 150 });
    await watch.wait(["a"], 20);
    expect(watch.watching).toBe(true);
    const first = watchers(watch)[0];
    await watch.wait(["a"], 20);
    // The same watcher served the second wait: nothing was closed and reopened.
    expect(watchers(watch)[0]).toBe(first);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(watchers(watch)).toHaveLength(0);
    expect(watch.watching).toBe(false);
  });

  it("is not watching where a directory cannot be watched", async () => {
    const watch = new DirWatch([root, join(root, "missing")], { lingerMs: 1000 });
    await watch.wait(["x"], 20);
    expect(watch.watching).toBe(false);
  });
});
