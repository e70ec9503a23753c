// Issue 13, case 6: the guard directory's parents are checked too. A parent that group or others
// can write without the sticky bit, or that another (non-root) user owns, lets them rename the
// guard directory away and put their own in its place: refused, with the fix, and nothing created.
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { UnsafeDirectoryError } from "../../src/errors/errors.ts";
import { ensurePrivateDir } from "../../src/store/guard-dir.ts";

let root: string;

beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-parents-"));
});

afterEach(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

async function refusal(dir: string): Promise<UnsafeDirectoryError> {
  const error = await ensurePrivateDir(dir).then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(UnsafeDirectoryError);
  return error as UnsafeDirectoryError;
}

describe("ensurePrivateDir checks the guard directory's parents", () => {
  it("refuses a guard dir under a world-writable parent without the sticky bit, names it, and creates nothing", async () => {
    const parent = join(root, "shared");
    await fsp.mkdir(parent);
    await fsp.chmod(parent, 0o777);
    const error = await refusal(join(parent, "guard"));
    expect(error.message).toContain(parent);
    expect(error.message).toContain(`chmod go-w ${parent}`);
    expect(await fsp.readdir(parent)).toEqual([]);
  });

  it("refuses an existing private guard dir whose grandparent is group-writable", async () => {
    const grand = join(root, "team");
    await fsp.mkdir(join(grand, "mine", "guard"), { recursive: true, mode: 0o700 });
    await fsp.chmod(grand, 0o770);
    const error = await refusal(join(grand, "mine", "guard"));
    expect(error.message).toContain(grand);
  });

  it("refuses a guard dir under a parent owned by another non-root user", async () => {
    if (process.getuid?.() !== 0) return expect.fail("needs root to chown (this project's CI runs as root)");
    const parent = join(root, "theirs");
    await fsp.mkdir(parent, { mode: 0o755 });
    await fsp.chown(parent, 12345, 12345);
    const error = await refusal(join(parent, "guard"));
    expect(error.message).toContain("uid 12345");
  });

  it("checks the parent a symlink points to, not the link's own mode", async () => {
    const real = join(root, "real");
    await fsp.mkdir(real);
    await fsp.chmod(real, 0o777);
    await fsp.symlink(real, join(root, "link"));
    const error = await refusal(join(root, "link", "guard"));
    expect(error.message).toContain(real);
  });

  it("accepts a parent that is world-writable with the sticky bit (like /tmp) and a missing chain of parents", async () => {
    const sticky = join(root, "tmp-like");
    await fsp.mkdir(sticky);
    await fsp.chmod(sticky, 0o1777);
    await ensurePrivateDir(join(sticky, "a", "b", "guard"));
    expect((await fsp.stat(join(sticky, "a", "b", "guard"))).isDirectory()).toBe(true);
  });

  it("accepts a relative spelling and checks the same absolute directory", async () => {
    const previous = process.cwd();
    process.chdir(root);
    try {
      await ensurePrivateDir("./x/../guard");
    } finally {
      process.chdir(previous);
    }
    expect(((await fsp.stat(join(root, "guard"))).mode & 0o777).toString(8)).toBe("700");
  });
});
