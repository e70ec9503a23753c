// Builds the package a release publishes and checks it, then prints the command that publishes it:
//
//   npm run release        (node scripts/release.mjs [--pack-destination <dir>])
//
// The package is staged by scripts/package-plugin.mjs (a clean package.json, dist/ compiled fresh),
// never packed from the checkout. Checked: the exact file list (compiled JavaScript for every
// source module, the manifest, README.md, LICENSE and package.json; nothing else, no declaration
// files), no development field in package.json, the fields the package page needs, and a CHANGELOG
// section for the version. Nothing is published: the printed `npm publish` is for the maintainer.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { packPackage, REPO_ROOT } from "./package-plugin.mjs";

const DEV_FIELDS = ["devDependencies", "scripts", "overrides", "allowScripts", "private"];
const PAGE_FIELDS = ["license", "repository", "homepage", "bugs"];

/** The files a release must hold, from src/. */
export function expectedReleaseFiles() {
  const files = ["LICENSE", "README.md", "openclaw.plugin.json", "package.json"];
  for (const name of readdirSync(path.join(REPO_ROOT, "src"), { recursive: true, encoding: "utf8" })) {
    if (!name.endsWith(".ts") || name.endsWith(".d.ts")) continue;
    files.push(`dist/${name.replace(/\\/g, "/").replace(/\.ts$/, ".js")}`);
  }
  return files.sort();
}

/** Problems with a packed release (empty: ready to publish). */
export function checkRelease(packed) {
  const problems = [];
  const listed = execFileSync("tar", ["-tzf", packed.tgz], { encoding: "utf8" })
    .trim()
    .split("\n")
    .map((p) => p.replace(/^package\//, ""))
    .sort();
  const expected = expectedReleaseFiles();
  for (const file of expected) if (!listed.includes(file)) problems.push(`missing: ${file}`);
  for (const file of listed) if (!expected.includes(file)) problems.push(`not meant to ship: ${file}`);
  const manifest = JSON.parse(execFileSync("tar", ["-xzOf", packed.tgz, "package/package.json"], { encoding: "utf8" }));
  for (const field of DEV_FIELDS) if (field in manifest) problems.push(`package.json carries the development field "${field}"`);
  for (const field of PAGE_FIELDS) if (!(field in manifest)) problems.push(`package.json lacks "${field}"`);
  const changelog = readFileSync(path.join(REPO_ROOT, "CHANGELOG.md"), "utf8");
  if (!new RegExp(`^## ${manifest.version.replace(/\./g, "\\.")}(\\s|$)`, "m").test(changelog))
    problems.push(`CHANGELOG.md has no "## ${manifest.version}" section`);
  return problems;
}

const invokedAsCli = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAsCli) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--pack-destination");
  const packed = packPackage(at === -1 ? { destination: path.join(REPO_ROOT, ".pack", "release") } : { destination: args[at + 1] });
  const problems = checkRelease(packed);
  if (problems.length > 0) {
    process.stderr.write(`release check failed for ${packed.name}@${packed.version}:\n${problems.map((p) => `  - ${p}`).join("\n")}\n`);
    process.exit(1);
  }
  process.stdout.write(
    `${packed.name}@${packed.version}: ${packed.files.length} files checked (${path.relative(REPO_ROOT, packed.tgz) || packed.tgz})\n` +
      `To publish it:\n  npm publish ${packed.tgz}\n`,
  );
}
