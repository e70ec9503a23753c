// The content of one journal entry, the same in every coordination backend: the successor token
// set sealed (token-crypto.ts) under the spent refresh token and bound to the entry's key, so a
// stored entry tells nothing to anyone who does not already hold that spent token.
import { isRecord } from "../oauth/json.ts";
import type { TokenSet } from "../oauth/token-wire.ts";
import { open, type Sealed, seal } from "./token-crypto.ts";

export const ENTRY_VERSION = 1;
/** The largest entry any backend writes or reads back. */
export const MAX_ENTRY_BYTES = 1024 * 1024;
/**
 * The largest token endpoint answer the guard reads (a 200 with a 70 KiB id_token fits easily).
 * Chosen so that every successful answer fits in an entry once sealed: the tokens' text can at
 * most triple when re-serialized (an invalid UTF-8 byte becomes U+FFFD), base64 adds a third, so
 * 3 x 224 KiB x 4/3 plus the envelope stays under MAX_ENTRY_BYTES. Only the answer's other fields
 * (`extra`) can grow more (a number such as 1e20); an entry that would not fit is sealed without them.
 */
export const MAX_RESPONSE_BYTES = 224 * 1024;

export class EntryTooLargeError extends Error {
  constructor() {
    super(`refresh-guard: the token response is too large to journal (over ${MAX_ENTRY_BYTES} bytes sealed)`);
    this.name = "EntryTooLargeError";
  }
}
const KEY_PATTERN = /^[0-9a-f]{64}$/;

export function checkKey(key: string): string {
  if (!KEY_PATTERN.test(key)) throw new Error("refresh-guard: coordination key must be 64 hex digits");
  return key;
}

/** The stored text of an entry recording that the token behind `key` was exchanged for `set`. */
export function sealEntry(key: string, spentToken: string, set: TokenSet, now: number): string {
  const sealed = (fields: TokenSet) =>
    JSON.stringify({ v: ENTRY_VERSION, key, createdAt: now, ...seal(spentToken, aad(key, "entry"), JSON.stringify(fromTokenSet(fields))) });
  let text = sealed(set);
  // The tokens always fit (MAX_RESPONSE_BYTES); only the answer's other fields can make it too large.
  if (Buffer.byteLength(text) > MAX_ENTRY_BYTES) text = sealed({ ...set, extra: {} });
  if (Buffer.byteLength(text) > MAX_ENTRY_BYTES) throw new EntryTooLargeError();
  return text;
}

/** The token set of a stored entry, or the reason it cannot be used. */
export function openEntry(key: string, spentToken: string, text: string): TokenSet | { unreadable: string } {
  const envelope = parseEnvelope(key, text);
  if ("unreadable" in envelope) return envelope;
  let plain: unknown;
  try {
    plain = JSON.parse(open(spentToken, aad(key, "entry"), envelope.sealed));
  } catch {
    return { unreadable: "does not decrypt with this token (altered or wrong key)" };
  }
  return toTokenSet(plain) ?? { unreadable: "incomplete token set" };
}

export interface SpentMarker {
  code: string;
  at: number;
  /** The endpoint's error body (it holds no token), replayed to later callers. */
  body: string;
}

/**
 * A spent marker, sealed like an entry: only a holder of the spent token can write one that a
 * reader accepts, so nobody who merely knows a token's hash can force a re-login.
 */
export function sealSpent(key: string, spentToken: string, marker: SpentMarker): string {
  const plain = JSON.stringify({ code: marker.code, at: marker.at, body: marker.body.slice(0, 4096) });
  return JSON.stringify({ v: ENTRY_VERSION, key, ...seal(spentToken, aad(key, "spent"), plain) });
}

/** The marker, or the reason it is not one (not written by a holder of `spentToken`, or damaged). */
export function openSpent(key: string, spentToken: string, text: string): SpentMarker | { unreadable: string } {
  const envelope = parseEnvelope(key, text);
  if ("unreadable" in envelope) return envelope;
  let plain: unknown;
  try {
    plain = JSON.parse(open(spentToken, aad(key, "spent"), envelope.sealed));
  } catch {
    return { unreadable: "does not decrypt with this token (forged, altered or wrong key)" };
  }
  if (!isRecord(plain) || typeof plain.code !== "string" || typeof plain.at !== "number" || typeof plain.body !== "string") {
    return { unreadable: "incomplete spent marker" };
  }
  return { code: plain.code, at: plain.at, body: plain.body };
}

function parseEnvelope(key: string, text: string): { sealed: Sealed } | { unreadable: string } {
  let envelope: unknown;
  try {
    envelope = JSON.parse(text);
  } catch {
    return { unreadable: "not JSON (truncated?)" };
  }
  if (!isRecord(envelope)) return { unreadable: "not an object" };
  if (envelope.v !== ENTRY_VERSION) return { unreadable: `unknown version ${String(envelope.v).slice(0, 20)}` };
  if (envelope.key !== key) return { unreadable: "written for another key" };
  const { salt, iv, tag, ct } = envelope;
  if (typeof salt !== "string" || typeof iv !== "string" || typeof tag !== "string" || typeof ct !== "string") {
    return { unreadable: "sealing fields missing" };
  }
  return { sealed: { salt, iv, tag, ct } };
}

function aad(key: string, kind: "entry" | "spent"): string {
  // Entries keep the additional data they were always sealed with, so existing journals stay readable.
  return kind === "entry" ? `refresh-guard/v${ENTRY_VERSION}/${key}` : `refresh-guard/v${ENTRY_VERSION}/spent/${key}`;
}

function fromTokenSet(set: TokenSet): Record<string, unknown> {
  return {
    access_token: set.accessToken,
    refresh_token: set.refreshToken,
    id_token: set.idToken,
    expires_at: set.expiresAt,
    account_id: set.accountId,
    extra: set.extra,
  };
}

function toTokenSet(plain: unknown): TokenSet | null {
  if (!isRecord(plain)) return null;
  const { access_token, refresh_token, id_token, expires_at, account_id, extra } = plain;
  if (typeof access_token !== "string" || typeof refresh_token !== "string" || typeof expires_at !== "number") {
    return null;
  }
  const set: TokenSet = {
    accessToken: access_token,
    refreshToken: refresh_token,
    expiresAt: expires_at,
    extra: isRecord(extra) ? extra : {},
  };
  if (typeof id_token === "string") set.idToken = id_token;
  if (typeof account_id === "string") set.accountId = account_id;
  return set;
}
