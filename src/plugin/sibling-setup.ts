// Where recovery looks for other copies of a credential in this process: OpenClaw's own stores
// (this state dir, its agent dirs, sibling state dirs) and each enabled provider's own files.
import type { RefreshGuardConfig } from "../config/parse-config.ts";
import type { Provider } from "../providers/provider.ts";
import { providerById } from "../providers/registry.ts";
import type { SiblingSource } from "../siblings/sibling-source.ts";
import { openClawStores } from "../siblings/state-dirs.ts";

export interface SiblingPlaces {
  /** The OpenClaw state dir of this process. */
  stateDir: string;
  /** Extra agent dirs (OPENCLAW_AGENT_DIR) outside `<stateDir>/agents`. */
  agentDirs: readonly string[];
  home: string;
}

/** The enabled providers, each once however many of its ids are enabled. */
export function enabledProviders(config: RefreshGuardConfig): Provider[] {
  const seen = new Set<Provider>();
  for (const { id } of config.providers) {
    const provider = providerById(id);
    if (provider !== undefined) seen.add(provider);
  }
  return [...seen];
}

export function siblingSources(config: RefreshGuardConfig, places: SiblingPlaces): SiblingSource[] {
  const sources = [
    openClawStores({
      stateDir: places.stateDir,
      agentDirs: places.agentDirs,
      // Every id a host stores the login under (2026.6+ store `openai-codex` logins as `openai`), so
      // that either name in the config finds the same siblings on every host.
      providers: [...new Set(enabledProviders(config).flatMap((provider) => [provider.id, ...provider.aliases]))],
      siblingStateDirs: config.siblingStateDirs,
      home: places.home,
    }),
  ];
  const context = { ...places, providerFiles: config.providerFiles };
  for (const provider of enabledProviders(config)) sources.push(...provider.extraSiblingSources(context));
  return sources;
}
