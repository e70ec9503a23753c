// Second hardening round (issue 18): recovery checks whose tokens it hands over and which stores
// it believes; one refresh is counted once; one deadline per refresh; answers always fit the
// journal (or a failed event says why); a non-rotating answer is no chain link; an invalidated
// first refresh is a login problem; status prints no control characters; the guard dir and the
// Codex CLI's file are found where they belong. Real files, real processes, a real HTTP endpoint.
import { spawn } from "node:child_process";
import { promises as fsp } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { formatStatus, type StatusReport } from "../../src/cli/status-report.ts";
import { defaultGuardDir, parseConfig, userHome } from "../../src/config/parse-config.ts";
import type { GuardEvent, Redeem } from "../../src/core/refresh-guard.ts";
import { ERR_DEADLINE } from "../../src/errors/errors.ts";
import { jwtClaims } from "../../src/oauth/token-wire.ts";
import { openAiIdentity } from "../../src/providers/openai.ts";
import { codexCliAuth } from "../../src/providers/openai-codex-cli.ts";
import { type SiblingCredential, staticSiblingSource } from "../../src/siblings/sibling-source.ts";
import { MAX_RESPONSE_BYTES } from "../../src/store/sealed-entry.ts";
import { tokenKey } from "../../src/store/token-crypto.ts";
import { type FileGuard, type FileGuardOptions, openFileGuard } from "../support/file-guard.ts";
import { type Credential, INVALIDATED_BODY, type StandInEndpoint, startStandIn } from "../support/token-endpoint-server.ts";

let root: string;
let events: GuardEvent[];
let servers: StandInEndpoint[];

beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-round2-"));
  events = [];
  servers = [];
});

afterEach(async () => {
  const text = JSON.stringify(events);
  const leaked = servers.flatMap((server) => server.issuedSecrets()).filter((secret) => text.includes(secret));
  for (const server of servers) await server.stop();
  await fsp.rm(root, { recursive: true, force: true });
  expect(leaked).toEqual([]);
});

async function standIn(): Promise<StandInEndpoint> {
  const server = await startStandIn();
  servers.push(server);
  return server;
}

function redeemAt(server: StandInEndpoint): Redeem {
  return (refreshToken, signal) =>
    fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: "app_test" }).toString(),
      signal,
    });
}

function openGuard(options: Partial<FileGuardOptions> = {}): Promise<FileGuard> {
  const { timing, ...rest } = options;
  return openFileGuard({
    provider: "openai-codex",
    guardDir: join(root, "guard"),
    onEvent: (event) => events.push(event),
    ...rest,
    timing: { reuseGraceMs: 50, ...timing },
  });
}

function sibling(source: string, credential: Credential, overrides: Partial<SiblingCredential> = {}): SiblingCredential {
  return {
    source,
    accountId: credential.accountId,
    accessToken: credential.access,
    refreshToken: credential.refresh,
    idToken: credential.idToken,
    expiresAt: credential.expires,
    ...overrides,
  };
}

const eventsOf = (type: GuardEvent["type"]) => events.filter((event) => event.type === type);

