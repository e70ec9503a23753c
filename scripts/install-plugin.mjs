// One command from a checkout into the user's OpenClaw:
//
//   npm run install-plugin              build, pack, `openclaw plugins install <tgz>`, enable
//   npm run install-plugin -- --link    build into .pack/package/ and link the host to it
//                                       (development: rerun after each change; the host loads
//                                       the new build in its next process)
//
// Runs the `openclaw` found on PATH, in the user's environment (OPENCLAW_STATE_DIR etc. apply).
// Flags the host needs are read from its own `plugins install --help`: hosts that list
// `--accept-capabilities` (2026.9.x) also want `--force` to accept a source other than ClawHub;
// on older hosts `--force` means "overwrite", which makes a rerun replace the installed copy.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { packPackage, REPO_ROOT, STAGE_DIR, stagePackage } from "./package-plugin.mjs";

const OPENCLAW = process.env.OPENCLAW_CLI || "openclaw";
const PLUGIN_ID = "refresh-guard";

function openclaw(args, options = {}) {
  const result = spawnSync(OPENCLAW, args, { encoding: "utf8", stdio: options.stdio ?? ["ignore", "pipe", "pipe"] });
  if (result.error) {
    const hint = result.error.code === "ENOENT" ? ` (is OpenClaw installed and \`${OPENCLAW}\` on PATH?)` : "";
    throw new Error(`cannot run ${OPENCLAW}${hint}: ${result.error.message}`);
  }
  return result;
}

/** The flags this host's `plugins install` needs to install a local package without prompting. */
export function installFlags(helpText, { link = false } = {}) {
  const listed = (flag) => new RegExp(`(^|\\s)${flag}(\\s|,|$)`, "m").test(helpText);
  const capabilities = listed("--accept-capabilities");
  const flags = [];
  // 2026.4.x/5.x refuse `--force` together with `--link` (nothing is copied, so nothing to overwrite).
  if (listed("--force") && (capabilities || !link)) flags.push("--force");
  if (capabilities) flags.push("--accept-capabilities");
  return flags;
}

function main() {
  const link = process.argv.includes("--link");
  const help = openclaw(["plugins", "install", "--help"]);
  if (help.status !== 0) throw new Error(`\`${OPENCLAW} plugins install --help\` failed:\n${help.stderr || help.stdout}`);
  const flags = installFlags(help.stdout, { link });

  let target;
  if (link) {
    stagePackage(STAGE_DIR);
    target = STAGE_DIR;
    process.stdout.write(`staged ${path.relative(REPO_ROOT, STAGE_DIR)}/ (linked; rerun this command after changes)\n`);
  } else {
    const packed = packPackage();
    target = packed.tgz;
    process.stdout.write(`packed ${path.relative(REPO_ROOT, packed.tgz)}\n`);
  }
  const args = ["plugins", "install", ...(link ? ["--link"] : []), target, ...flags];
  process.stdout.write(`${OPENCLAW} ${args.join(" ")}\n`);
  const install = openclaw(args, { stdio: ["ignore", "inherit", "inherit"] });
  if (install.status !== 0) process.exit(install.status ?? 1);
  // 2026.9.x's uninstall leaves `plugins.entries.refresh-guard.enabled: false`, and a later install
  // keeps it so: enable explicitly (a no-op where it already is).
  const enable = openclaw(["plugins", "enable", PLUGIN_ID], { stdio: ["ignore", "inherit", "inherit"] });
  if (enable.status !== 0) process.exit(enable.status ?? 1);
}

const invokedAsCli = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAsCli) {
  try {
    main();
  } catch (error) {
    process.stderr.write(`install-plugin: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
