// The manifest's `configSchema`, derived from the table in options.ts and the provider registry.
// It documents every key but validates nothing: OpenClaw refuses to run any command while a
// plugin's config fails its schema (2026.4.15: "Problem: plugins.entries.refresh-guard.config…",
// and neither `config unset` nor `doctor --fix` repairs it), so a typo in this plugin's settings
// would stop the whole host. The plugin's own parser checks everything instead, names the path,
// and attaches nothing. `npm run manifest` writes it into openclaw.plugin.json.
import { PROVIDERS } from "../providers/registry.ts";
import { defaultOf, GROUPS, OPTIONS, type Option } from "./options.ts";

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
    const names = option.path.split(".");
    let level = properties;
    for (let depth = 1; depth < names.length; depth += 1) {
      const group = names.slice(0, depth).join(".");
      const name = names[depth - 1] as string;
      if (level[name] === undefined) {
        const description = GROUPS[group] ?? (depth === 1 ? `${name} settings.` : undefined);
        level[name] = { ...(description !== undefined ? { description } : {}), properties: {} };
      }
      level = (level[name] as { properties: Record<string, unknown> }).properties;
    }
    level[names.at(-1) as string] = schemaOf(option);
  }
  return {
    description:
      "Checked by refresh-guard itself (a problem is logged as event=config_invalid and nothing is attached; the host keeps running).",
    properties,
  };
}

function schemaOf(option: Option): Record<string, unknown> {
  switch (option.kind) {
    case "number": {
      const what = option.integer ? "Whole number" : "Number";
      return {
        description: `${option.description} ${what} from ${option.min} to ${option.max}; default ${defaultOf(option)}.`,
        default: defaultOf(option),
      };
    }
    case "path":
      return {
        description: `${option.description} ${option.allowFalse ? "Absolute path, ~/path or false" : "Absolute path or ~/path"}; default ${option.defaultText}.`,
      };
    case "pathList":
      return { description: `${option.description} Default ${option.defaultText}.` };
    case "choice":
      return {
        description: `${option.description} One of ${option.values.map((value) => JSON.stringify(value)).join(", ")}.`,
        default: option.default,
      };
    case "text":
      return {
        description: [option.description, option.note].filter((part) => part !== undefined).join(" "),
        ...(option.default !== undefined ? { default: option.default } : {}),
      };
  }
}
