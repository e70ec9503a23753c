// A real npm registry (Verdaccio) for the install tests, run as its own process:
//   node test/support/registry-server.cjs <storage-dir>
// Listens on 127.0.0.1 at a free port, prints {"url":"http://127.0.0.1:<port>/"} as its first
// stdout line. Anyone may publish (no real account); names it does not hold are proxied to the
// public npm registry (the uplink honours the proxy settings npm itself would use), so the host can
// resolve async-mutex and proper-lockfile through it.
"use strict";
const path = require("node:path");
const { runServer } = require("verdaccio");

async function main() {
  const storage = process.argv[2];
  if (!storage) throw new Error("usage: registry-server.cjs <storage-dir>");
  const uplink = process.env.RG_REGISTRY_UPLINK || "https://registry.npmjs.org/";
  const config = {
    self_path: path.join(storage, "config.yaml"),
    storage: path.join(storage, "packages"),
    auth: { htpasswd: { file: path.join(storage, "htpasswd"), max_users: -1 } },
    uplinks: { npmjs: { url: uplink, timeout: "60s", maxage: "30m", cache: true } },
    packages: {
      "openclaw-refresh-guard": { access: "$all", publish: "$all", unpublish: "$all" },
      "@*/*": { access: "$all", publish: "$all", proxy: "npmjs" },
      "**": { access: "$all", publish: "$all", proxy: "npmjs" },
    },
    server: { keepAliveTimeout: 60 },
    web: { enable: false },
    log: { type: "stdout", format: "json", level: process.env.RG_REGISTRY_LOG || "warn" },
    publish: { allow_offline: true },
    max_body_size: "50mb",
  };
  const app = await runServer(config);
  const server = app.listen(0, "127.0.0.1", () => {
    const { port } = server.address();
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/` })}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
