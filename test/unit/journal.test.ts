import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { ERR_JOURNAL_CORRUPT, type JournalCorruptError } from "../../src/errors/errors.ts";
import type { TokenSet } from "../../src/oauth/token-wire.ts";
import { REUSED } from "../../src/providers/openai.ts";
import { JOURNAL_VERSION, Journal, type JournalOptions } from "../../src/store/journal.ts";
import { seal, tokenKey } from "../../src/store/token-crypto.ts";

/** OpenAI's answer to a reused refresh token, as a spent marker stores it. */
const reusedBody = () =>
  JSON.stringify({
    error: {
      message: "Your refresh token has already been used to generate a new access token. Please try signing in again.",
      type: "invalid_request_error",
      param: null,
      code: REUSED,
    },
  });

const DAY = 24 * 60 * 60 * 1000;
const NOW = 1_800_000_000_000;

const TOKEN_A = "rt_token-a";
const TOKEN_B = "rt_token-b";
const KEY_A = tokenKey(TOKEN_A);
const KEY_B = tokenKey(TOKEN_B);

const SET_1: TokenSet = {
  accessToken: "at_one",
  refreshToken: "rt_one",
  idToken: "idt_one",
  expiresAt: NOW + 3_600_000,
  accountId: "acct-1",
  extra: { token_type: "Bearer" },
};
const SET_2: TokenSet = { accessToken: "at_two", refreshToken: "rt_two", expiresAt: NOW + 7_200_000, extra: {} };

let root: string;
let dir: string;
let quarantineDir: string;
let quarantined: JournalCorruptError[];
let clock: number;
let savedUmask: number;

function journal(overrides: Partial<JournalOptions> = {}): Journal {
  return new Journal({
    dir,
    quarantineDir,
    retentionMs: 7 * DAY,
    now: () => clock,
    onQuarantine: (error) => quarantined.push(error),
    ...overrides,
  });
}

async function listing(path: string): Promise<string[]> {
  try {
    return (await fsp.readdir(path)).sort();
  } catch {
    return [];
  }
}

beforeEach(async () => {
  savedUmask = process.umask();
  root = await fsp.mkdtemp(join(tmpdir(), "rg-journal-"));
  dir = join(root, "journal");
  quarantineDir = join(root, "quarantine");
  await fsp.mkdir(dir, { mode: 0o700 });
  quarantined = [];
  clock = NOW;
});

afterEach(async () => {
  process.umask(savedUmask);
  await fsp.rm(root, { recursive: true, force: true });
});

/** Asserts the entry for `key` was moved into quarantine (not deleted) and reported exactly once. */
async function expectQuarantined(key: string, originalContent: string | null): Promise<void> {
  expect(await listing(dir)).not.toContain(`${key}.json`);
  const moved = (await listing(quarantineDir)).filter((name) => name.startsWith(`${key}.json.`));
  expect(moved).toHaveLength(1);
  if (originalContent !== null) {
    expect(await fsp.readFile(join(quarantineDir, moved[0]!), "utf8")).toBe(originalContent);
  }
  expect(quarantined).toHaveLength(1);
  expect(quarantined[0]!.code).toBe(ERR_JOURNAL_CORRUPT);
  expect(quarantined[0]!.message).toContain(join(quarantineDir, moved[0]!));
}

