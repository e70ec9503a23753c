// OpenClaw's own credential stores up to 2026.5: every agent's auth-profiles.json under the state
// dir (plus OPENCLAW_AGENT_DIR's), read-only. Torn, corrupt, oversized or special files are skipped
// with a warning that names the file, never its content.
import { promises as fsp } from "node:fs";
import { join } from "node:path";

import { isRecord } from "../oauth/json.ts";
import { isAbsent } from "../store/safe-read.ts";
import { readJsonFile } from "./read-json.ts";
import type { SiblingCredential, SiblingSource } from "./sibling-source.ts";

export interface OpenClawStoreOptions {
  stateDir: string;
  /** Extra agent dirs (e.g. OPENCLAW_AGENT_DIR) outside <stateDir>/agents. */
  agentDirs?: readonly string[];
  /** Provider ids whose OAuth profiles count as siblings. */
  providers: readonly string[];
}

/** Every agent's auth-profiles.json: `{ profiles: { id: { type: "oauth", provider, access, refresh, expires, accountId, email } } }`. */
export function openClawAgentStores(options: OpenClawStoreOptions): SiblingSource {
  return {
    name: "openclaw-agent-stores",
    async load(warn) {
      const files = new Set<string>();
      const agentsDir = join(options.stateDir, "agents");
      let agents: string[] = [];
      try {
        agents = await fsp.readdir(agentsDir);
      } catch (error) {
        if (!isAbsent(error)) warn(`skipped ${agentsDir}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`);
      }
      for (const agent of agents) files.add(join(agentsDir, agent, "agent", "auth-profiles.json"));
      for (const dir of options.agentDirs ?? []) files.add(join(dir, "auth-profiles.json"));
      const credentials: SiblingCredential[] = [];
      for (const file of files) {
        const json = await readJsonFile(file, warn);
        if (json === undefined) continue;
        const profiles = isRecord(json) && isRecord(json.profiles) ? json.profiles : null;
        if (profiles === null) {
          warn(`skipped ${file}: no "profiles" object`);
          continue;
        }
        credentials.push(...oauthProfiles(profiles, `${file}#`, options.providers));
      }
      return credentials;
    },
  };
}

/** The OAuth profiles of one store's `profiles` object (the shape every OpenClaw store uses). */
function oauthProfiles(profiles: Record<string, unknown>, sourcePrefix: string, providers: readonly string[]): SiblingCredential[] {
  const credentials: SiblingCredential[] = [];
  for (const [id, profile] of Object.entries(profiles)) {
    if (!isRecord(profile) || profile.type !== "oauth") continue;
    if (typeof profile.provider !== "string" || !providers.includes(profile.provider)) continue;
    if (typeof profile.refresh !== "string" || profile.refresh === "") continue;
    const credential: SiblingCredential = { source: `${sourcePrefix}${id}`, refreshToken: profile.refresh };
    if (typeof profile.access === "string") credential.accessToken = profile.access;
    if (typeof profile.expires === "number") credential.expiresAt = profile.expires;
    if (typeof profile.accountId === "string" && profile.accountId !== "") credential.accountId = profile.accountId;
    if (typeof profile.email === "string" && profile.email !== "") credential.email = profile.email;
    credentials.push(credential);
  }
  return credentials;
}
