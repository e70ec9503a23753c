// The guard directory holds locks and the journal. It must be ours, private, and a real directory:
// a symlink, another user's directory, or a group/world-writable one is refused with a fix. So is
// one below a parent that someone else could rename or replace it in: a parent writable by group
// or others without the sticky bit, or owned by a user other than this one and root.
import { constants, promises as fsp } from "node:fs";
import { dirname, resolve } from "node:path";

import { UnsafeDirectoryError } from "../errors/errors.ts";

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;
/** Flags for creating a private file that must not exist and must not be a symlink. */
export const CREATE_FLAGS = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW;
export const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

function currentUid(): number | undefined {
  return typeof process.getuid === "function" ? process.getuid() : undefined;
}

/** Creates `dir` (0700) if missing, then checks it is safe; throws UnsafeDirectoryError if not. */
export async function ensurePrivateDir(path: string): Promise<void> {
  await privateDir(path, true);
}

/**
 * The same checks as ensurePrivateDir, creating nothing (for readers such as the status command):
 * false when `dir` does not exist, UnsafeDirectoryError when it exists and is not safe.
 */
export function checkPrivateDir(path: string): Promise<boolean> {
  return privateDir(path, false);
}

async function privateDir(path: string, create: boolean): Promise<boolean> {
  // One spelling for every check and every later use: absolute, `.` and `..` folded.
  const dir = resolve(path);
  await checkParents(dir);
  let stat = await lstatOrNull(dir);
  if (stat === null) {
    if (!create) return false;
    await fsp.mkdir(dir, { recursive: true, mode: DIR_MODE });
    // mkdir's mode is filtered by the umask; set it exactly.
    await fsp.chmod(dir, DIR_MODE);
    stat = await fsp.lstat(dir);
  }
  if (stat.isSymbolicLink()) {
    throw new UnsafeDirectoryError(
      dir,
      "it is a symbolic link, which another user could point elsewhere",
      `Replace it with a real directory (rm ${dir} && mkdir -m 700 ${dir}) or set guardDir to one.`,
    );
  }
  if (!stat.isDirectory()) {
    throw new UnsafeDirectoryError(dir, "it is not a directory", `Move it away or set guardDir to a directory.`);
  }
  const uid = currentUid();
  if (uid !== undefined && stat.uid !== uid) {
    throw new UnsafeDirectoryError(
      dir,
      `it is owned by uid ${stat.uid}, not by this process (uid ${uid})`,
      `Run as its owner, or chown ${uid} ${dir}, or set guardDir to a directory you own.`,
    );
  }
  if ((stat.mode & 0o022) !== 0) {
    throw new UnsafeDirectoryError(
      dir,
      `it is writable by group or others (mode ${(stat.mode & 0o777).toString(8)})`,
      `Fix it with: chmod 700 ${dir}`,
    );
  }
  return true;
}

/**
 * Every existing ancestor of `dir`, resolved through symlinks (a link's own mode means nothing):
 * each must be owned by this user or root, and not writable by group or others unless sticky.
 */
async function checkParents(dir: string): Promise<void> {
  let existing = dirname(dir);
  while ((await lstatOrNull(existing)) === null) {
    const up = dirname(existing);
    if (up === existing) return;
    existing = up;
  }
  const uid = currentUid();
  let current = await fsp.realpath(existing);
  for (;;) {
    const stat = await fsp.stat(current);
    if (uid !== undefined && stat.uid !== uid && stat.uid !== 0) {
      throw new UnsafeDirectoryError(
        dir,
        `its parent ${current} is owned by uid ${stat.uid}, who could move or replace it`,
        `Set guardDir to a directory whose parents only you (uid ${uid}) and root own.`,
      );
    }
    if ((stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0) {
      throw new UnsafeDirectoryError(
        dir,
        `its parent ${current} is writable by group or others without the sticky bit (mode ${(stat.mode & 0o7777).toString(8)}), so anyone could move or replace it`,
        `Fix it with: chmod go-w ${current} (or chmod +t ${current}), or set guardDir elsewhere.`,
      );
    }
    const up = dirname(current);
    if (up === current) return;
    current = up;
  }
}

export async function lstatOrNull(path: string) {
  try {
    return await fsp.lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}
