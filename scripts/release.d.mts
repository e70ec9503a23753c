// Types for scripts/release.mjs (imported by the tests).
import type { PackedPackage } from "./package-plugin.mjs";
export declare function expectedReleaseFiles(): string[];
export declare function checkRelease(packed: PackedPackage): string[];
