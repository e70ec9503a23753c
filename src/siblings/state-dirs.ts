// Which OpenClaw state dirs recovery reads besides the host's own (option `siblingStateDirs`):
// "auto" (default) finds the ones a user of this account most likely has: ~/.openclaw and the
// per-profile dirs ~/.openclaw-<profile> (`openclaw --profile <name>`), looked up at each recovery
// so a dir created later counts; a list names them exactly; [] reads none.
import { promises as fsp } from "node:fs";
import { join, resolve } from "node:path";

import { openClawAgentStores } from "./openclaw-json-stores.ts";
import { openClawSqliteStores } from "./openclaw-sqlite-stores.ts";
import type { SiblingCredential, SiblingSource } from "./sibling-source.ts";

export type SiblingStateDirs = "auto" | readonly string[];

const STATE_DIR_NAME = /^\.openclaw(?:-[A-Za-z0-9._-]+)?$/;

/** The state dirs `setting` stands for, without `ownStateDir`. */
export async function resolveSiblingStateDirs(setting: SiblingStateDirs, home: string, ownStateDir: string): Promise<string[]> {
  const own = resolve(ownStateDir);
  if (setting !== "auto") return setting.map((dir) => resolve(dir)).filter((dir) => dir !== own);
  let names: string[] = [];
  try {
    names = await fsp.readdir(home);
  } catch {
    return [];
  }
  const dirs: string[] = [];
  for (const name of names.filter((entry) => STATE_DIR_NAME.test(entry)).sort()) {
    const dir = join(home, name);
    if (dir === own) continue;
    const stat = await fsp.stat(dir).catch(() => null);
    if (stat?.isDirectory()) dirs.push(dir);
  }
  return dirs;
}

export interface OpenClawStoresOptions {
  stateDir: string;
  agentDirs: readonly string[];
  providers: readonly string[];
  siblingStateDirs: SiblingStateDirs;
  home: string;
}

/** Every OpenClaw store recovery reads: JSON (2026.4/5) and SQLite (2026.6+), own state dir first. */
export function openClawStores(options: OpenClawStoresOptions): SiblingSource {
  return {
    name: "openclaw-stores",
    async load(warn) {
      const others = await resolveSiblingStateDirs(options.siblingStateDirs, options.home, options.stateDir);
      const sources: SiblingSource[] = [
        openClawAgentStores({ stateDir: options.stateDir, agentDirs: options.agentDirs, providers: options.providers }),
        ...others.map((stateDir) => openClawAgentStores({ stateDir, providers: options.providers })),
        openClawSqliteStores({ stateDirs: [options.stateDir, ...others], providers: options.providers }),
      ];
      const credentials: SiblingCredential[] = [];
      for (const source of sources) credentials.push(...(await source.load(warn)));
      return credentials;
    },
  };
}
