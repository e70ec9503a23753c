// The one SDK entry point refresh-guard imports, typed as far as it uses it. The host provides
// the module at run time (openclaw is a peer dependency; it is not installed to build).
declare module "openclaw/plugin-sdk/plugin-entry" {
  export function definePluginEntry(entry: { id: string; name: string; description: string; register: (api: unknown) => void }): unknown;
}
