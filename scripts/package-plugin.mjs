// Builds the package exactly as it ships, in a directory that holds nothing else, and packs it.
//
//   node scripts/package-plugin.mjs [--pack-destination <dir>] [--json]   (npm run package)
//
// Why a staged directory: the checkout's package.json carries what only development needs
// (devDependencies, scripts, overrides). OpenClaw installs a plugin by running
// `npm install --omit=dev` inside the unpacked package, and npm resolves the metadata of every
// devDependency even when it then omits them (about 120 registry look-ups, and a failure when one
// is unreachable). So the published package.json is generated from an allow-list of the fields a
// user's install needs; nothing in the checkout is rewritten (an interrupted pack leaves no
// half-edited package.json behind), and `npm publish <tgz>` sends the registry the same manifest
// the tarball holds. dist/ is compiled fresh into the stage, so files left in the checkout's
// dist/ by an older layout never ship.
//
// The stage, <repo>/.pack/package/, doubles as the development link target
// (`npm run install-plugin -- --link`): it holds only what ships, so the host's install scan
// accepts it, and Node resolves the runtime dependencies from the checkout's node_modules.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const STAGE_DIR = path.join(REPO_ROOT, ".pack", "package");

/** package.json fields a user's install reads; everything else stays in the checkout. */
export const SHIPPED_FIELDS = [
  "name",
  "version",
  "description",
  "keywords",
  "license",
  "author",
  "repository",
  "homepage",
  "bugs",
  "type",
  "main",
  "exports",
  "files",
  "engines",
  "openclaw",
  "peerDependencies",
  "peerDependenciesMeta",
  "dependencies",
];

/** Files copied from the checkout next to the compiled dist/. */
export const SHIPPED_FILES = ["openclaw.plugin.json", "README.md", "LICENSE"];

export function shippedManifest(pkg) {
  const out = {};
  for (const field of SHIPPED_FIELDS) if (pkg[field] !== undefined) out[field] = pkg[field];
  return out;
}

function tsc(args) {
  const bin = path.join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");
  execFileSync(process.execPath, [bin, ...args], { cwd: REPO_ROOT, stdio: ["ignore", "inherit", "inherit"] });
}

/** Fills `stageDir` with exactly what ships and returns its manifest. */
export function stagePackage(stageDir = STAGE_DIR) {
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8"));
  // Keep the directory itself (a --link install points at it); replace its contents.
  mkdirSync(stageDir, { recursive: true });
  for (const entry of ["dist", "package.json", ...SHIPPED_FILES]) rmSync(path.join(stageDir, entry), { recursive: true, force: true });
  // JavaScript only: a plugin has no TypeScript importers, so declaration files would ship unused.
  tsc(["-p", "tsconfig.json", "--outDir", path.join(stageDir, "dist"), "--declaration", "false"]);
  for (const file of SHIPPED_FILES) copyFileSync(path.join(REPO_ROOT, file), path.join(stageDir, file));
  const manifest = shippedManifest(pkg);
  writeFileSync(path.join(stageDir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Stages, then `npm pack`s the stage into `destination`; returns the tarball's path and file list. */
export function packPackage({ destination = path.join(REPO_ROOT, ".pack"), stageDir = STAGE_DIR } = {}) {
  stagePackage(stageDir);
  mkdirSync(destination, { recursive: true });
  const out = execFileSync("npm", ["pack", "--json", "--pack-destination", path.resolve(destination)], {
    cwd: stageDir,
    encoding: "utf8",
    env: { ...process.env, npm_config_update_notifier: "false", npm_config_fund: "false" },
    maxBuffer: 16 * 1024 * 1024,
  });
  const [info] = JSON.parse(out.slice(out.indexOf("[")));
  if (!info) throw new Error(`npm pack printed no package: ${out}`);
  return {
    tgz: path.join(path.resolve(destination), info.filename),
    name: info.name,
    version: info.version,
    files: info.files.map((f) => f.path).sort(),
  };
}

const invokedAsCli = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAsCli && process.argv.includes("--refuse-root-publish")) {
  // prepublishOnly of the checkout: its package.json is the development one.
  process.stderr.write(
    "Do not publish the checkout: its package.json carries devDependencies and scripts.\n" +
      "Publish the staged and checked package instead: npm run release, then the npm publish command it prints\n",
  );
  process.exit(1);
} else if (invokedAsCli) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--pack-destination");
  const destination = at === -1 ? undefined : args[at + 1];
  const result = packPackage(destination === undefined ? {} : { destination });
  if (args.includes("--json")) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${result.tgz}\n`);
}
