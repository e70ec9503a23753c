// Reading a credential file another program owns: never blocking on a FIFO or device, never
// reading more than a bound, and reporting a problem by the file's name only, never its content.
import { readRegularFile, SafeReadError } from "../store/safe-read.ts";

export const MAX_STORE_BYTES = 4 * 1024 * 1024;

/** Parsed JSON, or undefined (with a warning unless the file is simply absent). */
export async function readJsonFile(file: string, warn: (message: string) => void): Promise<unknown> {
  let text: string;
  try {
    // Stores may be symlinks (shared setups): they are followed, but only a regular file is read.
    // Only a store this user owns and nobody else can write is believed (recovery hands its tokens out).
    text = await readRegularFile(file, MAX_STORE_BYTES, { follow: true, trusted: true });
  } catch (error) {
    if (error instanceof SafeReadError) {
      if (error.code === "ENOENT") return undefined;
      const why =
        error.code === "EFBIG"
          ? `larger than ${MAX_STORE_BYTES} bytes`
          : error.code === "ENOTREG"
            ? "not a regular file"
            : error.code === "EUNTRUSTED"
              ? error.message.slice(file.length + 2)
              : "permission denied";
      warn(`skipped ${file}: ${why}`);
      return undefined;
    }
    warn(`skipped ${file}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`);
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    warn(`skipped ${file}: not valid JSON (torn or corrupt)`);
    return undefined;
  }
}
