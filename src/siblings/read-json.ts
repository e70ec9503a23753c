// Reading a credential file another program owns: never blocking on a FIFO or device, never
// reading more than a bound, and reporting a problem by the file's name only, never its content.
import { readRegularFile, SafeReadError } from "../store/safe-read.ts";

const MAX_STORE_BYTES = 4 * 1024 * 1024;

/** Parsed JSON, or undefined (with a warning unless the file is simply absent). */
export async function readJsonFile(file: string, warn: (message: string) => void): Promise<unknown> {
  let text: string;
  try {
    // Stores may be symlinks (shared setups): they are followed, but only a regular file is read.
    text = await readRegularFile(file, MAX_STORE_BYTES, { follow: true });
  } catch (error) {
    if (error instanceof SafeReadError) {
      if (error.code === "ENOENT") return undefined;
      warn(
        `skipped ${file}: ${error.code === "EFBIG" ? `larger than ${MAX_STORE_BYTES} bytes` : error.code === "ENOTREG" ? "not a regular file" : "permission denied"}`,
      );
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
