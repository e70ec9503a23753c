// Every holder of the login keeps a live token: whenever the guard redeems a token the Codex CLI's
// auth.json also holds, the successor is written there in the same critical section (not only in
// recovery), and the write-back is safe against a symlink, another owner, and a codex login that
// lands between the read and the rename. Real files, a real HTTP token endpoint.
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { GuardEvent, Redeem } from "../../src/core/refresh-guard.ts";
import { openAiIdentity } from "../../src/providers/openai.ts";
import { codexCliAuth, writeCodexSuccessor } from "../../src/providers/openai-codex-cli.ts";
import { staticSiblingSource } from "../../src/siblings/sibling-source.ts";
import { type FileGuard, openFileGuard } from "../support/file-guard.ts";
import { type Credential, type StandInEndpoint, startStandIn } from "../support/token-endpoint-server.ts";

let root: string;
let server: StandInEndpoint;
let events: GuardEvent[];

beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-codex-wb-"));
  server = await startStandIn();
  events = [];
});

afterEach(async () => {
  const text = JSON.stringify(events);
  const leaked = server.issuedSecrets().filter((secret) => text.includes(secret));
  await server.stop();
  await fsp.rm(root, { recursive: true, force: true });
  expect(leaked).toEqual([]);
});

function redeemAt(endpoint: StandInEndpoint): Redeem {
  return (refreshToken, signal) =>
    fetch(endpoint.url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: "app_test" }).toString(),
      signal,
    });
}

async function writeCodexFile(file: string, credential: Credential, mode = 0o600): Promise<void> {
  const content = {
    OPENAI_API_KEY: null,
    tokens: {
      id_token: credential.idToken,
      access_token: credential.access,
      refresh_token: credential.refresh,
      account_id: credential.accountId,
    },
    last_refresh: "2026-01-01T00:00:00Z",
  };
  await fsp.writeFile(file, `${JSON.stringify(content, null, 2)}\n`, { mode });
  await fsp.chmod(file, mode);
}

async function heldBy(file: string): Promise<string> {
  return JSON.parse(await fsp.readFile(file, "utf8")).tokens.refresh_token;
}

function guardWith(file: string, extra: Parameters<typeof staticSiblingSource>[1] = () => []): Promise<FileGuard> {
  return openFileGuard({
    provider: "openai-codex",
    guardDir: join(root, "guard"),
    siblingSources: [codexCliAuth(file, openAiIdentity), staticSiblingSource("stores", extra)],
    onEvent: (event) => events.push(event),
    timing: { reuseGraceMs: 50 },
  });
}

async function refreshed(guard: FileGuard, token: string): Promise<{ access_token: string; refresh_token: string }> {
  const response = await guard.refresh(token, redeemAt(server));
  expect(response.status).toBe(200);
  return (await response.json()) as { access_token: string; refresh_token: string };
}

