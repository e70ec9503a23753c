// Waiting on the filesystem without sleeping: re-check a condition each time fs.watch reports a
// change in a directory. Events are buffered from the moment the watch opens, so a change that
// lands between the first check and the first wait is not missed. No deadline of its own: the
// test's timeout bounds it.
import { on } from "node:events";
import { watch } from "node:fs";

/** Resolves once `holds()` is true, checking now and after every change fs.watch reports in `dir`. */
export async function untilInDir(dir: string, holds: () => Promise<boolean>): Promise<void> {
  const watcher = watch(dir);
  const stop = new AbortController();
  const changes = on(watcher, "change", { signal: stop.signal });
  try {
    if (await holds()) return;
    for await (const _change of changes) {
      if (await holds()) return;
    }
  } finally {
    stop.abort();
    watcher.close();
  }
}
