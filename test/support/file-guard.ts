// A RefreshGuard on the file backend, built the way the plugin builds it (plugin/coordination-factory.ts),
// with the backend's journal and locks at hand for tests that look inside the guard directory.

import { RefreshGuard, type RefreshGuardOptions } from "../../src/core/refresh-guard.ts";
import { DEFAULT_TIMING } from "../../src/core/timing.ts";
import { openFileCoordination } from "../../src/plugin/coordination-factory.ts";
import type { Journal } from "../../src/store/journal.ts";
import type { RefreshLocks } from "../../src/store/refresh-lock.ts";

export type FileGuardOptions = Omit<RefreshGuardOptions, "coordination"> & { guardDir: string };

export type FileGuard = RefreshGuard & { readonly journal: Journal; readonly locks: RefreshLocks };

/** Opens the guard directory (checked, created 0700) and a guard on it. */
export async function openFileGuard(options: FileGuardOptions): Promise<FileGuard> {
  const { guardDir, ...rest } = options;
  const timing = { ...DEFAULT_TIMING, ...rest.timing };
  const files = await openFileCoordination(guardDir, timing, {
    provider: rest.provider,
    onEvent: rest.onEvent ?? (() => undefined),
    ...(rest.now ? { now: rest.now } : {}),
    ...(rest.stage ? { stage: rest.stage } : {}),
    ...(rest.leanWaits !== undefined ? { leanWaits: rest.leanWaits } : {}),
  });
  const guard = new RefreshGuard({ ...rest, coordination: files });
  return Object.assign(guard, { journal: files.journal, locks: files.locks });
}
