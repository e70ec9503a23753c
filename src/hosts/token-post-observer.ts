// Notices a token-endpoint POST that did not pass through the guard's fetch wrapper in this thread
// (a seam the host stopped using, an undici copy nobody wrapped): undici, the host's copy and
// Node's own alike, publishes `undici:request:create` for every request it sends. The observer
// cannot answer such a request; it only makes the gap visible (a warning in the log and in status)
// instead of a silent `refresh_token_reused` and a fenced store. Requests the wrapper let through
// (guarded redemptions, logins passed on untouched) run inside an AsyncLocalStorage mark.
import { subscribe } from "node:diagnostics_channel";

import { normalizeUrl } from "./global-fetch.ts";
import { wrapperMark } from "./wrapper-mark.ts";

const OBSERVER = Symbol.for("openclaw-refresh-guard.token-post-observer");

interface ObserverState {
  urls: Set<string>;
  onUnguarded: (url: string) => void;
}

type Holder = { [OBSERVER]?: ObserverState };

/**
 * Calls `onUnguarded(url)` for each POST to one of `tokenUrls` that this thread sends outside the
 * wrapper. Once per thread; a later call replaces the URLs and the callback.
 */
export function observeTokenPosts(tokenUrls: readonly string[], onUnguarded: (url: string) => void): void {
  const holder = globalThis as Holder;
  const urls = new Set(tokenUrls.map(normalizeUrl));
  if (holder[OBSERVER] !== undefined) {
    holder[OBSERVER].urls = urls;
    holder[OBSERVER].onUnguarded = onUnguarded;
    return;
  }
  const state: ObserverState = { urls, onUnguarded };
  holder[OBSERVER] = state;
  const als = wrapperMark();
  subscribe("undici:request:create", (message) => {
    try {
      const request = (message as { request?: { method?: unknown; origin?: unknown; path?: unknown } }).request;
      if (request?.method !== "POST" || typeof request.origin !== "string" || typeof request.path !== "string") return;
      const url = normalizeUrl(`${request.origin.replace(/\/$/, "")}${request.path}`);
      if (!state.urls.has(url) || als.getStore() === true) return;
      state.onUnguarded(url);
    } catch {
      // An observer never disturbs the request.
    }
  });
}
