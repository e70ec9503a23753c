// The 2026.6+ seam: those hosts send the OAuth token POST through their own copy of the `undici`
// npm package (fetchWithSsrFGuard → loadUndiciRuntimeDeps().fetch, read on every call), never
// through globalThis.fetch. We find the very module object the host loaded and put the same
// wrapper as global-fetch.ts on its `fetch` export. Everything the host passes (dispatcher with
// its DNS pinning or proxy, redirect: "manual", signal) stays on what goes to the network.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

import { type InstalledInterceptor, installFetchInterceptor, interceptorAttached, type TokenGuard } from "./global-fetch.ts";

type Fetch = typeof globalThis.fetch;

/** What resolving the host's undici found. `module` only when it can be wrapped. */
export type HostUndiciProbe = { found: true; module: { fetch: Fetch }; path: string; version?: string } | { found: false; reason: string };

/** Where to start looking for the host's undici, in order. */
export interface ResolveOptions {
  /** Resolves `openclaw/plugin-sdk/core` the way this plugin's import would (import.meta.resolve). */
  resolveSdk?: () => string;
  /** The host's CLI entry, e.g. …/node_modules/openclaw/openclaw.mjs (process.argv[1]). */
  argv1?: string | undefined;
}

/**
 * Finds the host's undici: `createRequire(<openclaw/plugin-sdk/core>)("undici/index.js")` gives the
 * same cached module.exports the host uses; process.argv[1] is the fallback when the SDK cannot be
 * resolved from here (a plugin linked from outside the host's tree).
 */
export function probeHostUndici(options: ResolveOptions = {}): HostUndiciProbe {
  const resolveSdk = options.resolveSdk ?? (() => import.meta.resolve("openclaw/plugin-sdk/core"));
  const argv1 = "argv1" in options ? options.argv1 : process.argv[1];
  const anchors: string[] = [];
  const problems: string[] = [];
  try {
    anchors.push(resolveSdk());
  } catch (error) {
    problems.push(`openclaw/plugin-sdk/core does not resolve from the plugin (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
  if (argv1 && /[\\/]openclaw[\\/][^\\/]+$/.test(argv1)) anchors.push(argv1);
  else problems.push("process.argv[1] is not the openclaw CLI entry");
  for (const anchor of anchors) {
    let require: NodeJS.Require;
    let path: string;
    let module: unknown;
    try {
      require = createRequire(anchor);
      path = require.resolve("undici/index.js");
      module = require(path);
    } catch (error) {
      problems.push(`no undici next to ${anchor} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
      continue;
    }
    const shape = checkShape(module);
    if (shape !== null) {
      problems.push(`${path}: ${shape}`);
      continue;
    }
    const probe: HostUndiciProbe = { found: true, module: module as { fetch: Fetch }, path };
    const version = readVersion(require, path);
    if (version !== undefined) probe.version = version;
    return probe;
  }
  return { found: false, reason: problems.join("; ") || "no place to look for the host's undici" };
}

/** Null when `module.fetch` is a function we may replace; otherwise why not. */
function checkShape(module: unknown): string | null {
  if (module === null || (typeof module !== "object" && typeof module !== "function")) return "module is not an object";
  const descriptor = Object.getOwnPropertyDescriptor(module, "fetch");
  if (descriptor === undefined) return "has no fetch export";
  if (!("value" in descriptor)) return "fetch export is an accessor, not a plain property";
  if (typeof descriptor.value !== "function") return "fetch export is not a function";
  if (!descriptor.writable) return "fetch export is read-only";
  return null;
}

function readVersion(require: NodeJS.Require, undiciPath: string): string | undefined {
  try {
    const pkg = require(join(dirname(undiciPath), "package.json")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

/** Wraps the host undici's fetch export (idempotent: re-installing only updates the routes). */
export function installHostUndiciInterceptor(module: { fetch: Fetch }, routes: ReadonlyMap<string, TokenGuard>): InstalledInterceptor {
  return installFetchInterceptor(routes, module);
}

export function hostUndiciAttached(module: { fetch: Fetch }): boolean {
  return interceptorAttached(module);
}
