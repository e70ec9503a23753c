// A stand-in for an OAuth token endpoint that follows its provider's rotation rules: every refresh
// token redeems exactly once. OpenAI (the default dialect): presenting it again answers 401
// `refresh_token_reused` (the exact body OpenAI sends); an unknown or revoked token answers 401
// `refresh_token_invalidated`. xAI and Anthropic (`dialect`): a reuse answers 400 `invalid_grant`
// and revokes the whole token family (every refresh and access token of that login), after which
// every token of it answers the same 400; xAI also serves its OpenID discovery document.
// Options: latency, access-token lifetime, family revocation (a reuse also revokes every
// descendant, as some reports say OpenAI does), injected faults, and counters. Used by the tests,
// the demo and the benchmark, over real HTTP or HTTPS on loopback.
import { randomBytes } from "node:crypto";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";

export const TOKEN_PATH = "/oauth/token";
export const ACCOUNT_CLAIM = "https://api.openai.com/auth";

export const REUSED_BODY = JSON.stringify({
  error: {
    message: "Your refresh token has already been used to generate a new access token. Please try signing in again.",
    type: "invalid_request_error",
    param: null,
    code: "refresh_token_reused",
  },
});

export const INVALIDATED_BODY = JSON.stringify({
  error: {
    message: "Your session has ended. Please log in again.",
    type: "invalid_request_error",
    param: null,
    code: "refresh_token_invalidated",
  },
});

/** xAI's token endpoint as its discovery document names it today, and the legacy one a stored credential may name. */
export const XAI_TOKEN_PATH = "/oauth2/token";
export const XAI_LEGACY_TOKEN_PATH = "/oauth/token";
export const XAI_DISCOVERY_PATH = "/.well-known/openid-configuration";
export const XAI_ISSUER = "https://auth.x.ai";
export const ANTHROPIC_TOKEN_PATH = "/v1/oauth/token";

/** xAI's answer to a reused, revoked or unknown refresh token. */
export const XAI_REVOKED_BODY = JSON.stringify({ error: "invalid_grant", error_description: "Refresh token has been revoked" });
/** Anthropic's answer to a reused, revoked, expired or unknown refresh token: one body for all. */
export const ANTHROPIC_INVALID_BODY = JSON.stringify({ error: "invalid_grant", error_description: "Refresh token not found or invalid" });

/** Whose rules the stand-in follows. */
export type Dialect = "openai" | "xai" | "anthropic";

/** What the next token request gets instead of a normal answer (the token is not consumed). */
export type Fault =
  | "hang" // never answers
  | "stall-body" // 200 headers and the start of a body that never ends
  | "500" // 500 with a JSON error body
  | "503" // 503 with an HTML body
  | "reset" // closes the connection without a response
  | "invalid-json" // 200 with a body that is not JSON
  | "no-refresh-token"; // 200 with an access token but no refresh_token

export interface StandInOptions {
  /** Delay before each token answer, ms. Default 0. */
  latencyMs?: number;
  /**
   * Called when a token request arrives (after it is counted, before it is answered); the answer
   * waits until the returned promise settles. Lets a test hold a request in flight and release it
   * explicitly (see `answerGate`).
   */
  gate?: () => Promise<void>;
  /** expires_in of issued access tokens, seconds. Default 3600. */
  accessLifetimeSec?: number;
  /** A reuse also revokes the reused token's newest descendants. Default false. */
  familyRevocation?: boolean;
  /** TLS key and certificate: serve HTTPS instead of HTTP. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  host?: string;
  port?: number;
  /** Extra routes (e.g. the host's model endpoint); return true when handled. */
  route?: (req: IncomingMessage, res: ServerResponse, body: string) => boolean;
  now?: () => number;
  /** Pad every issued id token to at least this many bytes (a large id_token, as some logins carry). */
  idTokenBytes?: number;
  /** Whose rules to follow (default "openai"). xAI and Anthropic always revoke the whole family on reuse. */
  dialect?: Dialect;
}

/** Who a login belongs to inside its account (a team workspace has many users per account id). */
export interface LoginUser {
  /** The user id (`sub`, `chatgpt_user_id`). Default: derived from the account id. */
  user?: string;
  /** Default: `<user>@example.test`. */
  email?: string;
}

export interface Credential {
  access: string;
  refresh: string;
  idToken: string;
  /** ms since epoch */
  expires: number;
  accountId: string;
  userId: string;
  email: string;
}

