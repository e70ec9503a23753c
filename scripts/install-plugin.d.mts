// Types for scripts/install-plugin.mjs (imported by the tests).
export declare function installFlags(helpText: string, options?: { link?: boolean }): string[];
export declare function linksTo(config: unknown, dir: string): boolean;
export declare function installedCopyIn(output: string): string | null;
