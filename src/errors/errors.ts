// Every failure refresh-guard reports is one of these classes. Each carries a stable `code`,
// the provider and path it concerns, and a `cause`; none ever carries a token.

export const ERR_LOCK_TIMEOUT = "REFRESH_GUARD_LOCK_TIMEOUT";
export const ERR_LOCK_COMPROMISED = "REFRESH_GUARD_LOCK_COMPROMISED";
export const ERR_UNSAFE_DIR = "REFRESH_GUARD_UNSAFE_DIR";
export const ERR_CONFIG = "REFRESH_GUARD_CONFIG";
export const ERR_RELOGIN_REQUIRED = "REFRESH_GUARD_RELOGIN_REQUIRED";
export const ERR_JOURNAL_CORRUPT = "REFRESH_GUARD_JOURNAL_CORRUPT";
export const ERR_CHAIN = "REFRESH_GUARD_CHAIN";
export const ERR_BACKEND_UNAVAILABLE = "REFRESH_GUARD_BACKEND_UNAVAILABLE";
export const ERR_DEADLINE = "REFRESH_GUARD_DEADLINE";

export type ErrorCode =
  | typeof ERR_LOCK_TIMEOUT
  | typeof ERR_LOCK_COMPROMISED
  | typeof ERR_UNSAFE_DIR
  | typeof ERR_CONFIG
  | typeof ERR_RELOGIN_REQUIRED
  | typeof ERR_JOURNAL_CORRUPT
  | typeof ERR_CHAIN
  | typeof ERR_BACKEND_UNAVAILABLE
  | typeof ERR_DEADLINE;

export interface ErrorContext {
  provider?: string;
  path?: string;
  cause?: unknown;
}

export class RefreshGuardError extends Error {
  readonly code: ErrorCode;
  readonly provider?: string;
  readonly path?: string;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = new.target.name;
    this.code = code;
    if (context.provider !== undefined) this.provider = context.provider;
    if (context.path !== undefined) this.path = context.path;
  }
}

/** Waiting for the cross-process lock took longer than `lockWaitMs`; nothing was redeemed. */
export class LockTimeoutError extends RefreshGuardError {
  constructor(lockPath: string, waitedMs: number, context: ErrorContext = {}) {
    super(
      ERR_LOCK_TIMEOUT,
      `refresh-guard: waited ${waitedMs} ms for the refresh lock ${lockPath} and gave up without ` +
        `redeeming (fail closed). Another process holds it; if none is running, remove that directory. ` +
        `Raise plugins.entries["refresh-guard"].config.lock.waitTimeoutMs if your token endpoint is slow.`,
      { ...context, path: lockPath },
    );
  }
}

/** The lock was taken over (stale) while this process held it; it stepped back. */
export class LockCompromisedError extends RefreshGuardError {
  constructor(lockPath: string, context: ErrorContext = {}) {
    super(
      ERR_LOCK_COMPROMISED,
      `refresh-guard: the refresh lock ${lockPath} was taken over by another process while this one ` +
        `held it (its heartbeat was late); this process stepped back without writing.`,
      { ...context, path: lockPath },
    );
  }
}

/** The guard directory (or one below it) is not safe to use. */
export class UnsafeDirectoryError extends RefreshGuardError {
  constructor(dir: string, reason: string, fix: string, context: ErrorContext = {}) {
    super(ERR_UNSAFE_DIR, `refresh-guard: refusing to use ${dir}: ${reason}. ${fix}`, { ...context, path: dir });
  }
}

/** The plugin's configuration is invalid; `configPath` names the offending key. */
export class ConfigError extends RefreshGuardError {
  readonly configPath: string;
  constructor(configPath: string, problem: string) {
    super(ERR_CONFIG, `refresh-guard: invalid config at ${configPath}: ${problem}`);
    this.configPath = configPath;
  }
}

/**
 * The refresh token was spent and no successor is known anywhere: the user must log in again.
 * `login` is the command that does it, as the provider declares it (providers/*.ts).
 */
export class ReloginRequiredError extends RefreshGuardError {
  readonly endpointCode: string;
  constructor(provider: string, endpointCode: string, detail: string, login: string, context: ErrorContext = {}) {
    super(
      ERR_RELOGIN_REQUIRED,
      `refresh-guard: the ${provider} refresh token was rejected (${endpointCode}) and no process, ` +
        `journal entry or sibling credential holds its successor; ${detail} ` +
        `Log in again: ${login}`,
      { ...context, provider },
    );
    this.endpointCode = endpointCode;
  }
}

/** A journal entry could not be read (truncated, unknown version, wrong key); it was moved aside. */
export class JournalCorruptError extends RefreshGuardError {
  constructor(file: string, reason: string, context: ErrorContext = {}) {
    super(ERR_JOURNAL_CORRUPT, `refresh-guard: journal entry ${file} is unreadable (${reason}); moved aside`, {
      ...context,
      path: file,
    });
  }
}

/** A redemption chain was longer than the bound or looped. */
export class ChainError extends RefreshGuardError {
  constructor(message: string, context: ErrorContext = {}) {
    super(ERR_CHAIN, `refresh-guard: ${message}`, context);
  }
}

/** A coordination backend (e.g. Redis) could not be reached; nothing was redeemed. */
export class BackendUnavailableError extends RefreshGuardError {
  constructor(message: string, context: ErrorContext = {}) {
    super(ERR_BACKEND_UNAVAILABLE, `refresh-guard: ${message}`, context);
  }
}

/** One refresh took longer than its overall deadline (lock wait + request); it failed closed. */
export class DeadlineError extends RefreshGuardError {
  constructor(deadlineMs: number, context: ErrorContext = {}) {
    super(
      ERR_DEADLINE,
      `refresh-guard: the refresh did not complete within ${deadlineMs} ms (lock.waitTimeoutMs + requestTimeoutMs) and failed ` +
        "closed; the journal or the coordination backend kept it from finishing (see the warnings logged before this).",
      context,
    );
  }
}
