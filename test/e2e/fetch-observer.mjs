// `node --import <this file>` preload for the real-host tests: when the process exits, records
// whether refresh-guard's hooks were attached as one JSON file in $RG_FETCH_REPORT_DIR (the same
// tests as interceptorAttached() in src/hosts/global-fetch.ts): on globalThis.fetch
// (`hookAttached`) and on the fetch export of the host's own undici module, if the process loaded
// it (`hostUndiciAttached`). Without that variable it does nothing. Writes no URL, header or body:
// only pid, the CLI arguments and booleans.
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { isMainThread } from "node:worker_threads";

const dir = process.env.RG_FETCH_REPORT_DIR;
const STATE = Symbol.for("openclaw-refresh-guard.fetch-interceptor");

function attached(host) {
  const state = host?.[STATE];
  return state !== undefined && host.fetch === state.wrapper;
}

/** The host's undici module object, only if this process already loaded it (never loads it). */
function loadedHostUndici() {
  try {
    const require = createRequire(process.argv[1]);
    const path = require.resolve("undici/index.js");
    return require.cache[path]?.exports;
  } catch {
    return undefined;
  }
}

function report(code) {
  const undici = loadedHostUndici();
  return {
    pid: process.pid,
    args: process.argv.slice(2),
    code,
    hookAttached: attached(globalThis),
    fetchReplaced: globalThis.fetch !== initialFetch,
    hostUndiciLoaded: undici !== undefined,
    hostUndiciAttached: attached(undici),
  };
}

let initialFetch;
// NODE_OPTIONS preloads run in worker threads too (the 2026.9 gateway starts some): only the main
// thread, where the host's CLI and plugins run, writes the process's report.
if (dir && isMainThread) {
  initialFetch = globalThis.fetch;
  const write = (code) => {
    try {
      writeFileSync(join(dir, `${process.pid}.json`), `${JSON.stringify(report(code))}\n`);
    } catch {
      // The test reports a missing file; never change the host's exit.
    }
  };
  process.on("exit", write);
  // Long-running processes (a gateway): RG_FETCH_REPORT_EVERY_MS also writes it while running.
  const every = Number(process.env.RG_FETCH_REPORT_EVERY_MS);
  if (every > 0) setInterval(() => write(null), every).unref();
}
