// `node --import <this file>` preload for the real-host tests: when the process exits, records
// whether refresh-guard's fetch hook was attached (the same test as interceptorAttached() in
// src/hosts/global-fetch.ts) as one JSON file in $RG_FETCH_REPORT_DIR. Without that variable it
// does nothing. Writes no URL, header or body: only pid, the CLI arguments and two booleans.
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.env.RG_FETCH_REPORT_DIR;
if (dir) {
  const initialFetch = globalThis.fetch;
  process.on("exit", (code) => {
    const state = globalThis[Symbol.for("openclaw-refresh-guard.fetch-interceptor")];
    const report = {
      pid: process.pid,
      args: process.argv.slice(2),
      code,
      hookAttached: state !== undefined && globalThis.fetch === state.wrapper,
      fetchReplaced: globalThis.fetch !== initialFetch,
    };
    try {
      writeFileSync(join(dir, `${process.pid}.json`), `${JSON.stringify(report)}\n`);
    } catch {
      // The test reports a missing file; never change the host's exit.
    }
  });
}
