// The providers refresh-guard can guard, by every id a host uses for them. One line per provider.
import { anthropic } from "./anthropic.ts";
import { openai } from "./openai.ts";
import type { Provider } from "./provider.ts";
import { xai } from "./xai.ts";

export const PROVIDERS: readonly Provider[] = [openai, xai, anthropic];

/** The provider a config or host id names (its own id or an alias), or undefined. */
export function providerById(id: string): Provider | undefined {
  return PROVIDERS.find((provider) => provider.id === id || provider.aliases.includes(id));
}

/** Every id the config accepts under `providers`. */
export function knownProviderIds(): string[] {
  return PROVIDERS.flatMap((provider) => [provider.id, ...provider.aliases]);
}