describe("recovery verifies the identity of what it hands over", () => {
  it("a store pairing user A's access token with user B's refresh token: B's redeemed tokens are discarded, A must log in again", async () => {
    const server = await standIn();
    const mine = server.expire(server.issue("acct-team", 3600, { user: "user-a" }));
    const theirs = server.issue("acct-team", 3600, { user: "user-b" });
    // A's token was spent outside the guard.
    server.redeemOutside(mine.refresh);
    // The planted store: A's (unsigned) claims next to B's refresh token, stale so the guard redeems it.
    const planted = sibling("planted", mine, { refreshToken: theirs.refresh, expiresAt: Date.now() - 60_000 });
    // The host's own copy of A's login names whose token was spent.
    const guard = await openGuard({ siblingSources: [staticSiblingSource("stores", () => [sibling("own", mine), planted])] });

    const response = await guard.refresh(mine.refresh, redeemAt(server));
    expect(response.status).toBe(401);
    expect(eventsOf("recovered")).toEqual([]);
    expect(eventsOf("warning")).toMatchObject([{ reason: "sibling_identity_mismatch" }]);
    expect(eventsOf("failed")).toMatchObject([{ reason: "relogin_required" }]);
    // Nothing journaled under A's token: a later refresh of it is still a 401, never B's tokens.
    const again = await guard.refresh(mine.refresh, redeemAt(server));
    expect(again.status).toBe(401);
    // B's own holder still gets B's successor from the journal (B's redemption was real).
    const forB = (await (await guard.refresh(theirs.refresh, redeemAt(server))).json()) as { access_token: string };
    expect(jwtClaims(forB.access_token)?.sub).toBe("user-b");
    expect(server.counters.redemptions).toBe(2);
  });

  it.skipIf(process.getuid?.() !== 0)("a Codex CLI file owned by another user, or writable by others, is not believed", async () => {
    const server = await standIn();
    const login = server.issue("acct-owned");
    const codex = server.redeemOutside(login.refresh)!;
    const file = join(root, "auth.json");
    const content = {
      tokens: { id_token: codex.idToken, access_token: codex.access, refresh_token: codex.refresh, account_id: codex.accountId },
    };
    await fsp.writeFile(file, JSON.stringify(content), { mode: 0o600 });
    const own = sibling("own", login);
    for (const [uid, mode] of [
      [65534, 0o600],
      [0, 0o666],
    ] as const) {
      await fsp.chown(file, uid, uid);
      await fsp.chmod(file, mode);
      events = [];
      await fsp.rm(join(root, "guard"), { recursive: true, force: true });
      const guard = await openGuard({ siblingSources: [codexCliAuth(file, openAiIdentity), staticSiblingSource("own", () => [own])] });
      expect((await guard.refresh(login.refresh, redeemAt(server))).status).toBe(401);
      expect(eventsOf("recovered")).toEqual([]);
      expect(eventsOf("warning").map((event) => (event as { reason?: string }).reason)).toContain("sibling_unreadable");
    }
    // Owned by this user and private: believed (adopted).
    await fsp.chown(file, 0, 0);
    await fsp.chmod(file, 0o600);
    events = [];
    await fsp.rm(join(root, "guard"), { recursive: true, force: true });
    const guard = await openGuard({ siblingSources: [codexCliAuth(file, openAiIdentity), staticSiblingSource("own", () => [own])] });
    expect((await guard.refresh(login.refresh, redeemAt(server))).status).toBe(200);
    expect(eventsOf("recovered")).toHaveLength(1);
  });
});

describe("each host refresh is counted once", () => {
  it("two processes recovering one spent token through a stale sibling: one recovered, one shared, no nested redemption counted", async () => {
    const server = await standIn();
    const login = server.issue("acct-count");
    const sibCred = server.expire(server.redeemOutside(login.refresh)!);
    const source = staticSiblingSource("stores", () => [sibling("own", login), sibling("other-state-dir", sibCred)]);
    const first = await openGuard({ siblingSources: [source] });
    const second = await openGuard({ siblingSources: [source] });

    const answers = await Promise.all([first, second].map((guard) => guard.refresh(login.refresh, redeemAt(server))));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
    expect(server.counters.redemptions).toBe(2);
    const counts = Object.fromEntries(
      ["redeemed", "shared", "recovered", "failed"].map((type) => [type, eventsOf(type as GuardEvent["type"]).length]),
    );
    expect(counts).toEqual({ redeemed: 0, shared: 1, recovered: 1, failed: 0 });
  });
});

