// Marks what runs inside the guard's fetch wrapper (AsyncLocalStorage, one per thread), so the
// token-POST observer can tell a request the wrapper let through from one that bypassed it.
import { AsyncLocalStorage } from "node:async_hooks";

const MARK = Symbol.for("openclaw-refresh-guard.wrapper-mark");

/** This thread's mark (one instance however many copies of the plugin are loaded). */
export function wrapperMark(): AsyncLocalStorage<true> {
  const holder = globalThis as { [MARK]?: AsyncLocalStorage<true> };
  holder[MARK] ??= new AsyncLocalStorage<true>();
  return holder[MARK];
}

/** Runs `fn` (and everything it starts) as seen by the wrapper. */
export function withinWrapper<T>(fn: () => T): T {
  return wrapperMark().run(true, fn);
}
