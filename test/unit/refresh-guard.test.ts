import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { GuardEvent, Redeem, RefreshGuard } from "../../src/core/refresh-guard.ts";
import { ERR_LOCK_TIMEOUT, LockTimeoutError, UnsafeDirectoryError } from "../../src/errors/errors.ts";
import { type SiblingCredential, type SiblingSource, staticSiblingSource } from "../../src/siblings/sibling-source.ts";
import { type HeldLock, RefreshLocks } from "../../src/store/refresh-lock.ts";
import { tokenKey } from "../../src/store/token-crypto.ts";
import { type FileGuard, type FileGuardOptions, openFileGuard } from "../support/file-guard.ts";
import {
  answerGate,
  type Credential,
  type Fault,
  REUSED_BODY,
  type StandInEndpoint,
  type StandInOptions,
  startStandIn,
} from "../support/token-endpoint-server.ts";

const PROVIDER = "openai-codex";
const LOGIN = "openclaw models auth login --provider openai-codex";
const HOUR = 60 * 60 * 1000;

interface TokenBody {
  access_token: string;
  refresh_token: string;
  id_token?: string;
  expires_in: number;
  [field: string]: unknown;
}

let root: string;
let guardDir: string;
let events: GuardEvent[];
let servers: StandInEndpoint[];

beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-guard-"));
  guardDir = join(root, "guard");
  events = [];
  servers = [];
});

afterEach(async () => {
  // Whatever a test did, no event may carry a token the stand-in issued.
  const text = JSON.stringify(events);
  const leaked = servers.flatMap((server) => server.issuedSecrets()).filter((secret) => text.includes(secret));
  for (const server of servers) await server.stop();
  await fsp.rm(root, { recursive: true, force: true });
  expect(leaked.length, "events contain issued tokens").toBe(0);
});

async function standIn(options: StandInOptions = {}): Promise<StandInEndpoint> {
  const server = await startStandIn(options);
  servers.push(server);
  return server;
}

/** The host's real request: a form POST to the token URL through global fetch. */
function redeemAt(server: StandInEndpoint): Redeem {
  return (refreshToken, signal) =>
    fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: "app_test" }).toString(),
      signal,
    });
}

/** A holder like the Codex CLI's file: takes the successor of the token it holds. */
function codexHolder(held: string, handedBack: string[]): SiblingSource {
  let current = held;
  return {
    name: "codex-holder",
    load: async () => [],
    handBack: async (spent, successor) => {
      if (spent !== current) return { kind: "not-held" };
      current = successor.refreshToken;
      handedBack.push(successor.refreshToken);
      return { kind: "written" };
    },
  };
}

function openGuard(options: Partial<FileGuardOptions> = {}): Promise<FileGuard> {
  const { timing, ...rest } = options;
  return openFileGuard({
    provider: PROVIDER,
    guardDir,
    onEvent: (event) => events.push(event),
    ...rest,
    timing: { reuseGraceMs: 50, ...timing },
  });
}

async function tokens(response: Response): Promise<TokenBody> {
  expect(response.status).toBe(200);
  return (await response.json()) as TokenBody;
}

/** A token's fingerprint (8 hex digits of its key): what assertions compare, so a failure prints no token. */
function fp(token: string): string {
  return tokenKey(token).slice(0, 8);
}

function eventsOf(type: GuardEvent["type"]): GuardEvent[] {
  return events.filter((event) => event.type === type);
}

/** Rotates `credential` `times` times through `guard`; returns every refresh token of the chain. */
async function rotate(guard: FileGuard, server: StandInEndpoint, first: string, times: number): Promise<string[]> {
  const chain = [first];
  for (let i = 0; i < times; i += 1) {
    const body = await tokens(await guard.refresh(chain[chain.length - 1]!, redeemAt(server)));
    chain.push(body.refresh_token);
  }
  return chain;
}

