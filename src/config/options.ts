// Every configuration key in one table: its path under plugins.entries["refresh-guard"].config,
// type, default, bounds and meaning. The code parser (parse-config.ts) and the manifest's JSON
// Schema (openclaw.plugin.json, checked against `configSchema()` by a test and rewritten by
// `npm run manifest`) are both derived from it.
import { DEFAULT_TIMING, type GuardTiming } from "../core/timing.ts";
import { PROVIDERS } from "../providers/registry.ts";
import { coordinationSchema } from "./coordination-config.ts";

export const PLUGIN_ID = "refresh-guard";
export const CONFIG_ROOT = `plugins.entries["${PLUGIN_ID}"].config`;

/** A number the user sets in its own unit; `scale` turns it into the timing field's milliseconds. */
export interface NumberOption {
  kind: "number";
  path: string;
  timing: keyof GuardTiming;
  integer: boolean;
  min: number;
  max: number;
  scale: number;
  description: string;
}

export interface PathOption {
  kind: "path";
  path: string;
  /** `false` is allowed and means "skip". */
  allowFalse: boolean;
  /** Told in the schema; the real default depends on the machine. */
  defaultText: string;
  /** The default, under the home directory (a provider's file); none = the parser's own default. */
  homePath?: string;
  /** Where an environment variable names the file's directory instead (`$CODEX_HOME/auth.json`). */
  envDir?: { variable: string; file: string };
  description: string;
}

/** `"auto"` (found by the plugin) or a list of absolute paths. */
export interface PathListOption {
  kind: "pathList";
  path: string;
  defaultText: string;
  description: string;
}

export type Option = NumberOption | PathOption | PathListOption;

const DAY_MS = 86_400_000;

function numberOption(
  path: string,
  timing: keyof GuardTiming,
  min: number,
  max: number,
  description: string,
  unit: { scale?: number; integer?: boolean } = {},
): NumberOption {
  return { kind: "number", path, timing, min, max, scale: unit.scale ?? 1, integer: unit.integer ?? true, description };
}

export const OPTIONS: readonly Option[] = [
  {
    kind: "path",
    path: "guardDir",
    allowFalse: false,
    defaultText:
      "$XDG_STATE_HOME/openclaw-refresh-guard (if XDG_STATE_HOME is yours and not group/other-writable), else ~/.local/state/openclaw-refresh-guard (one per OS user, shared by all its state dirs)",
    description: "Locks, journal and status record (created 0700).",
  },
  numberOption(
    "lock.staleMs",
    "staleMs",
    2000,
    600_000,
    "A lock not refreshed for this long belongs to a dead or frozen holder and is taken over.",
  ),
  numberOption(
    "lock.waitTimeoutMs",
    "waitTimeoutMs",
    1000,
    600_000,
    "Longest wait for the lock (at least lock.staleMs); then the refresh fails closed.",
  ),
  numberOption("lock.pollMs", "pollMs", 5, 5000, "Fallback poll while waiting (a directory watch normally wakes waiters first)."),
  numberOption("requestTimeoutMs", "requestTimeoutMs", 1000, 600_000, "Longest wait for the token endpoint's answer."),
  numberOption("minValiditySeconds", "minValidityMs", 0, 86_400, "A stored access token is handed out only if it stays valid this long.", {
    scale: 1000,
  }),
  numberOption("retentionDays", "retentionMs", 1, 365, "Journal entries and spent markers are pruned after this.", {
    scale: DAY_MS,
    integer: false,
  }),
  // Each provider's own credential files (providers/*.ts declare them).
  ...PROVIDERS.flatMap((provider) =>
    provider.files.map(
      (file): PathOption => ({
        kind: "path",
        path: file.key,
        allowFalse: true,
        defaultText: file.envDir ? `$${file.envDir.variable}/${file.envDir.file}, else ~/${file.homePath}` : `~/${file.homePath}`,
        homePath: file.homePath,
        ...(file.envDir ? { envDir: file.envDir } : {}),
        description: file.description,
      }),
    ),
  ),
  {
    kind: "pathList",
    path: "siblingStateDirs",
    defaultText: '"auto": ~/.openclaw and ~/.openclaw-<profile>',
    description: 'Other OpenClaw state dirs whose stores recovery reads (never writes): "auto", or a list of paths ([] for none).',
  },
];

