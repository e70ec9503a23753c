// Wakes waiters when a named file appears or disappears in a directory (a journal entry written,
// a lock released), instead of sleeping out a back-off. One fs.watch per directory per process,
// opened while someone waits (and, with `lingerMs`, kept that much longer for the next wait); a
// short poll covers platforms or volumes where watch is silent.
import { type FSWatcher, watch } from "node:fs";

interface Waiter {
  names: ReadonlySet<string>;
  wake: (wake: Wake) => void;
}

/** Why a wait ended: one of its names changed (`name`; null if the platform did not say which), or its timeout. */
export type Wake = { kind: "event"; name: string | null } | { kind: "timeout" };

export class DirWatch {
  private readonly dirs: readonly string[];
  private readonly lingerMs: number;
  private watchers: FSWatcher[] = [];
  private readonly waiters = new Set<Waiter>();
  private lingering: NodeJS.Timeout | null = null;

  /** `lingerMs`: keep the watchers open this long after the last waiter left (0: close at once). */
  constructor(dirs: readonly string[], options: { lingerMs?: number } = {}) {
    this.dirs = dirs;
    this.lingerMs = options.lingerMs ?? 0;
  }

  /** True while every directory has a working watch: a timeout then means none of the names changed. */
  get watching(): boolean {
    return this.watchers.length === this.dirs.length;
  }

  /** Resolves when one of `names` changes in a watched directory, or after `timeoutMs`. */
  wait(names: readonly string[], timeoutMs: number): Promise<Wake> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        names: new Set(names),
        wake: (wake) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          if (this.waiters.size === 0) this.idle();
          resolve(wake);
        },
      };
      const timer = setTimeout(() => waiter.wake({ kind: "timeout" }), timeoutMs);
      this.waiters.add(waiter);
      this.open();
    });
  }

  private open(): void {
    if (this.lingering !== null) {
      clearTimeout(this.lingering);
      this.lingering = null;
    }
    if (this.watchers.length > 0) return;
    for (const dir of this.dirs) {
      try {
        const watcher = watch(dir, { persistent: false }, (_event, filename) => this.notify(filename));
        watcher.on("error", () => this.close());
        this.watchers.push(watcher);
      } catch {
        // No watch here (e.g. some network volumes): the poll timeout still wakes the waiter.
      }
    }
  }

  private notify(filename: string | Buffer | null): void {
    const name = filename === null ? null : String(filename);
    for (const waiter of [...this.waiters]) {
      if (name === null || waiter.names.has(name)) waiter.wake({ kind: "event", name });
    }
  }

  private idle(): void {
    if (this.lingerMs <= 0) {
      this.close();
      return;
    }
    this.lingering = setTimeout(() => {
      this.lingering = null;
      if (this.waiters.size === 0) this.close();
    }, this.lingerMs);
    this.lingering.unref();
  }

  private close(): void {
    for (const watcher of this.watchers) watcher.close();
    this.watchers = [];
  }
}
