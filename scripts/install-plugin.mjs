// One command from a checkout into the user's OpenClaw:
//
//   npm run install-plugin              build, pack, `openclaw plugins install <tgz>`, enable
//   npm run install-plugin -- --link    build into .pack/package/ and link the host to it
//                                       (development: rerun after each change; the host loads
//                                       the new build in its next process). Where the host's
//                                       config already links there (plugins.load.paths), only
//                                       restages; where a copy is installed, says how to remove it.
//
// Runs the `openclaw` found on PATH, in the user's environment (OPENCLAW_STATE_DIR etc. apply).
// Flags the host needs are read from its own `plugins install --help`: hosts that list
// `--accept-capabilities` (2026.9.x) also want `--force` to accept a source other than ClawHub;
// on older hosts `--force` means "overwrite", which makes a rerun replace the installed copy.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
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

/** The host's config as its CLI would read it (null: absent or not plain JSON). */
function hostConfig(env = process.env) {
  const stateDir = env.OPENCLAW_STATE_DIR || path.join(homedir(), ".openclaw");
  const file = env.OPENCLAW_CONFIG_PATH || path.join(stateDir, "openclaw.json");
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

/** True when the host's config links `dir` (what `plugins install --link <dir>` records on 2026.4 – 2026.9). */
export function linksTo(config, dir) {
  const paths = config?.plugins?.load?.paths;
  return Array.isArray(paths) && paths.some((p) => typeof p === "string" && path.resolve(p) === path.resolve(dir));
}

/** The installed copy a host refused to link over ("plugin already exists: <dir> (delete it first)"), if that is why. */
export function installedCopyIn(output) {
  return /plugin already exists: (.+?) \(delete it first\)/.exec(output)?.[1] ?? null;
}

function main() {
  const link = process.argv.includes("--link");
  if (link && linksTo(hostConfig(), STAGE_DIR)) {
    // The link target never changes: rebuilding it is all a relink needs.
    stagePackage(STAGE_DIR);
    process.stdout.write(
      `restaged ${path.relative(REPO_ROOT, STAGE_DIR)}/ (the host already links here; it loads the new build in its next process)\n`,
    );
    if (hostConfig()?.plugins?.entries?.[PLUGIN_ID]?.enabled === false) enable();
    return;
  }
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
  const install = openclaw(args);
  process.stdout.write(install.stdout);
  process.stderr.write(install.stderr);
  if (install.status !== 0) {
    const copy = link ? installedCopyIn(`${install.stdout}${install.stderr}`) : null;
    if (copy !== null)
      process.stderr.write(
        `install-plugin: ${PLUGIN_ID} is installed as a copy (${copy}), and the host does not link over it. Remove it, then rerun:\n` +
          `  ${OPENCLAW} plugins uninstall ${PLUGIN_ID} --force\n`,
      );
    process.exit(install.status ?? 1);
  }
  enable();
}

// 2026.9.x's uninstall leaves `plugins.entries.refresh-guard.enabled: false`, and a later install
// keeps it so: enable explicitly (a no-op where it already is).
function enable() {
  const result = openclaw(["plugins", "enable", PLUGIN_ID], { stdio: ["ignore", "inherit", "inherit"] });
  if (result.status !== 0) process.exit(result.status ?? 1);
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
