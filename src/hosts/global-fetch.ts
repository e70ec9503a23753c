// Wraps a fetch function (the process's global fetch, or a host's own undici fetch): a POST
// carrying a refresh-token grant to a guarded token URL goes through its RefreshGuard; every other
// request passes through untouched, with one method check and, for POSTs only, one URL lookup.
// The wrapper never throws for a request it does not guard. Installing twice updates the routes,
// never wraps twice.
import type { Redeem } from "../core/guard-context.ts";
import { parseTokenRequest } from "../oauth/token-wire.ts";
import { withinWrapper } from "./wrapper-mark.ts";

const STATE = Symbol.for("openclaw-refresh-guard.fetch-interceptor");

type Fetch = typeof globalThis.fetch;
type FetchInput = Parameters<Fetch>[0];
type Body = NonNullable<RequestInit["body"]>;

/** What a route hands a token request to: a RefreshGuard, or anything that answers like one. */
export interface TokenGuard {
  refresh(refreshToken: string, redeem: Redeem, options: { signal?: AbortSignal | null }): Promise<Response>;
}

/** Where a route's guard applies: exact token URLs by their normalized spelling, and URL patterns. */
interface RouteTable {
  exact: Map<string, TokenGuard>;
  patterns: { pattern: string; test: (url: URL) => boolean; guard: TokenGuard }[];
}

interface InterceptorState {
  original: Fetch;
  wrapper: Fetch;
  routes: RouteTable;
}

interface FetchHost {
  fetch: Fetch;
  [STATE]?: InterceptorState;
}

export interface InstalledInterceptor {
  /** The token URLs currently guarded. */
  readonly urls: readonly string[];
  uninstall(): void;
}

/** Routes POSTs to each URL in `routes` through its guard. Idempotent per `host` (default globalThis). */
export function installFetchInterceptor(
  routes: ReadonlyMap<string, TokenGuard>,
  host: FetchHost = globalThis as unknown as FetchHost,
): InstalledInterceptor {
  let state = host[STATE];
  if (state === undefined || host.fetch !== state.wrapper) {
    // Someone wrapped fetch over our earlier wrapper, which stays in their chain: empty its routes
    // so it passes everything through, or each redemption would be guarded a second time on its way out.
    if (state !== undefined) clearRoutes(state.routes);
    const original = host.fetch;
    const table: RouteTable = { exact: new Map(), patterns: [] };
    const wrapper = createWrapper(original, table);
    state = { original, wrapper, routes: table };
    host[STATE] = state;
    host.fetch = wrapper;
  }
  clearRoutes(state.routes);
  for (const [url, guard] of routes) {
    if (isUrlPattern(url)) state.routes.patterns.push({ pattern: url, test: compileUrlPattern(url), guard });
    else state.routes.exact.set(normalizeUrl(url), guard);
  }
  const installed = state;
  return {
    get urls() {
      return [...installed.routes.exact.keys(), ...installed.routes.patterns.map((entry) => entry.pattern)];
    },
    uninstall() {
      // With another wrapper on top, ours stays in its chain: emptied, it passes everything through.
      clearRoutes(installed.routes);
      if (host.fetch === installed.wrapper) host.fetch = installed.original;
      if (host[STATE] === installed) delete host[STATE];
    },
  };
}

/** True when `host`'s fetch is our wrapper (the hook is attached). */
export function interceptorAttached(host: FetchHost = globalThis as unknown as FetchHost): boolean {
  const state = host[STATE];
  return state !== undefined && host.fetch === state.wrapper;
}

function clearRoutes(routes: RouteTable): void {
  routes.exact.clear();
  routes.patterns.length = 0;
}

/** The guard for a POST to `url`: its exact route, else the first pattern that matches it. */
function routeFor(routes: RouteTable, url: string): TokenGuard | undefined {
  const exact = routes.exact.get(normalizedCached(url));
  if (exact !== undefined || routes.patterns.length === 0) return exact;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  return routes.patterns.find((entry) => entry.test(parsed))?.guard;
}