/** A promise and the function that resolves it, for waiting on a hook the guard calls. */
function signal(): { reached: Promise<void>; reach: () => void } {
  let reach!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  return { reached, reach };
}

/** Runs `after` with the outcome of each of the guard's lock attempts (`coordination.tryLock`), once it has returned. */
function afterLockAttempts(guard: FileGuard, after: (lock: HeldLock | null) => void): void {
  const tryLock = guard.coordination.tryLock.bind(guard.coordination);
  vi.spyOn(guard.coordination, "tryLock").mockImplementation(async (key) => {
    const lock = await tryLock(key);
    after(lock);
    return lock;
  });
}

function sibling(source: string, credential: Credential): SiblingCredential {
  return {
    source,
    accountId: credential.accountId,
    accessToken: credential.access,
    refreshToken: credential.refresh,
    idToken: credential.idToken,
    expiresAt: credential.expires,
  };
}

describe("opening a guard on the file backend", () => {
  it("creates the guard directory tree private (0700)", async () => {
    await openGuard();
    for (const dir of ["", "locks", "journal", "quarantine"]) {
      expect((await fsp.stat(join(guardDir, dir))).mode & 0o777).toBe(0o700);
    }
  });

  it("refuses a group-writable guard directory", async () => {
    await fsp.mkdir(guardDir);
    await fsp.chmod(guardDir, 0o770);
    await expect(openGuard()).rejects.toBeInstanceOf(UnsafeDirectoryError);
  });
});