describe("Journal write / read", () => {
  it("reads back the set written for a spent token", async () => {
    const j = journal();
    expect(await j.read(KEY_A, TOKEN_A)).toBeNull();
    expect(await j.has(KEY_A)).toBe(false);
    expect(await j.write(KEY_A, TOKEN_A, SET_1)).toEqual(SET_1);
    expect(await j.has(KEY_A)).toBe(true);
    expect(await j.read(KEY_A, TOKEN_A)).toEqual(SET_1);
    expect(quarantined).toEqual([]);
  });

  it("another Journal on the same directory reads the entry", async () => {
    await journal().write(KEY_A, TOKEN_A, SET_1);
    expect(await journal().read(KEY_A, TOKEN_A)).toEqual(SET_1);
  });

  it("keeps tokens out of the file in clear text", async () => {
    await journal().write(KEY_A, TOKEN_A, SET_1);
    const text = await fsp.readFile(join(dir, `${KEY_A}.json`), "utf8");
    for (const secret of [TOKEN_A, SET_1.accessToken, SET_1.refreshToken, SET_1.idToken!]) {
      expect(text.includes(secret)).toBe(false);
    }
    const envelope = JSON.parse(text) as Record<string, unknown>;
    expect(envelope.v).toBe(JOURNAL_VERSION);
    expect(envelope.key).toBe(KEY_A);
    expect(envelope.createdAt).toBe(NOW);
  });

  it("lets the first writer win: a second write returns the first set and leaves the file unchanged", async () => {
    const j = journal();
    await j.write(KEY_A, TOKEN_A, SET_1);
    const before = await fsp.readFile(join(dir, `${KEY_A}.json`), "utf8");
    expect(await j.write(KEY_A, TOKEN_A, SET_2)).toEqual(SET_1);
    expect(await fsp.readFile(join(dir, `${KEY_A}.json`), "utf8")).toBe(before);
    expect(await j.read(KEY_A, TOKEN_A)).toEqual(SET_1);
  });

  it("lets exactly one of many concurrent writers win", async () => {
    const j = journal();
    const sets = Array.from({ length: 10 }, (_, i) => ({ ...SET_2, refreshToken: `rt_candidate_${i}` }));
    const results = await Promise.all(sets.map((set) => j.write(KEY_A, TOKEN_A, set)));
    const winners = new Set(results.map((set) => set.refreshToken));
    expect(winners.size).toBe(1);
    expect((await j.read(KEY_A, TOKEN_A))?.refreshToken).toBe([...winners][0]);
    // No temp files are left behind.
    expect(await listing(dir)).toEqual([`${KEY_A}.json`]);
  });

  it("creates entry files with mode 0600 even under umask 0", async () => {
    process.umask(0);
    const j = journal();
    await j.write(KEY_A, TOKEN_A, SET_1);
    await j.tombstone(KEY_B, TOKEN_B, REUSED, reusedBody());
    expect((await fsp.stat(join(dir, `${KEY_A}.json`))).mode & 0o777).toBe(0o600);
    expect((await fsp.stat(join(dir, `${KEY_B}.spent`))).mode & 0o777).toBe(0o600);
  });

  it("refuses keys that are not 64 hex digits", async () => {
    const j = journal();
    await expect(j.read("../escape", TOKEN_A)).rejects.toThrow("64 hex digits");
    await expect(j.write(KEY_A.toUpperCase(), TOKEN_A, SET_1)).rejects.toThrow("64 hex digits");
    expect(() => j.entryName("abc")).toThrow("64 hex digits");
    expect(j.entryName(KEY_A)).toBe(`${KEY_A}.json`);
  });

  it("overwrites an unreadable existing entry on write after quarantining it", async () => {
    const j = journal();
    await fsp.writeFile(join(dir, `${KEY_A}.json`), "{trunc", { mode: 0o600 });
    expect(await j.write(KEY_A, TOKEN_A, SET_2)).toEqual(SET_2);
    expect(await j.read(KEY_A, TOKEN_A)).toEqual(SET_2);
    await expect(listing(quarantineDir)).resolves.toHaveLength(1);
    expect(quarantined).toHaveLength(1);
  });
});

