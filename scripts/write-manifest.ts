// Rewrites openclaw.plugin.json's configSchema from the config table (src/config/options.ts).
// `npm run manifest`; test/unit/manifest.test.ts fails when the two disagree.
import { readFileSync, writeFileSync } from "node:fs";

import { configSchema } from "../src/config/options.ts";

const file = new URL("../openclaw.plugin.json", import.meta.url);
const manifest = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
manifest.configSchema = configSchema();
writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
process.stdout.write("openclaw.plugin.json: configSchema rewritten from src/config/options.ts\n");