/** The user-facing default of a number option, in its own unit. */
export function defaultOf(option: NumberOption): number {
  return DEFAULT_TIMING[option.timing] / option.scale;
}

/**
 * The manifest's `configSchema`, derived from OPTIONS and the provider registry. It documents every
 * key but validates nothing: OpenClaw refuses to run any command while a plugin's config fails its
 * schema (2026.4.15: "Problem: plugins.entries.refresh-guard.config…", and neither `config unset`
 * nor `doctor --fix` repairs it), so a typo in this plugin's settings would stop the whole host.
 * The plugin's own parser checks everything instead, names the path, and attaches nothing.
 */
export function configSchema(): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  const providerProperties: Record<string, unknown> = {};
  for (const provider of PROVIDERS) {
    for (const id of [provider.id, ...provider.aliases]) {
      providerProperties[id] = {
        description: `Guard ${id} refreshes. { "enabled": true|false (default true), "tokenUrl": https URL (default ${provider.tokenUrl}) }.`,
        properties: {
          enabled: { description: "Boolean; default true.", default: true },
          tokenUrl: { description: "https URL (http only on loopback).", default: provider.tokenUrl },
        },
      };
    }
  }
  properties.providers = {
    description: "Providers to guard. A provider not listed, or with enabled: false, is left untouched.",
    properties: providerProperties,
  };
  for (const option of OPTIONS) {
    const [head, tail] = option.path.split(".") as [string, string | undefined];
    let schema: Record<string, unknown>;
    if (option.kind === "number") {
      const what = option.integer ? "Whole number" : "Number";
      schema = {
        description: `${option.description} ${what} from ${option.min} to ${option.max}; default ${defaultOf(option)}.`,
        default: defaultOf(option),
      };
    } else if (option.kind === "path") {
      schema = {
        description: `${option.description} ${option.allowFalse ? "Absolute path, ~/path or false" : "Absolute path or ~/path"}; default ${option.defaultText}.`,
      };
    } else {
      schema = { description: `${option.description} Default ${option.defaultText}.` };
    }
    if (tail === undefined) {
      properties[head] = schema;
    } else {
      properties[head] ??= { description: `${head} settings.`, properties: {} };
      (properties[head] as { properties: Record<string, unknown> }).properties[tail] = schema;
    }
  }
  properties.coordination = documentOnly(coordinationSchema());
  return {
    description:
      "Checked by refresh-guard itself (a problem is logged as event=config_invalid and nothing is attached; the host keeps running).",
    properties,
  };
}

/**
 * A schema node reduced to what documents it: the description (with the bounds, pattern or
 * allowed values folded into its text), the default, and its properties, but no keyword that
 * could make the host refuse a config (see configSchema).
 */
function documentOnly(node: Record<string, unknown>): Record<string, unknown> {
  const notes: string[] = [];
  if (Array.isArray(node.enum)) notes.push(`One of ${node.enum.map((value) => JSON.stringify(value)).join(", ")}.`);
  if (typeof node.minimum === "number" && typeof node.maximum === "number") notes.push(`From ${node.minimum} to ${node.maximum}.`);
  if (typeof node.pattern === "string") notes.push(`Matches ${node.pattern}.`);
  const text = [typeof node.description === "string" ? node.description : "", ...notes].filter((part) => part !== "").join(" ");
  const result: Record<string, unknown> = {};
  if (text !== "") result.description = text;
  if (node.default !== undefined) result.default = node.default;
  if (typeof node.properties === "object" && node.properties !== null) {
    const properties: Record<string, unknown> = {};
    for (const [name, child] of Object.entries(node.properties as Record<string, Record<string, unknown>>))
      properties[name] = documentOnly(child);
    result.properties = properties;
  }
  return result;
}