describe("Journal quarantine of unreadable entries", () => {
  async function plant(key: string, content: string): Promise<void> {
    await fsp.writeFile(join(dir, `${key}.json`), content, { mode: 0o600 });
  }

  it("treats a truncated entry as absent and moves it to quarantine", async () => {
    const j = journal();
    await j.write(KEY_A, TOKEN_A, SET_1);
    const full = await fsp.readFile(join(dir, `${KEY_A}.json`), "utf8");
    const truncated = full.slice(0, Math.floor(full.length / 2));
    await fsp.writeFile(join(dir, `${KEY_A}.json`), truncated);
    expect(await j.read(KEY_A, TOKEN_A)).toBeNull();
    await expectQuarantined(KEY_A, truncated);
    expect(quarantined[0]!.message).toContain("not JSON");
  });

  it("treats non-JSON as absent and moves it to quarantine", async () => {
    await plant(KEY_A, "hello, not json");
    expect(await journal().read(KEY_A, TOKEN_A)).toBeNull();
    await expectQuarantined(KEY_A, "hello, not json");
  });

  it("treats JSON that is not an object as absent and moves it to quarantine", async () => {
    await plant(KEY_A, "[1,2,3]");
    expect(await journal().read(KEY_A, TOKEN_A)).toBeNull();
    await expectQuarantined(KEY_A, "[1,2,3]");
  });

  it("treats an unknown version as absent and moves it to quarantine", async () => {
    const j = journal();
    await j.write(KEY_A, TOKEN_A, SET_1);
    const envelope = JSON.parse(await fsp.readFile(join(dir, `${KEY_A}.json`), "utf8")) as Record<string, unknown>;
    const future = JSON.stringify({ ...envelope, v: JOURNAL_VERSION + 1 });
    await fsp.rm(join(dir, `${KEY_A}.json`));
    await plant(KEY_A, future);
    expect(await j.read(KEY_A, TOKEN_A)).toBeNull();
    await expectQuarantined(KEY_A, future);
    expect(quarantined[0]!.message).toContain(`unknown version ${JOURNAL_VERSION + 1}`);
  });

  it("treats an entry sealed with token A but read with token B as absent and moves it to quarantine", async () => {
    const j = journal();
    // Filed under B's key, but sealed under A: B cannot open it.
    await j.write(KEY_B, TOKEN_A, SET_1);
    const content = await fsp.readFile(join(dir, `${KEY_B}.json`), "utf8");
    expect(await j.read(KEY_B, TOKEN_B)).toBeNull();
    await expectQuarantined(KEY_B, content);
    expect(quarantined[0]!.message).toContain("does not decrypt");
  });

  it("treats an entry written for another key (renamed into place) as absent and moves it to quarantine", async () => {
    const j = journal();
    await j.write(KEY_A, TOKEN_A, SET_1);
    const content = await fsp.readFile(join(dir, `${KEY_A}.json`), "utf8");
    await fsp.rename(join(dir, `${KEY_A}.json`), join(dir, `${KEY_B}.json`));
    // Even the right token does not make a misfiled entry acceptable.
    expect(await j.read(KEY_B, TOKEN_A)).toBeNull();
    await expectQuarantined(KEY_B, content);
    expect(quarantined[0]!.message).toContain("written for another key");
  });

  it("treats an entry whose sealed content is incomplete as absent and moves it to quarantine", async () => {
    // A version-1 envelope that decrypts but holds no token set.
    const sealed = seal(TOKEN_A, `refresh-guard/v${JOURNAL_VERSION}/${KEY_A}`, JSON.stringify({ access_token: "at" }));
    const content = JSON.stringify({ v: JOURNAL_VERSION, key: KEY_A, createdAt: NOW, ...sealed });
    await plant(KEY_A, content);
    expect(await journal().read(KEY_A, TOKEN_A)).toBeNull();
    await expectQuarantined(KEY_A, content);
    expect(quarantined[0]!.message).toContain("incomplete token set");
  });

  it("treats an entry larger than 1 MiB as absent and moves it to quarantine", async () => {
    const content = JSON.stringify({ v: JOURNAL_VERSION, key: KEY_A, pad: "x".repeat(1024 * 1024 + 10) });
    await plant(KEY_A, content);
    expect(await journal().read(KEY_A, TOKEN_A)).toBeNull();
    await expectQuarantined(KEY_A, content);
    expect(quarantined[0]!.message).toContain("larger than 1048576 bytes");
  });

  it("does not follow a symbolic link at the entry path; the link is quarantined and its target untouched", async () => {
    const j = journal();
    // A perfectly valid entry elsewhere: following the link would make read() return it.
    await j.write(KEY_A, TOKEN_A, SET_1);
    const outside = join(root, "outside.json");
    await fsp.rename(join(dir, `${KEY_A}.json`), outside);
    const targetContent = await fsp.readFile(outside, "utf8");
    await fsp.symlink(outside, join(dir, `${KEY_A}.json`));

    expect(await j.read(KEY_A, TOKEN_A)).toBeNull();
    await expectQuarantined(KEY_A, null);
    const [moved] = await listing(quarantineDir);
    expect((await fsp.lstat(join(quarantineDir, moved!))).isSymbolicLink()).toBe(true);
    expect(await fsp.readFile(outside, "utf8")).toBe(targetContent);
  });

  it("reports a quarantined entry once even when two readers race on it", async () => {
    await plant(KEY_A, "garbage");
    const [a, b] = await Promise.all([journal().read(KEY_A, TOKEN_A), journal().read(KEY_A, TOKEN_A)]);
    expect(a).toBeNull();
    expect(b).toBeNull();
    expect(quarantined).toHaveLength(1);
    await expect(listing(quarantineDir)).resolves.toHaveLength(1);
  });

  it("creates the quarantine directory 0700 even under umask 0", async () => {
    process.umask(0);
    await plant(KEY_A, "garbage");
    await journal().read(KEY_A, TOKEN_A);
    expect((await fsp.stat(quarantineDir)).mode & 0o777).toBe(0o700);
  });
});

