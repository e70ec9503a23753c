// `npm run install-plugin -- --link`: a relink where the host's config already links the stage only
// restages (2026.4.15 and 2026.9.6 both record a link in plugins.load.paths), and the host's refusal
// to link over an installed copy (the same words on both) is turned into the one command that removes it.
import { describe, expect, it } from "vitest";

import { installedCopyIn, linksTo } from "../../scripts/install-plugin.mjs";
import { STAGE_DIR } from "../../scripts/package-plugin.mjs";

describe("install-plugin --link", () => {
  it("sees the link a host recorded in plugins.load.paths, and nothing else", () => {
    expect(linksTo({ plugins: { load: { paths: ["/elsewhere", `${STAGE_DIR}/`] } } }, STAGE_DIR)).toBe(true);
    expect(linksTo({ plugins: { load: { paths: ["/elsewhere"] } } }, STAGE_DIR)).toBe(false);
    expect(linksTo({ plugins: { installs: {} } }, STAGE_DIR)).toBe(false);
    expect(linksTo(null, STAGE_DIR)).toBe(false);
  });

  it("recognises the refusal to link over an installed copy, as 2026.4.15 and 2026.9.6 print it", () => {
    const dir = "/home/u/.openclaw/extensions/refresh-guard";
    expect(installedCopyIn(`plugin already exists: ${dir} (delete it first)\nAlso not a valid hook pack: …`)).toBe(dir);
    expect(installedCopyIn(`plugin already exists: ${dir} (delete it first)\nUse \`openclaw plugins update <id-or-npm-spec>\` …`)).toBe(
      dir,
    );
    expect(installedCopyIn("Linked plugin path: /x")).toBeNull();
  });
});
