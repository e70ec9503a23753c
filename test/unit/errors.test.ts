import { describe, expect, it } from "vitest";

import {
  ChainError,
  ConfigError,
  ERR_CHAIN,
  ERR_CONFIG,
  ERR_JOURNAL_CORRUPT,
  ERR_LOCK_COMPROMISED,
  ERR_LOCK_TIMEOUT,
  ERR_RELOGIN_REQUIRED,
  ERR_UNSAFE_DIR,
  JournalCorruptError,
  LockCompromisedError,
  LockTimeoutError,
  RefreshGuardError,
  ReloginRequiredError,
  UnsafeDirectoryError,
} from "../../src/errors/errors.ts";
import { openai } from "../../src/providers/openai.ts";

describe("errors", () => {
  it("every class carries its stable code, its own name and is a RefreshGuardError", () => {
    const cases: [RefreshGuardError, string, string][] = [
      [new LockTimeoutError("/g/locks/k.lock", 300), ERR_LOCK_TIMEOUT, "LockTimeoutError"],
      [new LockCompromisedError("/g/locks/k.lock"), ERR_LOCK_COMPROMISED, "LockCompromisedError"],
      [new UnsafeDirectoryError("/g", "reason", "fix"), ERR_UNSAFE_DIR, "UnsafeDirectoryError"],
      [new ConfigError("plugins.entries.x", "bad"), ERR_CONFIG, "ConfigError"],
      [
        new ReloginRequiredError("openai-codex", "refresh_token_reused", "d", "openclaw models auth login --provider openai-codex"),
        ERR_RELOGIN_REQUIRED,
        "ReloginRequiredError",
      ],
      [new JournalCorruptError("/g/journal/x.json", "r"), ERR_JOURNAL_CORRUPT, "JournalCorruptError"],
      [new ChainError("loop"), ERR_CHAIN, "ChainError"],
    ];
    for (const [error, code, name] of cases) {
      expect(error).toBeInstanceOf(RefreshGuardError);
      expect(error).toBeInstanceOf(Error);
      expect(error.code).toBe(code);
      expect(error.name).toBe(name);
      expect(error.message.startsWith("refresh-guard: ")).toBe(true);
    }
  });

  it("codes are distinct", () => {
    const codes = [
      ERR_LOCK_TIMEOUT,
      ERR_LOCK_COMPROMISED,
      ERR_UNSAFE_DIR,
      ERR_CONFIG,
      ERR_RELOGIN_REQUIRED,
      ERR_JOURNAL_CORRUPT,
      ERR_CHAIN,
    ];
    expect(new Set(codes).size).toBe(codes.length);
  });

  it("the lock errors name the lock path and carry provider and cause", () => {
    const cause = new Error("under");
    const error = new LockTimeoutError("/g/locks/k.lock", 300, { provider: "openai-codex", cause });
    expect(error.path).toBe("/g/locks/k.lock");
    expect(error.provider).toBe("openai-codex");
    expect(error.cause).toBe(cause);
    expect(error.message).toContain("300 ms");
    expect(error.message).toContain("/g/locks/k.lock");
    expect(new LockCompromisedError("/g/locks/k.lock").path).toBe("/g/locks/k.lock");
  });

  it("leaves provider, path and cause unset when not given", () => {
    const error = new ChainError("loop");
    expect(error.provider).toBeUndefined();
    expect(error.path).toBeUndefined();
    expect("cause" in error).toBe(false);
  });

  it("the relogin error ends with the exact login command for its provider", () => {
    const error = new ReloginRequiredError("openai-codex", "refresh_token_reused", "detail.", openai.loginCommand("openai-codex"));
    expect(openai.loginCommand("openai-codex")).toBe("openclaw models auth login --provider openai-codex");
    expect(error.message.endsWith("Log in again: openclaw models auth login --provider openai-codex")).toBe(true);
    expect(error.endpointCode).toBe("refresh_token_reused");
    expect(error.provider).toBe("openai-codex");
  });

  it("the unsafe-directory error names the directory, the reason and the fix", () => {
    const error = new UnsafeDirectoryError("/g", "it is a symlink", "Fix it with: chmod 700 /g");
    expect(error.path).toBe("/g");
    expect(error.message).toBe("refresh-guard: refusing to use /g: it is a symlink. Fix it with: chmod 700 /g");
  });

  it("the config error names the full config path", () => {
    const error = new ConfigError('plugins.entries["refresh-guard"].config.lock.staleMs', "must be >= 2000");
    expect(error.configPath).toBe('plugins.entries["refresh-guard"].config.lock.staleMs');
    expect(error.message).toContain('plugins.entries["refresh-guard"].config.lock.staleMs: must be >= 2000');
  });
});