function createWrapper(original: Fetch, routes: RouteTable): Fetch {
  const wrapper = function refreshGuardFetch(input: FetchInput, init?: RequestInit): Promise<Response> {
    let guard: TokenGuard | undefined;
    let url = "";
    try {
      if ((routes.exact.size > 0 || routes.patterns.length > 0) && isPost(input, init)) {
        url = urlOf(input);
        guard = routeFor(routes, url);
      }
    } catch {
      // Anything we cannot read is not a token request of ours: fetch decides what it is.
      guard = undefined;
    }
    if (guard === undefined) return original(input, init);
    // Marked: the token-POST observer knows this one went through the wrapper (guarded or a login).
    return withinWrapper(() => guarded(original, guard, url, input, init));
  };
  // Whatever the original carries (and whatever is set on it later) stays visible on the wrapper.
  Object.setPrototypeOf(wrapper, original);
  return wrapper as Fetch;
}

/**
 * normalizeUrl of the URLs a host POSTs to, remembered: a host posts to a handful of URLs over and
 * over, and parsing one (new URL) costs microseconds on every non-token POST. Bounded: cleared
 * when full, so a host that posts to ever new URLs only loses the shortcut.
 */
const normalized = new Map<string, string>();
const NORMALIZED_MAX = 256;
function normalizedCached(url: string): string {
  let result = normalized.get(url);
  if (result === undefined) {
    result = normalizeUrl(url);
    if (normalized.size >= NORMALIZED_MAX) normalized.clear();
    normalized.set(url, result);
  }
  return result;
}

function isPost(input: FetchInput, init: RequestInit | undefined): boolean {
  const method = init?.method ?? (isRequestLike(input) ? input.method : "GET");
  return typeof method === "string" && (method === "POST" || method.toUpperCase() === "POST");
}

/** The URL of any input fetch accepts: a string, a URL or Request (of any realm), or anything with toString. */
function urlOf(input: FetchInput): string {
  if (typeof input === "string") return input;
  if (input instanceof URL) return input.href;
  if (isRequestLike(input)) return input.url;
  return String(input);
}

function isRequestLike(input: unknown): input is Request {
  if (input instanceof Request) return true;
  if (typeof input !== "object" || input === null || input instanceof URL) return false;
  const candidate = input as { url?: unknown; method?: unknown; headers?: unknown };
  return typeof candidate.url === "string" && typeof candidate.method === "string" && typeof candidate.headers === "object";
}

async function guarded(
  original: Fetch,
  guard: TokenGuard,
  url: string,
  input: FetchInput,
  init: RequestInit | undefined,
): Promise<Response> {
  // A Request of any realm (this one, the host undici's own class, another copy of undici) is read
  // through clone(), so its body stays unread for whoever sends it; a request-like object without
  // clone() (a polyfill) is not ours to read: fetch has it.
  const request = isRequestLike(input) ? input : null;
  if (request !== null && typeof (request as { clone?: unknown }).clone !== "function") return original(input, init);
  const headers = new Headers(request ? headersOf(request) : undefined);
  if (init?.headers) {
    for (const [name, value] of new Headers(init.headers)) headers.set(name, value);
  }
  const body = await readBody(init?.body ?? null, request);
  if (body === null) return original(input, init);
  const tokenRequest = parseTokenRequest(body, headers.get("content-type"));
  if (tokenRequest === null) return original(input, init);
  headers.delete("content-length");
  // fetch labels a URLSearchParams or typed Blob body itself; the redemption sends a string, which
  // fetch would label text/plain, so keep the label the original request would have gone out with.
  if (!headers.has("content-type")) {
    const implied = impliedContentType(init?.body ?? null);
    if (implied) headers.set("content-type", implied);
  }
  // The caller's other options (a proxy dispatcher, keepalive, its redirect mode, …), from the
  // Request and then from init, travel with the redemption; the guard supplies the body, the
  // headers and its own signal (a sent request is never abandoned). A redirect: "manual" request
  // must never follow a 307 and re-send the refresh token to its Location.
  const options: RequestInit = { ...(request ? requestOptions(request) : {}), ...init };
  const redeem = (refreshToken: string, signal: AbortSignal) =>
    original(url, {
      ...options,
      method: "POST",
      headers,
      body: tokenRequest.withRefreshToken(refreshToken),
      signal,
      redirect: options.redirect ?? "follow",
    });
  return guard.refresh(tokenRequest.refreshToken, redeem, { signal: init?.signal ?? request?.signal ?? null });
}

