// Types for scripts/package-plugin.mjs (imported by the tests).
export declare const REPO_ROOT: string;
export declare const STAGE_DIR: string;
export declare const SHIPPED_FIELDS: readonly string[];
export declare const SHIPPED_FILES: readonly string[];
export declare function shippedManifest(pkg: Record<string, unknown>): Record<string, unknown>;
export declare function stagePackage(stageDir?: string): Record<string, unknown>;
export interface PackedPackage {
  tgz: string;
  name: string;
  version: string;
  files: string[];
}
export declare function packPackage(options?: { destination?: string; stageDir?: string }): PackedPackage;
