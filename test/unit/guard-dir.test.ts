import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { ERR_UNSAFE_DIR, UnsafeDirectoryError } from "../../src/errors/errors.ts";
import { DIR_MODE, ensurePrivateDir, lstatOrNull } from "../../src/store/guard-dir.ts";

let root: string;
let savedUmask: number;

beforeEach(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), "rg-guard-dir-"));
  savedUmask = process.umask();
});

afterEach(async () => {
  process.umask(savedUmask);
  await fsp.rm(root, { recursive: true, force: true });
});

async function refusal(dir: string): Promise<UnsafeDirectoryError> {
  const error = await ensurePrivateDir(dir).then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(UnsafeDirectoryError);
  const unsafe = error as UnsafeDirectoryError;
  expect(unsafe.code).toBe(ERR_UNSAFE_DIR);
  expect(unsafe.path).toBe(dir);
  return unsafe;
}

describe("ensurePrivateDir", () => {
  it("creates a missing directory (and its parents) with mode 0700 even under umask 0", async () => {
    process.umask(0);
    const dir = join(root, "a", "b", "guard");
    await ensurePrivateDir(dir);
    const stat = await fsp.lstat(dir);
    expect(stat.isDirectory()).toBe(true);
    expect(stat.mode & 0o777).toBe(DIR_MODE);
    expect(DIR_MODE).toBe(0o700);
    // The parents it had to create are not left world-writable either.
    expect((await fsp.lstat(join(root, "a"))).mode & 0o022).toBe(0);
  });

  it("creates 0700 under a restrictive umask as well", async () => {
    process.umask(0o077);
    const dir = join(root, "guard");
    await ensurePrivateDir(dir);
    expect((await fsp.lstat(dir)).mode & 0o777).toBe(0o700);
  });

  it("accepts an existing private directory and leaves its content alone", async () => {
    const dir = join(root, "guard");
    await fsp.mkdir(dir, { mode: 0o700 });
    await fsp.chmod(dir, 0o700);
    await fsp.writeFile(join(dir, "keep"), "x");
    await ensurePrivateDir(dir);
    expect(await fsp.readFile(join(dir, "keep"), "utf8")).toBe("x");
  });

  it("accepts an existing owner-only directory that is not 0700 exactly (e.g. 0750)", async () => {
    const dir = join(root, "guard");
    await fsp.mkdir(dir);
    await fsp.chmod(dir, 0o750);
    await expect(ensurePrivateDir(dir)).resolves.toBeUndefined();
  });

  it("refuses a symbolic link, even one pointing at a private directory", async () => {
    const target = join(root, "real");
    await fsp.mkdir(target, { mode: 0o700 });
    await fsp.chmod(target, 0o700);
    const link = join(root, "link");
    await fsp.symlink(target, link);
    const error = await refusal(link);
    expect(error.message).toContain("symbolic link");
    expect(error.message).toContain(`mkdir -m 700 ${link}`);
  });

  it("refuses a dangling symbolic link instead of creating through it", async () => {
    const link = join(root, "link");
    const target = join(root, "elsewhere");
    await fsp.symlink(target, link);
    await refusal(link);
    expect(await lstatOrNull(target)).toBeNull();
  });

  it("refuses a path that is a regular file", async () => {
    const file = join(root, "file");
    await fsp.writeFile(file, "");
    const error = await refusal(file);
    expect(error.message).toContain("not a directory");
  });

  it("refuses a group-writable directory and says to chmod 700 it", async () => {
    const dir = join(root, "group");
    await fsp.mkdir(dir);
    await fsp.chmod(dir, 0o770);
    const error = await refusal(dir);
    expect(error.message).toContain("writable by group or others");
    expect(error.message).toContain(`chmod 700 ${dir}`);
    // Nothing was "fixed" behind the user's back.
    expect((await fsp.lstat(dir)).mode & 0o777).toBe(0o770);
  });

  it("refuses a world-writable directory and says to chmod 700 it", async () => {
    const dir = join(root, "world");
    await fsp.mkdir(dir);
    await fsp.chmod(dir, 0o707);
    const error = await refusal(dir);
    expect(error.message).toContain("chmod 700");
  });

  it("refuses a directory owned by another uid", async () => {
    expect(process.getuid?.()).toBe(0); // chown below needs root
    const dir = join(root, "foreign");
    await fsp.mkdir(dir);
    await fsp.chmod(dir, 0o700);
    await fsp.chown(dir, 4242, 4242);
    const error = await refusal(dir);
    expect(error.message).toContain("owned by uid 4242");
    expect(error.message).toContain(`chown 0 ${dir}`);
  });
});

describe("lstatOrNull", () => {
  it("returns null for a missing path and a stat otherwise", async () => {
    expect(await lstatOrNull(join(root, "missing"))).toBeNull();
    expect((await lstatOrNull(root))?.isDirectory()).toBe(true);
  });

  it("rethrows errors other than ENOENT", async () => {
    const file = join(root, "file");
    await fsp.writeFile(file, "");
    await expect(lstatOrNull(join(file, "below"))).rejects.toMatchObject({ code: "ENOTDIR" });
  });
});