describe("RefreshGuard.refresh: one redemption per rotation", () => {
  it("answers 20 concurrent refreshes of one token with one redemption and one shared successor", async () => {
    const server = await standIn();
    const guard = await openGuard();
    const credential = server.issue("acct-1");

    const responses = await Promise.all(Array.from({ length: 20 }, () => guard.refresh(credential.refresh, redeemAt(server))));

    expect(responses.map((response) => response.status)).toEqual(Array(20).fill(200));
    expect(responses.every((response) => response.headers.get("content-type") === "application/json")).toBe(true);
    const bodies = await Promise.all(responses.map((response) => response.json() as Promise<TokenBody>));
    expect(server.counters.redemptions).toBe(1);
    expect(server.counters.requests).toBe(1);
    expect(server.counters.reuses).toBe(0);
    expect(new Set(bodies.map((body) => body.refresh_token)).size).toBe(1);
    expect(new Set(bodies.map((body) => body.access_token)).size).toBe(1);
    for (const body of bodies) {
      expect(typeof body.access_token).toBe("string");
      expect(typeof body.refresh_token).toBe("string");
      expect(typeof body.id_token).toBe("string");
      expect(body.expires_in).toBeGreaterThan(3590);
      expect(body.expires_in).toBeLessThanOrEqual(3600);
      expect(body.token_type).toBe("Bearer");
    }
    const successor = bodies[0]!;
    expect(fp(successor.refresh_token)).not.toBe(fp(credential.refresh));
    expect(server.refreshLive(successor.refresh_token)).toBe(true);
    expect(server.accessValid(successor.access_token)).toBe(true);
    expect(eventsOf("redeemed")).toHaveLength(1);
    expect(eventsOf("shared")).toHaveLength(19);
    expect(eventsOf("failed")).toEqual([]);
  });

  it("redeems once when two guard instances (two processes' worth) share one guard directory", async () => {
    // The one request is held in flight until the other instance has found the lock taken.
    const answer = answerGate();
    const server = await standIn({ gate: answer.gate });
    const [a, b] = await Promise.all([openGuard(), openGuard()]);
    const blocked = signal();
    for (const guard of [a, b]) afterLockAttempts(guard, (lock) => void (lock === null && blocked.reach()));
    const credential = server.issue("acct-2");
    const all = Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).refresh(credential.refresh, redeemAt(server))));
    await answer.arrived;
    await blocked.reached;
    answer.release();
    const responses = await all;
    const bodies = await Promise.all(responses.map(tokens));
    expect(server.counters.requests).toBe(1);
    expect(new Set(bodies.map((body) => body.refresh_token)).size).toBe(1);
  });

  it("walks the chain: a caller presenting the oldest of 3 rotations gets the newest without a redemption", async () => {
    const server = await standIn();
    const guard = await openGuard();
    const credential = server.issue("acct-chain");
    const chain = await rotate(guard, server, credential.refresh, 3);
    expect(server.counters.redemptions).toBe(3);

    const body = await tokens(await guard.refresh(chain[0]!, redeemAt(server)));
    expect(fp(body.refresh_token)).toBe(fp(chain[3]!));
    expect(server.refreshLive(body.refresh_token)).toBe(true);
    expect(server.accessValid(body.access_token)).toBe(true);
    expect(server.counters.redemptions).toBe(3);
    expect(server.counters.requests).toBe(3);
    const shared = eventsOf("shared");
    expect(shared).toHaveLength(1);
    expect(shared[0]).toMatchObject({ hops: 3, key: tokenKey(chain[0]!).slice(0, 8) });

    // A middle link lands on the same head.
    expect(fp((await tokens(await guard.refresh(chain[2]!, redeemAt(server)))).refresh_token)).toBe(fp(chain[3]!));
    expect(server.counters.requests).toBe(3);
  });

  it("redeems the newest link exactly once when the latest access token has expired (clock 2 h ahead)", async () => {
    const server = await standIn();
    let offset = 0;
    const guard = await openGuard({ now: () => Date.now() + offset });
    const credential = server.issue("acct-late");
    const chain = await rotate(guard, server, credential.refresh, 3);

    offset = 2 * HOUR;
    const responses = await Promise.all([1, 2, 3].map(() => guard.refresh(chain[0]!, redeemAt(server))));
    const bodies = await Promise.all(responses.map(tokens));
    expect(server.counters.redemptions).toBe(4);
    expect(server.counters.reuses).toBe(0);
    const head = bodies[0]!.refresh_token;
    expect(bodies.every((body) => body.refresh_token === head)).toBe(true);
    expect(chain.map(fp)).not.toContain(fp(head));
    expect(server.refreshLive(head)).toBe(true);
    expect(server.refreshLive(chain[3]!)).toBe(false);
    expect(eventsOf("redeemed").at(-1)).toMatchObject({ hops: 3 });

    // The new head is fresh by the same clock: no further redemption.
    expect(fp((await tokens(await guard.refresh(chain[1]!, redeemAt(server)))).refresh_token)).toBe(fp(head));
    expect(server.counters.redemptions).toBe(4);
  });

  it("reads a successor journaled by an earlier guard instance (a restarted process)", async () => {
    const server = await standIn();
    const credential = server.issue("acct-restart");
    const first = await openGuard();
    const chain = await rotate(first, server, credential.refresh, 1);
    const second = await openGuard();
    expect(fp((await tokens(await second.refresh(credential.refresh, redeemAt(server)))).refresh_token)).toBe(fp(chain[1]!));
    expect(server.counters.requests).toBe(1);
  });
});