/** The options a Request carries besides its URL, method, headers, body and signal. */
function requestOptions(request: Request): RequestInit {
  const options: Record<string, unknown> = {};
  for (const name of ["redirect", "credentials", "cache", "mode", "referrer", "referrerPolicy", "integrity", "keepalive"] as const) {
    const value = (request as unknown as Record<string, unknown>)[name];
    if (value !== undefined && value !== "") options[name] = value;
  }
  // The default referrer is not a value one may pass back in.
  if (options.referrer === "about:client") delete options.referrer;
  return options as RequestInit;
}

/** A Request's headers as pairs (a Headers object of another realm is iterable, not ours). */
function headersOf(request: Request): [string, string][] {
  const pairs: [string, string][] = [];
  const source = request.headers as unknown as Iterable<[string, string]> | Record<string, string>;
  if (source !== null && typeof (source as Iterable<[string, string]>)[Symbol.iterator] === "function") {
    for (const [name, value] of source as Iterable<[string, string]>) pairs.push([String(name), String(value)]);
  } else if (source !== null && typeof source === "object") {
    for (const [name, value] of Object.entries(source)) pairs.push([name, String(value)]);
  }
  return pairs;
}

function impliedContentType(body: Body | null): string | undefined {
  if (body instanceof URLSearchParams) return "application/x-www-form-urlencoded;charset=UTF-8";
  if (body instanceof Blob && body.type !== "") return body.type;
  return undefined;
}

/** The request body as text, or null when it is a stream or form data we should not consume. */
async function readBody(body: Body | null, request: Request | null): Promise<string | null> {
  if (body === null) return request ? (request.clone() as Request).text() : null;
  if (typeof body === "string") return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof ArrayBuffer) return Buffer.from(body).toString("utf8");
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
  if (body instanceof Blob) return body.text();
  return null;
}

/** A route key with a `*` is a pattern (`https://*.x.ai/*`), not one URL. */
function isUrlPattern(key: string): boolean {
  return key.includes("*");
}

/**
 * A URL pattern's test: scheme exact; host exact, or `*.` followed by a suffix that matches any
 * host with at least one more label in front; path exact (normalized), or ending in `/*` for that
 * prefix and anything below it (`/*` alone: any path). Default ports only; query and fragment ignored.
 */
export function compileUrlPattern(pattern: string): (url: URL) => boolean {
  const match = /^([a-z][a-z0-9+.-]*:)\/\/([^/]+)(\/.*)?$/i.exec(pattern);
  if (match === null) throw new Error(`not a URL pattern: ${pattern}`);
  const protocol = (match[1] ?? "").toLowerCase();
  const host = (match[2] ?? "").toLowerCase();
  const rawPath = match[3] ?? "/";
  const anyPath = rawPath.endsWith("/*");
  const path = (anyPath ? rawPath.slice(0, -2) : rawPath).replace(/\/{2,}/g, "/").replace(/\/$/, "");
  const hostSuffix = host.startsWith("*.") ? host.slice(1) : null;
  return (url) => {
    if (url.protocol !== protocol) return false;
    const urlHost = url.host.toLowerCase();
    if (hostSuffix === null ? urlHost !== host : !(urlHost.endsWith(hostSuffix) && urlHost.length > hostSuffix.length)) return false;
    const urlPath = url.pathname.replace(/\/{2,}/g, "/").replace(/\/$/, "");
    return anyPath ? urlPath === path || urlPath.startsWith(`${path}/`) : urlPath === path;
  };
}

/**
 * One spelling per endpoint: scheme and host in lower case, no trailing dot on the host, no
 * default port, percent-encoded unreserved characters decoded (`/oauth/%74oken` is `/oauth/token`),
 * no query or fragment, repeated slashes folded, no trailing slash. Anything that is not an
 * absolute URL stays as it is.
 */
export function normalizeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  const host = parsed.hostname.replace(/\.+$/, "");
  const port = parsed.port === "" ? "" : `:${parsed.port}`;
  const path = parsed.pathname
    .replace(/%([0-9A-Fa-f]{2})/g, (encoded, hex: string) => {
      const char = String.fromCharCode(Number.parseInt(hex, 16));
      return /^[A-Za-z0-9\-._~]$/.test(char) ? char : encoded.toUpperCase();
    })
    .replace(/\/{2,}/g, "/")
    .replace(/\/$/, "");
  return `${parsed.protocol}//${host}${port}${path}`;
}
