// Reading a file that someone else may have replaced with a FIFO, a device or a symlink: open it
// without blocking and without following a link, check what the descriptor really is, then read
// at most `maxBytes`. A FIFO opened this way returns at once instead of hanging the thread pool.
import { constants, promises as fsp } from "node:fs";

export const SAFE_READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** Same, for files a user may deliberately link (agent stores shared between setups). */
export const SAFE_READ_FOLLOW_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

export type ReadProblem = "ENOENT" | "ELOOP" | "ENOTREG" | "EFBIG" | "EACCES" | "EIO" | "EUNTRUSTED";

/**
 * Whether a file another program owns may be believed: owned by this user (or root, who could
 * write anything of this user's anyway) and writable by nobody else. Null when it may; else why not.
 */
export function untrustedBecause(stat: { uid: number; mode: number }): string | null {
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid && stat.uid !== 0) return `owned by uid ${stat.uid}, not this user (uid ${uid})`;
  if ((stat.mode & 0o022) !== 0) return `writable by group or others (mode ${(stat.mode & 0o777).toString(8)})`;
  return null;
}

export class SafeReadError extends Error {
  readonly code: ReadProblem;
  constructor(code: ReadProblem, path: string, detail: string) {
    super(`${path}: ${detail}`);
    this.name = "SafeReadError";
    this.code = code;
  }
}

/**
 * The file's text. Throws SafeReadError with `code`: ENOENT (absent), ELOOP (a symlink, when not
 * following), ENOTREG (a FIFO, socket, device or directory), EFBIG (over `maxBytes`), EACCES;
 * with `trusted`, EUNTRUSTED for a file owned by another user or writable by group or others.
 */
export async function readRegularFile(
  path: string,
  maxBytes: number,
  options: { follow?: boolean; trusted?: boolean } = {},
): Promise<string> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(path, options.follow ? SAFE_READ_FOLLOW_FLAGS : SAFE_READ_FLAGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new SafeReadError("ENOENT", path, "absent");
    if (code === "ELOOP") throw new SafeReadError("ELOOP", path, "a symbolic link");
    if (code === "EACCES" || code === "EPERM") throw new SafeReadError("EACCES", path, "permission denied");
    if (code === "ENXIO" || code === "EISDIR") throw new SafeReadError("ENOTREG", path, "not a regular file");
    throw error;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new SafeReadError("ENOTREG", path, "not a regular file");
    if (stat.size > maxBytes) throw new SafeReadError("EFBIG", path, `${stat.size} bytes is larger than ${maxBytes}`);
    const untrusted = options.trusted ? untrustedBecause(stat) : null;
    if (untrusted !== null) throw new SafeReadError("EUNTRUSTED", path, untrusted);
    // Read one byte past the cap, so a file that grew after fstat is caught too.
    const buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) {
        if (length > maxBytes) throw new SafeReadError("EFBIG", path, `larger than ${maxBytes} bytes`);
        break;
      }
    }
    return buffer.subarray(0, length).toString("utf8");
  } finally {
    await handle.close();
  }
}

/** True for "it is simply not there". */
export function isAbsent(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "ENOENT";
}