describe("one overall deadline per refresh", () => {
  it("garbage re-planted in a loop in the file journal: the refresh fails closed within waitTimeoutMs + requestTimeoutMs", async () => {
    const server = await standIn();
    const login = server.issue("acct-deadline");
    // Spent elsewhere: every request answers a reuse, and the reuse waits for a twin's entry.
    server.redeemOutside(login.refresh);
    const guard = await openGuard({ timing: { waitTimeoutMs: 1000, requestTimeoutMs: 1000, staleMs: 1000 } });
    const entry = join(guard.journal.dir, guard.journal.entryName(tokenKey(login.refresh)));
    const plant = () => fsp.writeFile(entry, "garbage").catch(() => undefined);
    // A process that keeps planting garbage where the token's entry belongs.
    const planter = spawn(
      process.execPath,
      ["-e", `const fs=require("fs");setInterval(()=>{try{fs.writeFileSync(${JSON.stringify(entry)},"garbage",{flag:"wx"})}catch{}},1)`],
      { stdio: "ignore" },
    );
    try {
      await plant();
      // The token request itself plants it again before answering, so every path leads back to the loop.
      const redeem: Redeem = async (token, signal) => {
        await plant();
        return redeemAt(server)(token, signal);
      };
      const started = performance.now();
      const outcome = await Promise.race([
        guard.refresh(login.refresh, redeem).then(
          () => "answered",
          (error: { code?: string }) => error.code ?? "other",
        ),
        new Promise((resolve) => setTimeout(() => resolve("still pending after 8 s"), 8000)),
      ]);
      expect(outcome).toBe(ERR_DEADLINE);
      expect(performance.now() - started).toBeLessThan(4000);
      expect(eventsOf("failed")).toMatchObject([{ reason: "deadline" }]);
    } finally {
      planter.kill();
    }
  });
});

