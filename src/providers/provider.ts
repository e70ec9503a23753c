// What refresh-guard must know about one OAuth provider, in one place: where its token endpoint
// is, which error codes mean "this refresh token is spent", how to tell who a credential belongs
// to, the command that logs in again, and where copies of its credentials live besides OpenClaw's
// own stores (with the config keys that point at them). Adding a provider is one module that exports
// a `Provider`, plus one line in registry.ts.
import type { SiblingSource } from "../siblings/sibling-source.ts";

/** Who a credential belongs to, as far as its tokens (or the store beside them) say. */
export interface Identity {
  /** The account or workspace (shared by every member of a team workspace). */
  accountId?: string;
  /** The user inside that account (the token's `sub`, or a user id claim). */
  userId?: string;
  email?: string;
}

export interface SiblingContext {
  /** The OpenClaw state dir of this process. */
  stateDir: string;
  /** Extra agent dirs (OPENCLAW_AGENT_DIR) outside `<stateDir>/agents`. */
  agentDirs: readonly string[];
  home: string;
  /** The provider's own files, from the plugin config (e.g. `codexAuthFile`); null = skip. */
  providerFiles: Readonly<Record<string, string | null>>;
}

/** A provider's own credential file, set by a top-level config key. */
export interface ProviderFile {
  /** The config key (`codexAuthFile`); false in the config skips the file. */
  readonly key: string;
  /** The default path under the home directory (`.codex/auth.json`). */
  readonly homePath: string;
  /** An environment variable that names the file's directory when set to an absolute path (`CODEX_HOME`). */
  readonly envDir?: { variable: string; file: string };
  /** Its name in the status text (`codex cli auth`). */
  readonly label: string;
  readonly description: string;
}

export interface Provider {
  /** The config and log name (`openai-codex`). */
  readonly id: string;
  /** Other ids hosts use for the same login (2026.6+ call `openai-codex` `openai`). */
  readonly aliases: readonly string[];
  /** The token endpoint (the config's default `tokenUrl`, shown by status). */
  readonly tokenUrl: string;
  /**
   * Other places the host may POST this provider's refresh grant to: exact URLs, or patterns with a
   * `*` for the leftmost host labels and/or a trailing `/*` for any path (xAI's endpoint is
   * discovered: `https://*.x.ai/*`). Only POSTs carrying `grant_type=refresh_token` are guarded;
   * everything else to these places (discovery GETs, logins) passes through untouched.
   */
  readonly alsoTokenUrls: readonly string[];
  /** The HTTP status of the endpoint's answer to a spent refresh token (OpenAI 401, xAI and Anthropic 400). */
  readonly spentStatus: number;
  /** Error codes of a `spentStatus` answer that mean the refresh token can never be redeemed again. */
  readonly spentCodes: readonly string[];
  /** Of those, the one a concurrent twin's redemption produces (worth a short wait for its journal entry). */
  readonly reusedCode: string;
  /**
   * Whether a token spent outside the guard can be recovered from a sibling of the same identity.
   * False where a reuse revokes the whole token family (xAI, Anthropic): every copy is dead, so
   * recovery adopts nothing and only reports; prevention is all the guard can do.
   */
  readonly reuseRecoverable: boolean;
  /** Who an access or id token belongs to; empty when it says nothing. */
  identityOf(token: string): Identity;
  /** The command that fixes a lost login. */
  loginCommand(providerId: string): string;
  /** Its own credential files, each a top-level config key (a path or false). */
  readonly files: readonly ProviderFile[];
  /** Credential copies held outside OpenClaw's stores (e.g. the provider's own CLI). */
  extraSiblingSources(context: SiblingContext): SiblingSource[];
}