export interface Counters {
  requests: number;
  redemptions: number;
  reuses: number;
  invalid: number;
  faults: number;
}

interface RefreshRecord {
  /** The login this token descends from: a family revocation kills every token of it. */
  family: string;
  accountId: string;
  userId: string;
  email: string;
  state: "live" | "spent" | "revoked";
  child?: string;
}

export class StandInEndpoint {
  readonly options: StandInOptions;
  readonly counters: Counters = { requests: 0, redemptions: 0, reuses: 0, invalid: 0, faults: 0 };
  private readonly refreshes = new Map<string, RefreshRecord>();
  private readonly accesses = new Map<string, { expires: number; refresh: string }>();
  /** Families revoked by a reuse (xAI, Anthropic): none of their tokens works again. */
  private readonly revokedFamilies = new Set<string>();
  /** Requests per path that are not token redemptions (discovery GETs, model calls). */
  readonly otherRequests = new Map<string, number>();
  private readonly faults: Fault[] = [];
  private readonly idTokens = new Set<string>();
  private readonly sockets = new Set<Socket>();
  private server: Server | null = null;
  url = "";
  port = 0;

  constructor(options: StandInOptions = {}) {
    this.options = options;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  async start(): Promise<this> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    const server = this.options.tls ? createHttpsServer(this.options.tls, handler) : createHttpServer(handler);
    server.keepAliveTimeout = 1000;
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port ?? 0, this.options.host ?? "127.0.0.1", () => resolve());
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    this.port = address.port;
    this.url = `${this.options.tls ? "https" : "http"}://${address.address}:${address.port}${this.tokenPaths()[0]}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }

  /** Mints a fresh login for `accountId` (as `openclaw models auth login` would obtain). */
  issue(accountId = "acct-test", lifetimeSec = this.options.accessLifetimeSec ?? 3600, login: LoginUser = {}): Credential {
    const userId = login.user ?? `user-${accountId}`;
    const email = login.email ?? `${userId}@example.test`;
    const refresh = this.newRefreshToken();
    const record: RefreshRecord = { family: refresh, accountId, userId, email, state: "live" };
    this.refreshes.set(refresh, record);
    return this.mint(record, refresh, lifetimeSec);
  }

  /** Makes an issued access token count as expired (the server still honours its refresh token). */
  expire<C extends Pick<Credential, "access" | "expires">>(credential: C): C {
    const record = this.accesses.get(credential.access);
    if (record) record.expires = this.now() - 1;
    return { ...credential, expires: this.now() - 60_000 };
  }

  /** The next `count` token requests get `fault` instead of an answer. */
  inject(fault: Fault, count = 1): void {
    for (let i = 0; i < count; i += 1) this.faults.push(fault);
  }

  /**
   * Redeems a refresh token directly (a "process outside the guard"), as the endpoint would.
   * `lifetimeSec` (may be negative: an access token that has already run out) for the new access token.
   */
  redeemOutside(refresh: string, lifetimeSec?: number): Credential | null {
    const result = this.redeem(refresh, lifetimeSec);
    return result.status === 200 ? result.credential : null;
  }

  /** Is this access token one the server issued and still honours? */
  accessValid(access: string): boolean {
    const record = this.accesses.get(access);
    if (!record || record.expires <= this.now()) return false;
    const refresh = this.refreshes.get(record.refresh);
    return refresh !== undefined && refresh.state !== "revoked" && !this.revokedFamilies.has(refresh.family);
  }

  /** Every access, refresh and id token this server ever issued: what must never appear in output. */
  issuedSecrets(): string[] {
    return [...this.accesses.keys(), ...this.refreshes.keys(), ...this.idTokens];
  }

  /** Can this refresh token still be redeemed? */
  refreshLive(refresh: string): boolean {
    const record = this.refreshes.get(refresh);
    return record?.state === "live" && !this.revokedFamilies.has(record.family);
  }

  /** Has a reuse revoked the family of this refresh token (xAI, Anthropic)? */
  familyRevoked(refresh: string): boolean {
    const record = this.refreshes.get(refresh);
    return record !== undefined && this.revokedFamilies.has(record.family);
  }

  get dialect(): Dialect {
    return this.options.dialect ?? "openai";
  }

  /** The paths that redeem a refresh token (xAI: today's and the legacy one). */
  tokenPaths(): string[] {
    if (this.dialect === "xai") return [XAI_TOKEN_PATH, XAI_LEGACY_TOKEN_PATH];
    if (this.dialect === "anthropic") return [ANTHROPIC_TOKEN_PATH];
    return [TOKEN_PATH];
  }

  private newRefreshToken(): string {
    const random = randomBytes(24).toString("base64url");
    return this.dialect === "anthropic" ? `sk-ant-ort01-${random}` : `rt_${random}`;
  }

  private mint(login: RefreshRecord, refresh: string, lifetimeSec: number): Credential {
    const { accountId, userId, email } = login;
    const expires = this.now() + lifetimeSec * 1000;
    if (this.dialect === "anthropic") {
      // Anthropic's OAuth access tokens are opaque (sk-ant-oat01-…) and there is no id token: nothing in them names the user.
      const access = `sk-ant-oat01-${randomBytes(32).toString("base64url")}`;
      this.accesses.set(access, { expires, refresh });
      return { access, refresh, idToken: "", expires, accountId, userId, email };
    }
    if (this.dialect === "xai") {
      // xAI's access and id tokens are JWTs naming the user (sub) and the email.
      const iat = Math.floor(this.now() / 1000);
      const access = jwt({
        iss: XAI_ISSUER,
        sub: userId,
        email,
        iat,
        exp: Math.floor(expires / 1000),
        jti: randomBytes(8).toString("hex"),
      });
      const idToken = jwt({ iss: XAI_ISSUER, sub: userId, email, name: userId, iat, jti: randomBytes(8).toString("hex") });
      this.accesses.set(access, { expires, refresh });
      this.idTokens.add(idToken);
      return { access, refresh, idToken, expires, accountId, userId, email };
    }
    // Like OpenAI's: the access token names the user (sub, chatgpt_user_id) and the account; the
    // id token names the user and the email.
    const access = jwt({
      sub: userId,
      iat: Math.floor(this.now() / 1000),
      exp: Math.floor(expires / 1000),
      jti: randomBytes(8).toString("hex"),
      [ACCOUNT_CLAIM]: { chatgpt_account_id: accountId, chatgpt_user_id: userId },
    });
    const idClaims: Record<string, unknown> = { sub: userId, email, jti: randomBytes(8).toString("hex") };
    if (this.options.idTokenBytes) idClaims.pad = "x".repeat(this.options.idTokenBytes);
    const idToken = jwt(idClaims);
    this.accesses.set(access, { expires, refresh });
    this.idTokens.add(idToken);
    return { access, refresh, idToken, expires, accountId, userId, email };
  }

  private redeem(
    refresh: string,
    lifetimeSec = this.options.accessLifetimeSec ?? 3600,
  ): { status: 200; credential: Credential } | { status: 400 | 401; body: string } {
    const record = this.refreshes.get(refresh);
    const dialect = this.dialect;
    if (!record || record.state === "revoked" || this.revokedFamilies.has(record.family)) {
      this.counters.invalid += 1;
      return dialect === "openai" ? { status: 401, body: INVALIDATED_BODY } : { status: 400, body: this.invalidGrantBody() };
    }
    if (record.state === "spent") {
      this.counters.reuses += 1;
      if (dialect !== "openai") {
        // xAI and Anthropic: a reused token revokes the grant, i.e. every token of the login.
        this.revokedFamilies.add(record.family);
        return { status: 400, body: this.invalidGrantBody() };
      }
      if (this.options.familyRevocation) this.revokeDescendants(refresh);
      return { status: 401, body: REUSED_BODY };
    }
    record.state = "spent";
    const next = this.newRefreshToken();
    record.child = next;
    const successor: RefreshRecord = {
      family: record.family,
      accountId: record.accountId,
      userId: record.userId,
      email: record.email,
      state: "live",
    };
    this.refreshes.set(next, successor);
    this.counters.redemptions += 1;
    const credential = this.mint(successor, next, lifetimeSec);
    return { status: 200, credential };
  }

  private invalidGrantBody(): string {
    return this.dialect === "xai" ? XAI_REVOKED_BODY : ANTHROPIC_INVALID_BODY;
  }

  /** xAI's OpenID discovery document, naming the token endpoint on auth.x.ai. */
  private discoveryDocument(): string {
    return JSON.stringify({
      issuer: XAI_ISSUER,
      authorization_endpoint: `${XAI_ISSUER}/oauth2/auth`,
      device_authorization_endpoint: `${XAI_ISSUER}/oauth2/device/code`,
      token_endpoint: `${XAI_ISSUER}${XAI_TOKEN_PATH}`,
      jwks_uri: `${XAI_ISSUER}/.well-known/jwks.json`,
      grant_types_supported: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
    });
  }

  private revokeDescendants(refresh: string): void {
    let child = this.refreshes.get(refresh)?.child;
    while (child !== undefined) {
      const record = this.refreshes.get(child);
      if (!record) break;
      record.state = "revoked";
      child = record.child;
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    if (this.options.route?.(req, res, body)) return;
    const path = (req.url ?? "").split("?")[0] ?? "";
    if (this.dialect === "xai" && req.method === "GET" && path === XAI_DISCOVERY_PATH) {
      this.otherRequests.set(path, (this.otherRequests.get(path) ?? 0) + 1);
      res.writeHead(200, { "content-type": "application/json" }).end(this.discoveryDocument());
      return;
    }
    if (req.method !== "POST" || !this.tokenPaths().includes(path)) {
      this.otherRequests.set(`${req.method} ${path}`, (this.otherRequests.get(`${req.method} ${path}`) ?? 0) + 1);
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not_found"}');
      return;
    }
    this.counters.requests += 1;
    if (this.options.latencyMs) await new Promise((resolve) => setTimeout(resolve, this.options.latencyMs));
    if (this.options.gate) await this.options.gate();
    const fault = this.faults.shift();
    if (fault !== undefined) {
      this.counters.faults += 1;
      this.answerFault(fault, req, res);
      return;
    }
    const refresh = readRefreshToken(body, req.headers["content-type"] ?? "");
    if (refresh === null) {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "invalid_request", message: "refresh_token grant expected" } }));
      return;
    }
    const result = this.redeem(refresh);
    if (result.status !== 200) {
      res.writeHead(result.status, { "content-type": "application/json" }).end(result.body);
      return;
    }
    const { credential } = result;
    const answer: Record<string, unknown> = {
      access_token: credential.access,
      refresh_token: credential.refresh,
      expires_in: this.options.accessLifetimeSec ?? 3600,
      token_type: "Bearer",
    };
    if (this.dialect !== "anthropic") answer.id_token = credential.idToken;
    // Anthropic names the account and organization beside the tokens (not in them).
    if (this.dialect === "anthropic") answer.account = { uuid: credential.accountId, email_address: credential.email };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
  }

  private answerFault(fault: Fault, req: IncomingMessage, res: ServerResponse): void {
    switch (fault) {
      case "hang":
        return;
      case "stall-body":
        res.writeHead(200, { "content-type": "application/json" });
        res.write('{"access_token":"');
        return;
      case "reset":
        req.socket.destroy();
        return;
      case "500":
        res.writeHead(500, { "content-type": "application/json" }).end('{"error":{"code":"server_error","message":"boom"}}');
        return;
      case "503":
        res.writeHead(503, { "content-type": "text/html" }).end("<html>Service Unavailable</html>");
        return;
      case "invalid-json":
        res.writeHead(200, { "content-type": "application/json" }).end('{"access_token": "abc", ');
        return;
      case "no-refresh-token":
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ access_token: jwt({ exp: Math.floor(this.now() / 1000) + 3600 }), expires_in: 3600 }));
        return;
    }
  }
}

export function readRefreshToken(body: string, contentType: string): string | null {
  if (contentType.includes("json") || body.trimStart().startsWith("{")) {
    try {
      const parsed = JSON.parse(body) as { grant_type?: unknown; refresh_token?: unknown };
      return parsed.grant_type === "refresh_token" && typeof parsed.refresh_token === "string" ? parsed.refresh_token : null;
    } catch {
      return null;
    }
  }
  const params = new URLSearchParams(body);
  return params.get("grant_type") === "refresh_token" ? params.get("refresh_token") : null;
}

function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "none", typ: "JWT" })}.${part(claims)}.${randomBytes(16).toString("base64url")}`;
}

/**
 * A gate for `StandInOptions.gate`: `arrived` resolves when the first token request reaches the
 * stand-in; every answer waits until the test calls `release()`.
 */
export function answerGate(): { gate: () => Promise<void>; arrived: Promise<void>; release: () => void } {
  let arrive!: () => void;
  let release!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    gate: () => {
      arrive();
      return released;
    },
    arrived,
    release,
  };
}

export async function startStandIn(options: StandInOptions = {}): Promise<StandInEndpoint> {
  return new StandInEndpoint(options).start();
}
