// The two rules every coordination backend keeps the same way, written once: "first writer wins"
// (an entry is stored only if none is there; a second writer gets the first one's set) and "read,
// else set aside" (a stored value that does not open under the spent token is moved aside, never
// deleted, and reported; the reader then behaves as if nothing were there).
import type { TokenSet } from "../oauth/token-wire.ts";

/**
 * Stores `set` unless an entry exists; returns the stored set (the first writer's). An existing
 * entry that cannot be read is set aside by `read` (which then returns null): one more try to be first.
 */
export async function writeFirstWins(
  set: TokenSet,
  putIfAbsent: () => Promise<boolean>,
  read: () => Promise<TokenSet | null>,
): Promise<TokenSet> {
  if (await putIfAbsent()) return set;
  const winner = await read();
  if (winner === null && (await putIfAbsent())) return set;
  return winner ?? set;
}

/** The opened value, or null once an unreadable one was set aside (`setAside` gets the reason). */
export async function readElseSetAside<T>(
  opened: T | { unreadable: string },
  setAside: (reason: string) => Promise<void>,
): Promise<T | null> {
  if (typeof opened === "object" && opened !== null && "unreadable" in opened) {
    await setAside((opened as { unreadable: string }).unreadable);
    return null;
  }
  return opened as T;
}