describe("answers and the journal", () => {
  it("an answer larger than the response cap gets a failed event naming the cause", async () => {
    const body = JSON.stringify({ access_token: "at", refresh_token: "rt_big", expires_in: 3600, id_token: "x".repeat(800 * 1024) });
    const guard = await openGuard();
    const redeem: Redeem = async () => new Response(body, { status: 200, headers: { "content-type": "application/json" } });
    await expect(guard.refresh("rt_before_big", redeem)).rejects.toThrow();
    expect(eventsOf("failed")).toMatchObject([{ reason: "response_too_large" }]);
  });

  it("the largest answer read, re-encoded at its worst (invalid UTF-8 triples), fits the journal and reaches a second process", async () => {
    const head = Buffer.from('{"access_token":"at_worst","refresh_token":"rt_worst_next","expires_in":3600,"id_token":"');
    const tail = Buffer.from('"}');
    const filler = Buffer.alloc(MAX_RESPONSE_BYTES - head.length - tail.length, 0xff);
    const body = Buffer.concat([head, filler, tail]);
    expect(body.length).toBe(MAX_RESPONSE_BYTES);
    const redeem: Redeem = async () => new Response(body, { status: 200, headers: { "content-type": "application/json" } });
    const first = await openGuard();
    expect((await first.refresh("rt_worst", redeem)).status).toBe(200);
    const second = await openGuard();
    const shared = (await (await second.refresh("rt_worst", redeem)).json()) as { refresh_token: string };
    expect(shared.refresh_token).toBe("rt_worst_next");
    expect(eventsOf("failed")).toEqual([]);
    expect(eventsOf("shared")).toHaveLength(1);
  });

  it("a non-rotating answer (the same refresh token back) is handed back but never journaled as a chain link", async () => {
    let calls = 0;
    const redeem: Redeem = async (token) => {
      calls += 1;
      return new Response(JSON.stringify({ access_token: `at_${calls}`, refresh_token: token, expires_in: 1 }), {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    };
    const guard = await openGuard();
    const first = await guard.refresh("rt_same", redeem);
    expect(first.status).toBe(200);
    expect(((await first.json()) as { refresh_token: string }).refresh_token).toBe("rt_same");
    // The access token is short-lived; the next refresh of the same token must reach the endpoint again.
    const second = await guard.refresh("rt_same", redeem);
    expect(second.status).toBe(200);
    expect(calls).toBe(2);
    expect((await guard.journal.size()).entries).toBe(0);
  });

  it("refresh_token_invalidated on a first refresh is a login problem with the login command, never a reuse", async () => {
    const server = await standIn();
    const guard = await openGuard();
    // A token the endpoint does not honour right after a clean login.
    const response = await guard.refresh("rt_never_honoured", redeemAt(server));
    expect(response.status).toBe(401);
    expect(await response.text()).toBe(INVALIDATED_BODY);
    const [failed] = eventsOf("failed");
    expect(failed).toMatchObject({ reason: "relogin_required", code: "refresh_token_invalidated" });
    expect((failed as { message: string }).message).toContain("openclaw models auth login --provider openai-codex");
    expect((failed as { message: string }).message).toContain("not a race");
    expect((failed as { message: string }).message).not.toMatch(/reuse|already used/i);
    // A later caller gets the same answer, not a reuse.
    const again = await guard.refresh("rt_never_honoured", redeemAt(server));
    expect(await again.text()).toBe(INVALIDATED_BODY);
    expect(server.counters.invalid).toBe(1);
  });
});

describe("status text", () => {
  it("strips control characters from every field it prints (no escape sequence, clipboard write or forged line)", () => {
    const evil = "x\u001b]52;c;ZXZpbA==\u0007\u001b[2J\nrecent: forged\u2028line";
    const report: StatusReport = {
      plugin: { id: "refresh-guard", version: "0.2.0" },
      host: { version: evil, supported: true, hook: "attached", seam: "host-undici", seams: ["host-undici"] } as StatusReport["host"],
      guard: {
        guardDir: `/tmp/${evil}`,
        coordination: { backend: "file", location: "/tmp" },
        providers: [{ id: "openai", tokenUrl: evil }],
        siblingStateDirs: { setting: "listed", dirs: [evil] },
        providerFiles: [{ label: "codex cli auth", path: `/home/${evil}/auth.json`, exists: false }],
        locks: [],
        journal: { entries: 0, tombstones: 0, quarantined: 0, bytes: 0 },
        outcomes: { redeemed: 0, shared: 0, recovered: 0, failed: 1, warning: 0 },
        lastOutcomeAt: {},
        recent: [{ at: "2026-12-07T00:00:00.000Z", type: "failed", provider: evil, reason: evil, code: evil, pid: 1, thread: evil }],
        threads: { outcomes: { [evil]: { redeemed: 0, shared: 0, recovered: 0, failed: 1, warning: 0 } }, attached: [] },
        unguardedRefreshes: 0,
        fencedProfiles: [evil],
      },
    };
    const text = formatStatus(report);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for them
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/);
    expect(text.split("\n").filter((line) => line.startsWith("recent:"))).toEqual(["recent:"]);
    expect(text).toContain("auth.json (absent)");
  });
});

describe("where the guard dir and the Codex CLI's file are", () => {
  it("XDG_STATE_HOME counts only if this user owns it and nobody else can write it", async () => {
    const home = join(root, "home");
    const xdg = join(root, "xdg");
    const fallback = join(home, ".local", "state", "openclaw-refresh-guard");
    // Not there yet: the plugin creates it, private.
    expect(defaultGuardDir(home, { XDG_STATE_HOME: xdg })).toBe(join(xdg, "openclaw-refresh-guard"));
    await fsp.mkdir(xdg, { mode: 0o700 });
    await fsp.chmod(xdg, 0o700);
    expect(defaultGuardDir(home, { XDG_STATE_HOME: xdg })).toBe(join(xdg, "openclaw-refresh-guard"));
    await fsp.chmod(xdg, 0o1777);
    expect(defaultGuardDir(home, { XDG_STATE_HOME: xdg })).toBe(fallback);
    if (process.getuid?.() === 0) {
      await fsp.chmod(xdg, 0o755);
      await fsp.chown(xdg, 65534, 65534);
      expect(defaultGuardDir(home, { XDG_STATE_HOME: xdg })).toBe(fallback);
    }
  });

  it("an empty or relative HOME falls back to the passwd entry", () => {
    const passwd = userInfo().homedir;
    expect(userHome({ HOME: "" })).toBe(passwd);
    expect(userHome({ HOME: "relative/home" })).toBe(passwd);
    expect(userHome({ HOME: "/abs/home" })).toBe("/abs/home");
    const config = parseConfig({}, { env: { HOME: "" } });
    expect(config.guardDir).toBe(join(passwd, ".local", "state", "openclaw-refresh-guard"));
    expect(config.providerFiles.codexAuthFile).toBe(join(passwd, ".codex", "auth.json"));
  });

  it("the Codex CLI's file is $CODEX_HOME/auth.json when CODEX_HOME is set, else ~/.codex/auth.json", () => {
    expect(parseConfig({}, { home: "/h", env: { CODEX_HOME: "/h/.config/codex" } }).providerFiles.codexAuthFile).toBe(
      "/h/.config/codex/auth.json",
    );
    expect(parseConfig({}, { home: "/h", env: {} }).providerFiles.codexAuthFile).toBe("/h/.codex/auth.json");
  });
});