describe("RefreshGuard.refresh: token spent outside the guard", () => {
  it("recovers the successor a sibling of the same account holds, without a further redemption", async () => {
    const server = await standIn();
    const credential = server.issue("acct-r");
    const successor = server.redeemOutside(credential.refresh)!;
    expect(successor).not.toBeNull();
    // The stores the source reads hold the caller's own (now stale) copy and the sibling's successor.
    const source = staticSiblingSource("stores", () => [
      sibling("agent-a/auth-profiles.json#openai-codex", credential),
      sibling("agent-b/auth-profiles.json#openai-codex", successor),
    ]);
    const guard = await openGuard({ siblingSources: [source] });

    const body = await tokens(await guard.refresh(credential.refresh, redeemAt(server)));
    expect(fp(body.access_token)).toBe(fp(successor.access));
    expect(fp(body.refresh_token)).toBe(fp(successor.refresh));
    expect(fp(body.id_token!)).toBe(fp(successor.idToken));
    expect(body.expires_in).toBeGreaterThan(3500);
    const recovered = eventsOf("recovered");
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ provider: PROVIDER, source: "agent-b/auth-profiles.json#openai-codex" });
    expect(server.counters.redemptions).toBe(1); // only the outside one
    expect(server.counters.requests).toBe(1); // the guard's one try, answered "reused"
    expect(server.refreshLive(successor.refresh)).toBe(true);
    expect(eventsOf("failed")).toEqual([]);

    // The recovery was journaled: the next caller with the stale token needs no request at all.
    expect(await guard.journal.has(tokenKey(credential.refresh))).toBe(true);
    expect(fp((await tokens(await guard.refresh(credential.refresh, redeemAt(server)))).refresh_token)).toBe(fp(successor.refresh));
    expect(server.counters.requests).toBe(1);
  });

  it("redeems a sibling's refresh token once when the sibling's access token is stale", async () => {
    const server = await standIn();
    const credential = server.issue("acct-s");
    const successor = server.expire(server.redeemOutside(credential.refresh)!);
    const source = staticSiblingSource("stores", () => [sibling("mine", credential), sibling("theirs", successor)]);
    const guard = await openGuard({ siblingSources: [source] });

    const body = await tokens(await guard.refresh(credential.refresh, redeemAt(server)));
    expect(fp(body.refresh_token)).not.toBe(fp(successor.refresh));
    expect(server.refreshLive(body.refresh_token)).toBe(true);
    expect(server.accessValid(body.access_token)).toBe(true);
    expect(server.counters.redemptions).toBe(2);
    expect(server.counters.reuses).toBe(1);
    expect(eventsOf("recovered")).toHaveLength(1);
  });

  it("learns the account from the host's fence of the presented token (2026.9), redeems the Codex CLI's stale sibling once and hands it the successor", async () => {
    const server = await standIn();
    const credential = server.issue("acct-fence");
    // The Codex CLI rotated it; its access token has run out since.
    const codex = server.expire(server.redeemOutside(credential.refresh)!);
    const handedBack: string[] = [];
    const fenced = (presented: string) => presented === credential.refresh;
    const source = staticSiblingSource("stores", () => [
      // The host's own copy, replaced by its refresh fence: no token, but whose it was.
      {
        source: "state/openclaw.sqlite#openai:default (fenced)",
        refreshToken: "openclaw-oauth-refresh-fence:v1:x",
        accountId: "acct-fence",
        email: credential.email,
        fencedFrom: fenced,
      },
      sibling("~/.codex/auth.json", codex),
    ]);
    const guard = await openGuard({ siblingSources: [source, codexHolder(codex.refresh, handedBack)] });

    const body = await tokens(await guard.refresh(credential.refresh, redeemAt(server)));
    expect(server.refreshLive(body.refresh_token)).toBe(true);
    expect(server.counters).toMatchObject({ redemptions: 2, reuses: 1 });
    expect(handedBack.map(fp)).toEqual([fp(body.refresh_token)]);
    expect(eventsOf("recovered")).toMatchObject([{ source: "~/.codex/auth.json" }]);
  });

  it("without the fence (or any copy naming the account) recovers nothing: the account is unknown", async () => {
    const server = await standIn();
    const credential = server.issue("acct-nofence");
    const codex = server.redeemOutside(credential.refresh)!;
    const handedBack: string[] = [];
    const source = staticSiblingSource("stores", () => [
      { source: "other fence", refreshToken: "openclaw-oauth-refresh-fence:v1:y", accountId: "acct-nofence", fencedFrom: () => false },
      sibling("~/.codex/auth.json", codex),
    ]);
    const guard = await openGuard({ siblingSources: [source, codexHolder(codex.refresh, handedBack)] });
    expect((await guard.refresh(credential.refresh, redeemAt(server))).status).toBe(401);
    expect(handedBack).toEqual([]);
    expect(server.refreshLive(codex.refresh)).toBe(true);
  });

  it("never adopts a sibling of another account", async () => {
    const server = await standIn();
    const credential = server.issue("acct-mine");
    server.redeemOutside(credential.refresh);
    const stranger = server.issue("acct-stranger");
    const source = staticSiblingSource("stores", () => [sibling("mine", credential), sibling("stranger", stranger)]);
    const guard = await openGuard({ siblingSources: [source] });

    const response = await guard.refresh(credential.refresh, redeemAt(server));
    expect(response.status).toBe(401);
    expect(eventsOf("recovered")).toEqual([]);
    expect(server.refreshLive(stranger.refresh)).toBe(true);
  });

  it("with no sibling: returns the endpoint's 401 unchanged, reports relogin_required, and never asks again", async () => {
    const server = await standIn();
    const credential = server.issue("acct-gone");
    server.redeemOutside(credential.refresh);
    const guard = await openGuard();

    const response = await guard.refresh(credential.refresh, redeemAt(server));
    expect(response.status).toBe(401);
    expect(await response.text()).toBe(REUSED_BODY);
    const failed = eventsOf("failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ type: "failed", provider: PROVIDER, reason: "relogin_required", code: "refresh_token_reused" });
    expect((failed[0] as { message: string }).message).toContain(LOGIN);
    expect(server.counters.requests).toBe(1);

    const again = await guard.refresh(credential.refresh, redeemAt(server));
    expect(again.status).toBe(401);
    expect(await again.text()).toBe(REUSED_BODY);
    expect(server.counters.requests).toBe(1);

    // The tombstone is on disk: another process does not ask either.
    const other = await openGuard();
    expect((await other.refresh(credential.refresh, redeemAt(server))).status).toBe(401);
    expect(server.counters.requests).toBe(1);
    expect(await guard.journal.readTombstone(tokenKey(credential.refresh), credential.refresh)).toMatchObject({
      code: "refresh_token_reused",
    });
  });
});