describe("Journal temp files", () => {
  it("never reads a write interrupted half way (a stray .tmp file) as an entry", async () => {
    const crash = new Error("simulated crash mid-write");
    const j = journal({
      midWrite: () => {
        throw crash;
      },
    });
    await expect(j.write(KEY_A, TOKEN_A, SET_1)).rejects.toBe(crash);
    const names = await listing(dir);
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^\.[0-9a-f]{16}\.tmp$/);

    const reader = journal();
    expect(await reader.has(KEY_A)).toBe(false);
    expect(await reader.read(KEY_A, TOKEN_A)).toBeNull();
    expect((await reader.size()).entries).toBe(0);
    expect(quarantined).toEqual([]);
    // A later writer is not blocked by the leftover.
    expect(await reader.write(KEY_A, TOKEN_A, SET_2)).toEqual(SET_2);
    expect(await reader.read(KEY_A, TOKEN_A)).toEqual(SET_2);
  });

  it("never reads a stray .tmp file even when it holds a complete, valid entry", async () => {
    const j = journal();
    await j.write(KEY_A, TOKEN_A, SET_1);
    const stray = join(dir, `.${"ab".repeat(8)}.tmp`);
    await fsp.rename(join(dir, `${KEY_A}.json`), stray);
    expect(await j.has(KEY_A)).toBe(false);
    expect(await j.read(KEY_A, TOKEN_A)).toBeNull();
    expect(await fsp.readFile(stray, "utf8")).toContain(KEY_A);
  });
});

describe("Journal tombstones", () => {
  it("reads back a tombstone's code, time and body", async () => {
    const j = journal();
    expect(await j.readTombstone(KEY_A, TOKEN_A)).toBeNull();
    await j.tombstone(KEY_A, TOKEN_A, REUSED, reusedBody());
    expect(await j.readTombstone(KEY_A, TOKEN_A)).toEqual({ code: REUSED, at: NOW, body: reusedBody() });
    // A tombstone is not an entry.
    expect(await j.has(KEY_A)).toBe(false);
    expect(await j.readTombstone(KEY_B, TOKEN_B)).toBeNull();
  });

  it("keeps the first tombstone when a second is written", async () => {
    const j = journal();
    await j.tombstone(KEY_A, TOKEN_A, REUSED, reusedBody());
    clock += 1000;
    await j.tombstone(KEY_A, TOKEN_A, "refresh_token_invalidated", "{}");
    expect(await j.readTombstone(KEY_A, TOKEN_A)).toEqual({ code: REUSED, at: NOW, body: reusedBody() });
  });

  it("caps the stored body at 4096 characters", async () => {
    const j = journal();
    await j.tombstone(KEY_A, TOKEN_A, REUSED, "y".repeat(10_000));
    expect((await j.readTombstone(KEY_A, TOKEN_A))?.body).toHaveLength(4096);
  });

  it("ignores and quarantines a tombstone it cannot open: a torn or forged marker forces no re-login", async () => {
    await fsp.writeFile(join(dir, `${KEY_A}.spent`), "{broken", { mode: 0o600 });
    expect(await journal().readTombstone(KEY_A, TOKEN_A)).toBeNull();
    expect(quarantined).toHaveLength(1);
    // Whoever knows only the token's hash (not the token) cannot write a marker a reader accepts.
    const forged = JSON.stringify({ v: JOURNAL_VERSION, code: REUSED, at: NOW, body: reusedBody() });
    await fsp.writeFile(join(dir, `${KEY_B}.spent`), forged, { mode: 0o600 });
    expect(await journal().readTombstone(KEY_B, TOKEN_B)).toBeNull();
    // One sealed under another token is no better.
    await journal().tombstone(KEY_A, TOKEN_B, REUSED, reusedBody());
    expect(await journal().readTombstone(KEY_A, TOKEN_A)).toBeNull();
  });
});

