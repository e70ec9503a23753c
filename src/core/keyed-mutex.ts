// In-process single flight: callers with the same key run one at a time (async-mutex), so the
// second caller finds what the first one wrote instead of redeeming again. Idle keys are dropped.
import { Mutex } from "async-mutex";

export class KeyedMutex {
  private readonly entries = new Map<string, { mutex: Mutex; users: number }>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { mutex: new Mutex(), users: 0 };
      this.entries.set(key, entry);
    }
    entry.users += 1;
    try {
      return await entry.mutex.runExclusive(fn);
    } finally {
      entry.users -= 1;
      if (entry.users === 0) this.entries.delete(key);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