describe("RefreshGuard.refresh: caller abort", () => {
  it("rejects the caller with AbortError but still journals the answer of a request that already left", async () => {
    // The stand-in holds its answer until the test releases it: the request is in flight for as long as we say.
    const answer = answerGate();
    const server = await standIn({ gate: answer.gate });
    const written = signal();
    const guard = await openGuard({ stage: (stage) => void (stage === "journaled" && written.reach()) });
    const credential = server.issue("acct-abort");
    const controller = new AbortController();

    const outcome = guard.refresh(credential.refresh, redeemAt(server), { signal: controller.signal }).then(
      () => null,
      (caught: unknown) => caught,
    );
    await answer.arrived;
    controller.abort();
    // Released at once: the caller is rejected while the stand-in still holds the answer.
    const error = await outcome;
    expect((error as Error | null)?.name).toBe("AbortError");
    expect(server.counters.requests).toBe(1);
    expect(server.counters.redemptions).toBe(0);

    const key = tokenKey(credential.refresh);
    answer.release();
    await written.reached;
    expect(await guard.journal.has(key)).toBe(true);
    expect(server.counters.redemptions).toBe(1);
    const journaled = await guard.journal.read(key, credential.refresh);

    const body = await tokens(await guard.refresh(credential.refresh, redeemAt(server)));
    expect(fp(body.refresh_token)).toBe(fp(journaled!.refreshToken));
    expect(server.refreshLive(body.refresh_token)).toBe(true);
    expect(server.counters.redemptions).toBe(1);
    expect(server.counters.requests).toBe(1);
  });

  it("rejects at once for a signal that is already aborted, and sends nothing", async () => {
    const server = await standIn();
    const guard = await openGuard();
    const credential = server.issue("acct-aborted");
    const reason = new Error("caller gave up");
    let redeemedForAborted = 0;
    const redeem: Redeem = (token, redeemSignal) => {
      redeemedForAborted += 1;
      return redeemAt(server)(token, redeemSignal);
    };
    await expect(guard.refresh(credential.refresh, redeem, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(server.counters.requests).toBe(0);
    expect(await guard.journal.has(tokenKey(credential.refresh))).toBe(false);
    // Nothing was left running behind the rejection: the next caller of the same token does not
    // join a flight (no "shared"), it leads its own, and the aborted caller's redeem is never called.
    await tokens(await guard.refresh(credential.refresh, redeemAt(server)));
    expect(redeemedForAborted).toBe(0);
    expect(server.counters.requests).toBe(1);
    expect(eventsOf("redeemed")).toHaveLength(1);
    expect(eventsOf("shared")).toEqual([]);
  });
});

describe("RefreshGuard.refresh: endpoint faults", () => {
  const answered: { fault: Fault; status: number; body: string }[] = [
    { fault: "500", status: 500, body: '{"error":{"code":"server_error","message":"boom"}}' },
    { fault: "503", status: 503, body: "<html>Service Unavailable</html>" },
    { fault: "invalid-json", status: 200, body: '{"access_token": "abc", ' },
  ];

  for (const { fault, status, body } of answered) {
    it(`passes a "${fault}" answer through unchanged and journals nothing`, async () => {
      const server = await standIn();
      const guard = await openGuard();
      const credential = server.issue("acct-fault");
      server.inject(fault);

      const response = await guard.refresh(credential.refresh, redeemAt(server));
      expect(response.status).toBe(status);
      expect(await response.text()).toBe(body);
      const key = tokenKey(credential.refresh);
      expect(await guard.journal.has(key)).toBe(false);
      expect(await guard.journal.readTombstone(key, credential.refresh)).toBeNull();
      expect(eventsOf("failed")).toMatchObject([{ reason: "endpoint_error" }]);

      // Nothing was spent: the next try redeems normally.
      const next = await tokens(await guard.refresh(credential.refresh, redeemAt(server)));
      expect(server.refreshLive(next.refresh_token)).toBe(true);
      expect(server.counters.redemptions).toBe(1);
    });
  }

  it('passes a 200 without a refresh token ("no-refresh-token") through and journals nothing', async () => {
    const server = await standIn();
    const guard = await openGuard();
    const credential = server.issue("acct-nort");
    server.inject("no-refresh-token");

    const response = await guard.refresh(credential.refresh, redeemAt(server));
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(typeof body.access_token).toBe("string");
    expect(body.refresh_token).toBeUndefined();
    expect(await guard.journal.has(tokenKey(credential.refresh))).toBe(false);
  });

  it('rejects like fetch on a connection reset ("reset") and journals nothing', async () => {
    const server = await standIn();
    const guard = await openGuard();
    const credential = server.issue("acct-reset");
    server.inject("reset");

    await expect(guard.refresh(credential.refresh, redeemAt(server))).rejects.toBeInstanceOf(TypeError);
    expect(await guard.journal.has(tokenKey(credential.refresh))).toBe(false);
    expect(eventsOf("failed")).toMatchObject([{ reason: "network" }]);

    await tokens(await guard.refresh(credential.refresh, redeemAt(server)));
    expect(server.counters.redemptions).toBe(1);
  });

  it('rejects with a TimeoutError after requestTimeoutMs when the endpoint hangs ("hang")', async () => {
    const server = await standIn();
    const guard = await openGuard({ timing: { requestTimeoutMs: 300 } });
    const credential = server.issue("acct-hang");
    server.inject("hang");

    await expect(guard.refresh(credential.refresh, redeemAt(server))).rejects.toMatchObject({ name: "TimeoutError" });
    expect(await guard.journal.has(tokenKey(credential.refresh))).toBe(false);
    expect(eventsOf("failed")).toMatchObject([{ reason: "endpoint_timeout" }]);
  });
});

describe("RefreshGuard.refresh: the cross-process lock", () => {
  it("fails closed with LockTimeoutError and sends nothing while another holder keeps the lock", async () => {
    const server = await standIn();
    // The guard's clock stands still until the test moves it: the wait ends by waitTimeoutMs on that clock.
    const started = Date.now();
    let clock = started;
    const guard = await openGuard({ now: () => clock, timing: { waitTimeoutMs: 300 } });
    const credential = server.issue("acct-locked");
    const other = new RefreshLocks(join(guardDir, "locks"), { staleMs: 2000, updateMs: 1000 });
    const held = await other.tryAcquire(tokenKey(credential.refresh));
    expect(held).not.toBeNull();
    let attempted = signal();
    afterLockAttempts(guard, () => attempted.reach());
    try {
      let settled = false;
      const outcome = guard.refresh(credential.refresh, redeemAt(server)).then(
        () => null,
        (caught: unknown) => caught,
      );
      void outcome.finally(() => {
        settled = true;
      });
      await attempted.reached;
      // 1 ms before the deadline it still waits: two more attempts, each after the clock read 299 ms.
      clock = started + 299;
      for (let i = 0; i < 2; i += 1) {
        attempted = signal();
        await attempted.reached;
      }
      expect(settled).toBe(false);
      // At the deadline it gives up.
      clock = started + 300;
      const error = await outcome;
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect((error as LockTimeoutError).code).toBe(ERR_LOCK_TIMEOUT);
      expect(server.counters.requests).toBe(0);
      expect(eventsOf("failed")).toMatchObject([{ reason: "lock_timeout" }]);
    } finally {
      await held!.release();
    }
    // Once released, the same guard redeems.
    await tokens(await guard.refresh(credential.refresh, redeemAt(server)));
    expect(server.counters.requests).toBe(1);
  });

  it("wakes a waiter when the holder releases, well before the poll interval", async () => {
    const server = await standIn();
    // A poll (and a wait timeout) far longer than the test's own timeout: only the watch can wake it.
    const guard = await openGuard({ timing: { pollMs: HOUR, waitTimeoutMs: HOUR } });
    const credential = server.issue("acct-wake");
    const other = new RefreshLocks(join(guardDir, "locks"), { staleMs: 2000, updateMs: 1000 });
    const held = await other.tryAcquire(tokenKey(credential.refresh));
    expect(held).not.toBeNull();
    // The holder lets go once the guard is waiting for a change.
    const waitForChange = guard.coordination.waitForChange.bind(guard.coordination);
    const waits = vi.spyOn(guard.coordination, "waitForChange").mockImplementation((key, timeoutMs) => {
      const waiting = waitForChange(key, timeoutMs);
      void held!.release();
      return waiting;
    });
    await tokens(await guard.refresh(credential.refresh, redeemAt(server)));
    expect(waits).toHaveBeenCalledTimes(1);
    expect(server.counters.requests).toBe(1);
  });

  it("a waiter polls only the lock while its watch sees nothing change, and re-reads the journal once the holder releases", async () => {
    const server = await standIn();
    const guard = await openGuard({ timing: { pollMs: 40 } });
    const credential = server.issue("acct-lean");
    const other = new RefreshLocks(join(guardDir, "locks"), { staleMs: 2000, updateMs: 1000 });
    const held = await other.tryAcquire(tokenKey(credential.refresh));
    let checks = 0;
    const has = guard.journal.has.bind(guard.journal);
    guard.journal.has = (key: string) => {
      checks += 1;
      return has(key);
    };
    // Held for about ten poll intervals, then released without an entry: the waiter redeems.
    setTimeout(() => void held!.release(), 400);
    await tokens(await guard.refresh(credential.refresh, redeemAt(server)));
    expect(server.counters.redemptions).toBe(1);
    // After the release event and under the lock; never at each of the ~10 polls.
    expect(checks).toBeLessThanOrEqual(3);
  });

  it("holders() shows this process holding the lock while its request is in flight, and nothing after", async () => {
    const server = await standIn();
    const credential = server.issue("acct-holders");
    let during: Awaited<ReturnType<RefreshGuard["holders"]>> = [];
    const guard: RefreshGuard = await openGuard({
      stage: async (stage) => {
        if (stage === "before-post") during = await guard.holders();
      },
    });
    await tokens(await guard.refresh(credential.refresh, redeemAt(server)));
    expect(during).toHaveLength(1);
    expect(during[0]).toMatchObject({ key: tokenKey(credential.refresh), pid: process.pid });
    expect(await guard.holders()).toEqual([]);
  });

  it("a holder whose lock was taken over before it sent steps back and uses the new holder's result", async () => {
    const server = await standIn({ latencyMs: 200 });
    const credential = server.issue("acct-takeover");
    const key = tokenKey(credential.refresh);
    let rival: Promise<Response> | null = null;
    const slow = await openGuard({
      stage: async (stage) => {
        if (stage !== "before-post" || rival !== null) return;
        // Frozen past staleMs: its lock looks dead, and a rival takes it over. The slow holder
        // wakes while the rival still holds the lock (a new directory at the same path).
        const old = new Date(Date.now() - 10_000);
        await fsp.utimes(join(guardDir, "locks", `${key}.lock`), old, old);
        let rivalHoldsLock!: () => void;
        const held = new Promise<void>((resolve) => (rivalHoldsLock = resolve));
        const rivalGuard = await openGuard({ stage: (s) => void (s === "before-post" && rivalHoldsLock()) });
        rival = rivalGuard.refresh(credential.refresh, redeemAt(server));
        await held;
      },
    });

    const body = await tokens(await slow.refresh(credential.refresh, redeemAt(server)));
    const rivalBody = await tokens(await rival!);
    expect(fp(body.refresh_token)).toBe(fp(rivalBody.refresh_token));
    expect(server.counters.requests).toBe(1);
    expect(server.counters.reuses).toBe(0);
    expect(events.some((event) => event.type === "warning" && event.reason === "lock_compromised")).toBe(true);
  });
});

describe("RefreshGuard events", () => {
  it("never contain any token the stand-in issued, across success, sharing, recovery, relogin and faults", async () => {
    const server = await standIn();
    const sources: SiblingCredential[] = [];
    const guard = await openGuard({ siblingSources: [staticSiblingSource("stores", () => sources)] });

    const happy = server.issue("acct-e1");
    const chain = await rotate(guard, server, happy.refresh, 2);
    await Promise.all([1, 2, 3].map(() => guard.refresh(chain[0]!, redeemAt(server))));

    const recoverable = server.issue("acct-e2");
    const successor = server.redeemOutside(recoverable.refresh)!;
    sources.push(sibling("mine", recoverable), sibling("theirs", successor));
    await guard.refresh(recoverable.refresh, redeemAt(server));

    const lost = server.issue("acct-e3");
    server.redeemOutside(lost.refresh);
    await guard.refresh(lost.refresh, redeemAt(server));
    await guard.refresh(lost.refresh, redeemAt(server));

    const faulty = server.issue("acct-e4");
    server.inject("500");
    await guard.refresh(faulty.refresh, redeemAt(server));
    server.inject("reset");
    await guard.refresh(faulty.refresh, redeemAt(server)).catch(() => undefined);

    for (const type of ["redeemed", "shared", "recovered", "failed"] as const) {
      expect(eventsOf(type).length, `no ${type} event`).toBeGreaterThan(0);
    }
    const text = JSON.stringify(events);
    const secrets = server.issuedSecrets();
    expect(secrets.length).toBeGreaterThan(10);
    const leaked = secrets.filter((secret) => text.includes(secret));
    expect(leaked.length, "events contain issued tokens").toBe(0);
  });
});
