// Wakes waiters when a named file appears or disappears in a directory (a journal entry written,
// a lock released), instead of sleeping out a back-off. One fs.watch per directory per process,
// opened while someone waits; a short poll covers platforms or volumes where watch is silent.
import { type FSWatcher, watch } from "node:fs";

interface Waiter {
  names: ReadonlySet<string>;
  wake: () => void;
}

export class DirWatch {
  private readonly dirs: readonly string[];
  private watchers: FSWatcher[] = [];
  private readonly waiters = new Set<Waiter>();

  constructor(dirs: readonly string[]) {
    this.dirs = dirs;
  }

  /** Resolves when one of `names` changes in a watched directory, or after `timeoutMs`. */
  wait(names: readonly string[], timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        names: new Set(names),
        wake: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          if (this.waiters.size === 0) this.close();
          resolve();
        },
      };
      const timer = setTimeout(waiter.wake, timeoutMs);
      this.waiters.add(waiter);
      this.open();
    });
  }

  private open(): void {
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
      if (name === null || waiter.names.has(name)) waiter.wake();
    }
  }

  private close(): void {
    for (const watcher of this.watchers) watcher.close();
    this.watchers = [];
  }
}
