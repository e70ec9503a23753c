// What ships: the packed package holds exactly the compiled sources (JavaScript only), the manifest,
// the README and the LICENSE, and its package.json carries what hosts read and nothing a user's install would resolve for
// development.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { type PackedPackage, packPackage, REPO_ROOT } from "../scripts/package-plugin.mjs";
import { checkRelease, expectedReleaseFiles } from "../scripts/release.mjs";

let dir: string;
let packed: PackedPackage;
// biome-ignore lint/suspicious/noExplicitAny: the published package.json, read field by field by the tests below
let manifest: Record<string, any>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rg-package-"));
  packed = packPackage({ destination: dir, stageDir: join(dir, "stage") });
  manifest = JSON.parse(execFileSync("tar", ["-xzOf", packed.tgz, "package/package.json"], { encoding: "utf8" }));
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** dist/ as the stage compiles it from src/: one .js per source module, no declaration files. */
function expectedDist(): string[] {
  const files: string[] = [];
  for (const name of readdirSync(join(REPO_ROOT, "src"), { recursive: true, encoding: "utf8" })) {
    if (!name.endsWith(".ts") || name.endsWith(".d.ts")) continue;
    files.push(`dist/${name.replace(/\\/g, "/").replace(/\.ts$/, "")}.js`);
  }
  return files;
}

describe("npm package", () => {
  it("contains exactly dist/ compiled from src/ (no .d.ts), openclaw.plugin.json, README.md, LICENSE and package.json", () => {
    expect(packed.files).toEqual([...expectedDist(), "LICENSE", "README.md", "openclaw.plugin.json", "package.json"].sort());
    const tarList = execFileSync("tar", ["-tzf", packed.tgz], { encoding: "utf8" })
      .trim()
      .split("\n")
      .map((p) => p.replace(/^package\//, ""));
    expect(tarList.sort()).toEqual(packed.files);
  });

  it("publishes a manifest without devDependencies, scripts or overrides", () => {
    const source = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8"));
    expect(Object.keys(source.devDependencies ?? {})).not.toHaveLength(0);
    for (const field of ["devDependencies", "scripts", "overrides", "allowScripts", "private"]) expect(manifest).not.toHaveProperty(field);
    expect(manifest).toMatchObject({ name: source.name, version: source.version, dependencies: source.dependencies });
    expect(Object.keys(manifest.dependencies).sort()).toEqual(["async-mutex", "ioredis", "proper-lockfile"]);
  });

  it("carries what OpenClaw hosts read: entry, compat, minimum host, optional peer, engines", () => {
    expect(manifest.openclaw).toEqual({
      extensions: ["./dist/index.js"],
      compat: { pluginApi: ">=2026.4.15" },
      install: { npmSpec: "openclaw-refresh-guard", defaultChoice: "npm", minHostVersion: ">=2026.4.15" },
    });
    expect(packed.files).toContain(manifest.openclaw.extensions[0].replace(/^\.\//, ""));
    expect(manifest.peerDependencies).toEqual({ openclaw: ">=2026.4.15" });
    // Optional: npm would otherwise install a whole OpenClaw next to the plugin.
    expect(manifest.peerDependenciesMeta).toEqual({ openclaw: { optional: true } });
    expect(manifest.engines).toEqual({ node: ">=22.14.0" });
    expect(manifest.files).toEqual(["dist", "openclaw.plugin.json", "README.md", "LICENSE"]);
    expect(manifest).toMatchObject({
      license: "MIT",
      repository: { type: "git", url: expect.stringMatching(/^git\+https:\/\/github\.com\//) },
      homepage: expect.stringMatching(/^https:\/\//),
      bugs: { url: expect.stringMatching(/^https:\/\/.*\/issues$/) },
    });
    expect(manifest.type).toBe("module");
    expect(manifest.main).toBe("./dist/index.js");
  });

  it("a plain `npm pack` of the checkout builds dist/ first (prepack) and lists the same files", () => {
    const source = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8"));
    expect(source.scripts.prepack).toBe("npm run build");
    const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: REPO_ROOT, encoding: "utf8" });
    const [info] = JSON.parse(out.slice(out.indexOf("["))) as { files: { path: string }[] }[];
    // dist/ in the checkout may hold more (an older layout); what src/ builds must all be there.
    const files = info!.files.map((f) => f.path);
    for (const file of packed.files) expect(files).toContain(file);
    expect(files.filter((f) => !f.startsWith("dist/")).sort()).toEqual(["LICENSE", "README.md", "openclaw.plugin.json", "package.json"]);
  });
});

describe("publishing", () => {
  it("`npm publish` of the checkout itself is refused with the command to publish the staged package", () => {
    let output = "";
    try {
      execFileSync("npm", ["publish", "--dry-run"], { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      const e = error as { status: number; stdout: string; stderr: string };
      expect(e.status).not.toBe(0);
      output = `${e.stdout}${e.stderr}`;
    }
    expect(output).toContain("Do not publish the checkout");
    expect(output).toContain("npm run release");
  });

  it("`npm run release` builds the clean package, checks it and prints the npm publish command", () => {
    const out = execFileSync("npm", ["run", "release", "--silent", "--", "--pack-destination", join(dir, "release")], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      env: { ...process.env, npm_config_update_notifier: "false" },
    });
    const tgz = join(dir, "release", `${manifest.name}-${manifest.version}.tgz`);
    expect(out).toContain(`npm publish ${tgz}`);
    expect(checkRelease({ ...packed, tgz })).toEqual([]);
    expect(expectedReleaseFiles()).toEqual(packed.files);
  }, 120_000);

  it("the release check finds a file that should not ship and a development field", () => {
    // The checkout's own `npm pack` (dev package.json, .d.ts files) is what a release must not be.
    mkdirSync(join(dir, "raw"));
    const raw = execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", join(dir, "raw")], {
      cwd: REPO_ROOT,
      encoding: "utf8",
    });
    const [info] = JSON.parse(raw.slice(raw.indexOf("["))) as { filename: string }[];
    const problems = checkRelease({ ...packed, tgz: join(dir, "raw", info!.filename) });
    expect(problems).toContain('package.json carries the development field "devDependencies"');
    expect(problems.some((p) => /^not meant to ship: dist\/.*\.d\.ts$/.test(p))).toBe(true);
  }, 120_000);
});
