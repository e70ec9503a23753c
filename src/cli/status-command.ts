// `openclaw refresh-guard status [--json]`: what the guard sees, never a token.
import { PLUGIN_ID } from "../config/options.ts";
import { formatStatus, type StatusReport } from "./status-report.ts";

/** The slice of commander's Command used to add the status command. */
export interface CliProgram {
  command(name: string): CliProgram;
  description(text: string): CliProgram;
  option(flags: string, description: string): CliProgram;
  action(fn: (options: Record<string, unknown>) => void | Promise<void>): CliProgram;
}

export interface CliHost {
  registerCli?: (
    registrar: (ctx: { program: CliProgram }) => void | Promise<void>,
    opts?: { commands?: string[]; descriptors?: { name: string; description: string; hasSubcommands: boolean }[] },
  ) => void;
}

const DESCRIPTION = "refresh-guard: OAuth refresh coordination";

export function registerStatusCommand(host: CliHost, report: () => Promise<StatusReport>): void {
  host.registerCli?.(
    ({ program }) => {
      program
        .command(PLUGIN_ID)
        .description(DESCRIPTION)
        .command("status")
        .description("Guard dir, providers, host support, lock holders, journal size and recent outcomes (never a token)")
        .option("--json", "print JSON")
        .action(async (options) => {
          const current = await report();
          process.stdout.write(options.json ? `${JSON.stringify(current, null, 2)}\n` : formatStatus(current));
        });
    },
    { descriptors: [{ name: PLUGIN_ID, description: DESCRIPTION, hasSubcommands: true }] },
  );
}
