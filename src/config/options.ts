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
  description: string;
}

export type Option = NumberOption | PathOption;

const DAY_MS = 86_400_000;

function numberOption(path: string, timing: keyof GuardTiming, min: number, max: number, description: string, unit: { scale?: number; integer?: boolean } = {}): NumberOption {
  return { kind: "number", path, timing, min, max, scale: unit.scale ?? 1, integer: unit.integer ?? true, description };
}

export const OPTIONS: readonly Option[] = [
  {
    kind: "path",
    path: "guardDir",
    allowFalse: false,
    defaultText: "<OpenClaw state dir>/refresh-guard",
    description: "Locks, journal and status record (created 0700).",
  },
  numberOption("lock.staleMs", "staleMs", 2000, 600_000, "A lock not refreshed for this long belongs to a dead or frozen holder and is taken over."),
  numberOption("lock.waitTimeoutMs", "waitTimeoutMs", 1000, 600_000, "Longest wait for the lock (at least lock.staleMs); then the refresh fails closed."),
  numberOption("lock.pollMs", "pollMs", 5, 5000, "Fallback poll while waiting (a directory watch normally wakes waiters first)."),
  numberOption("requestTimeoutMs", "requestTimeoutMs", 1000, 600_000, "Longest wait for the token endpoint's answer."),
  numberOption("minValiditySeconds", "minValidityMs", 0, 86_400, "A stored access token is handed out only if it stays valid this long.", { scale: 1000 }),
  numberOption("retentionDays", "retentionMs", 1, 365, "Journal entries and spent markers are pruned after this.", { scale: DAY_MS, integer: false }),
  {
    kind: "path",
    path: "codexAuthFile",
    allowFalse: true,
    defaultText: "~/.codex/auth.json",
    description: "The Codex CLI's credentials, read when looking for a sibling; false to skip.",
  },
];

/** The user-facing default of a number option, in its own unit. */
export function defaultOf(option: NumberOption): number {
  return DEFAULT_TIMING[option.timing] / option.scale;
}

/** The manifest's `configSchema`, derived from OPTIONS and the provider registry. */
export function configSchema(): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  const providerProperties: Record<string, unknown> = {};
  for (const provider of PROVIDERS) {
    for (const id of [provider.id, ...provider.aliases]) {
      providerProperties[id] = {
        type: "object",
        additionalProperties: false,
        properties: {
          enabled: { type: "boolean", default: true },
          tokenUrl: { type: "string", minLength: 1, default: provider.tokenUrl },
        },
      };
    }
  }
  properties.providers = {
    type: "object",
    description: "Providers to guard. A provider not listed, or with enabled: false, is left untouched.",
    additionalProperties: false,
    properties: providerProperties,
  };
  for (const option of OPTIONS) {
    const [head, tail] = option.path.split(".") as [string, string | undefined];
    let schema: Record<string, unknown>;
    if (option.kind === "number") {
      schema = { type: option.integer ? "integer" : "number", minimum: option.min, maximum: option.max, default: defaultOf(option), description: option.description };
    } else {
      const description = `${option.description} Default: ${option.defaultText}.`;
      schema = option.allowFalse
        ? { description, anyOf: [{ type: "string", minLength: 1 }, { const: false }] }
        : { type: "string", minLength: 1, description };
    }
    if (tail === undefined) {
      properties[head] = schema;
    } else {
      const group = (properties[head] ??= { type: "object", additionalProperties: false, properties: {} }) as { properties: Record<string, unknown> };
      group.properties[tail] = schema;
    }
  }
  properties.coordination = coordinationSchema();
  return { type: "object", additionalProperties: false, properties };
}
