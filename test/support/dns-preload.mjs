// `node --import <this file>` preload: resolve the providers' hosts (OpenAI, xAI, Anthropic) to the stand-in.
//
// Patches node:dns `lookup` (callback form, `all: true`, and util.promisify via the
// custom symbol) and node:dns/promises `lookup` so that the listed hosts resolve to
// 127.0.0.1. Everything else goes to the real resolver.
//
// Env:
//   RG_DNS_HOSTS    comma-separated host names (default: DEFAULT_HOSTS below)
//   RG_DNS_ADDRESS  address to answer (default "127.0.0.1")
//   RG_DNS_DEBUG=1  log each answered lookup to stderr
//
// Node's built-in fetch (undici) resolves through dns.lookup (undici's connector
// calls net/tls connect, which calls dns.lookup at call time), so patching the
// module export is enough for fetch, https.request and net.connect alike.
import dns from "node:dns";
import dnsPromises from "node:dns/promises";
import { syncBuiltinESMExports } from "node:module";
import { promisify } from "node:util";

// OpenAI's token and Codex endpoints; xAI's issuer (discovery and token), API and OAuth model proxy; Anthropic's
// token endpoints (today's and the older console one) and API.
const DEFAULT_HOSTS = [
  "auth.openai.com",
  "chatgpt.com",
  "auth.x.ai",
  "api.x.ai",
  "cli-chat-proxy.grok.com",
  "platform.claude.com",
  "console.anthropic.com",
  "api.anthropic.com",
].join(",");

const hosts = new Set(
  (process.env.RG_DNS_HOSTS ?? DEFAULT_HOSTS)
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean),
);
const address = process.env.RG_DNS_ADDRESS ?? "127.0.0.1";
const family = address.includes(":") ? 6 : 4;
const debug = process.env.RG_DNS_DEBUG === "1";

function matches(hostname) {
  return typeof hostname === "string" && hosts.has(hostname.toLowerCase().replace(/\.$/, ""));
}

function wantsAll(options) {
  return options !== null && typeof options === "object" && options.all === true;
}

function note(hostname) {
  if (debug) process.stderr.write(`[dns-preload] ${hostname} -> ${address}\n`);
}

const realLookup = dns.lookup;
function lookup(hostname, options, callback) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  }
  if (!matches(hostname)) return realLookup.call(dns, hostname, options, callback);
  note(hostname);
  const all = wantsAll(options);
  process.nextTick(() => {
    if (all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  });
  return {};
}
// util.promisify(dns.lookup) resolves { address, family } (or the array for all: true).
Object.defineProperty(lookup, promisify.custom, {
  value: (hostname, options) => {
    if (!matches(hostname)) return dnsPromises.lookup(hostname, options);
    note(hostname);
    return Promise.resolve(wantsAll(options) ? [{ address, family }] : { address, family });
  },
});
dns.lookup = lookup;

const realPromisesLookup = dnsPromises.lookup;
dnsPromises.lookup = function patchedLookup(hostname, options) {
  if (!matches(hostname)) return realPromisesLookup.call(dnsPromises, hostname, options);
  note(hostname);
  return Promise.resolve(wantsAll(options) ? [{ address, family }] : { address, family });
};
if (dns.promises && dns.promises !== dnsPromises) dns.promises.lookup = dnsPromises.lookup;
// ESM named imports of builtins (`import { lookup } from "node:dns/promises"`, as OpenClaw 2026.9's
// SSRF guard does) keep the original binding until the builtin's ESM exports are re-synced.
syncBuiltinESMExports();