describe("the Codex CLI's file keeps a live token", () => {
  it("OpenClaw and the Codex CLI share a login: after two rotations through the guard the Codex CLI's next refresh still succeeds", async () => {
    const file = join(root, "auth.json");
    const login = server.expire(server.issue("acct-shared"));
    await writeCodexFile(file, login);
    const guard = await guardWith(file);

    const first = await refreshed(guard, login.refresh);
    // Written in the redemption's critical section: the file holds the successor as soon as the host has it.
    expect(await heldBy(file)).toBe(first.refresh_token);
    const second = await refreshed(guard, first.refresh_token);
    expect(await heldBy(file)).toBe(second.refresh_token);
    expect(server.counters).toMatchObject({ redemptions: 2, reuses: 0 });
    // The Codex CLI (stand-in) refreshes what its file holds: live.
    expect(server.redeemOutside(await heldBy(file))).not.toBeNull();
    expect(server.counters.reuses).toBe(0);
  });

  it("after recovery adopted the Codex CLI's credential, the host's next rotation of it is written back too", async () => {
    const file = join(root, "auth.json");
    const login = server.issue("acct-adopt");
    // The Codex CLI rotated first; its access token is still valid.
    const codex = server.redeemOutside(login.refresh)!;
    await writeCodexFile(file, codex);
    const own = {
      source: "own",
      accountId: login.accountId,
      accessToken: login.access,
      refreshToken: login.refresh,
      idToken: login.idToken,
    };
    const guard = await guardWith(file, () => [own]);

    const adopted = await refreshed(guard, login.refresh);
    expect(adopted.refresh_token).toBe(codex.refresh);
    expect(events.filter((event) => event.type === "recovered")).toHaveLength(1);
    // The host's copy expires; it rotates the adopted token through the guard.
    const next = await refreshed(guard, adopted.refresh_token);
    expect(next.refresh_token).not.toBe(codex.refresh);
    expect(await heldBy(file)).toBe(next.refresh_token);
    expect(server.redeemOutside(await heldBy(file))).not.toBeNull();
    expect(server.counters.reuses).toBe(1);
  });

  it("writes through a symlinked auth.json to its target: the link stays a link", async () => {
    const real = join(root, "real");
    await fsp.mkdir(real);
    const target = join(real, "auth.json");
    const link = join(root, "auth.json");
    const login = server.issue("acct-link");
    await writeCodexFile(target, login);
    await fsp.symlink(target, link);
    const guard = await guardWith(link);

    const body = await refreshed(guard, login.refresh);
    expect((await fsp.lstat(link)).isSymbolicLink()).toBe(true);
    expect(await heldBy(target)).toBe(body.refresh_token);
    expect((await fsp.readdir(real)).sort()).toEqual(["auth.json"]);
  });

  it.skipIf(process.getuid?.() !== 0)("a write-back by root keeps the user's owner and mode", async () => {
    const file = join(root, "auth.json");
    const login = server.issue("acct-owner");
    await writeCodexFile(file, login, 0o640);
    await fsp.chown(file, 65534, 65534);
    const guard = await guardWith(file);

    const body = await refreshed(guard, login.refresh);
    const stat = await fsp.stat(file);
    expect(await heldBy(file)).toBe(body.refresh_token);
    expect([stat.uid, stat.gid, stat.mode & 0o777]).toEqual([65534, 65534, 0o640]);
  });

  it("a codex login that lands between the read and the rename is left alone, and a warning says so", async () => {
    const file = join(root, "auth.json");
    const login = server.issue("acct-race");
    await writeCodexFile(file, login);
    const relogin = server.issue("acct-race");
    const result = await writeCodexSuccessor(
      file,
      login.refresh,
      { accessToken: "at_next", refreshToken: "rt_next", expiresAt: Date.now() + 3_600_000, extra: {} },
      openAiIdentity,
      { beforeRename: () => writeCodexFile(file, relogin) },
    );
    expect(result.kind).toBe("left");
    expect(await heldBy(file)).toBe(relogin.refresh);
    expect((await fsp.readdir(root)).filter((name) => name.endsWith(".tmp"))).toEqual([]);

    // Through the guard: the warning names the file, never a token.
    const source = codexCliAuth(file, openAiIdentity);
    const racing = {
      ...source,
      handBack: (spent: string, successor: Parameters<NonNullable<typeof source.handBack>>[1]) =>
        writeCodexSuccessor(file, spent, successor, openAiIdentity, {
          beforeRename: () => writeCodexFile(file, server.issue("acct-race")),
        }),
    };
    const held = await heldBy(file);
    const guard = await openFileGuard({
      provider: "openai-codex",
      guardDir: join(root, "guard"),
      siblingSources: [racing],
      onEvent: (event) => events.push(event),
    });
    await refreshed(guard, held);
    expect(events.filter((event) => event.type === "warning")).toMatchObject([{ reason: "sibling_write_back_skipped" }]);
  });
});