describe("Journal prune", () => {
  async function age(path: string, ageMs: number): Promise<void> {
    const when = new Date(clock - ageMs);
    await fsp.utimes(path, when, when);
  }

  it("removes entries, tombstones and quarantined files older than retention and keeps newer ones", async () => {
    const j = journal();
    const tokens = ["rt_old", "rt_new", "rt_old_spent", "rt_new_spent"].map((t) => ({ t, key: tokenKey(t) }));
    await j.write(tokens[0]!.key, tokens[0]!.t, SET_1);
    await j.write(tokens[1]!.key, tokens[1]!.t, SET_1);
    await j.tombstone(tokens[2]!.key, tokens[2]!.t, REUSED, reusedBody());
    await j.tombstone(tokens[3]!.key, tokens[3]!.t, REUSED, reusedBody());
    await fsp.writeFile(join(dir, `${KEY_A}.json`), "garbage");
    await j.read(KEY_A, TOKEN_A);
    const [quarantinedName] = await listing(quarantineDir);

    await age(join(dir, `${tokens[0]!.key}.json`), 8 * DAY);
    await age(join(dir, `${tokens[1]!.key}.json`), 6 * DAY);
    await age(join(dir, `${tokens[2]!.key}.spent`), 8 * DAY);
    await age(join(dir, `${tokens[3]!.key}.spent`), 1 * DAY);
    await age(join(quarantineDir, quarantinedName!), 7 * DAY + 1000);

    expect(await j.prune()).toBe(3);
    expect(await listing(dir)).toEqual([`${tokens[1]!.key}.json`, `${tokens[3]!.key}.spent`].sort());
    expect(await listing(quarantineDir)).toEqual([]);
    expect(await j.read(tokens[1]!.key, tokens[1]!.t)).toEqual(SET_1);
  });

  it("measures age with the injected clock, not the wall clock", async () => {
    const j = journal();
    await j.write(KEY_A, TOKEN_A, SET_1);
    // Written "now" by the wall clock; the injected clock is 8 days later.
    const wall = new Date();
    await fsp.utimes(join(dir, `${KEY_A}.json`), wall, wall);
    clock = wall.getTime() + 6 * DAY;
    expect(await j.prune()).toBe(0);
    clock = wall.getTime() + 8 * DAY;
    expect(await j.prune()).toBe(1);
    expect(await j.has(KEY_A)).toBe(false);
  });

  it("removes stray temp files after ten minutes regardless of retention", async () => {
    const j = journal();
    const fresh = join(dir, ".00000000000000aa.tmp");
    const stale = join(dir, ".00000000000000bb.tmp");
    await fsp.writeFile(fresh, "x");
    await fsp.writeFile(stale, "x");
    await age(fresh, 5 * 60 * 1000);
    await age(stale, 11 * 60 * 1000);
    expect(await j.prune()).toBe(1);
    expect(await listing(dir)).toEqual([".00000000000000aa.tmp"]);
  });

  it("skips directories and survives a missing quarantine directory", async () => {
    const j = journal();
    await fsp.mkdir(join(dir, "subdir"));
    await age(join(dir, "subdir"), 30 * DAY);
    expect(await j.prune()).toBe(0);
    expect(await listing(dir)).toEqual(["subdir"]);
  });
});

describe("Journal size", () => {
  it("counts entries, tombstones and quarantined files", async () => {
    const j = journal();
    await j.write(KEY_A, TOKEN_A, SET_1);
    await j.tombstone(KEY_B, TOKEN_B, REUSED, reusedBody());
    await fsp.writeFile(join(dir, `${tokenKey("rt_x")}.json`), "garbage");
    await j.read(tokenKey("rt_x"), "rt_x");
    const size = await j.size();
    expect(size).toMatchObject({ entries: 1, tombstones: 1, quarantined: 1 });
    expect(size.bytes).toBeGreaterThan(0);
  });
});
