import { definePluginEntry } from "openclaw/plugin-sdk/plugin-entry";

import { type PluginApi, registerRefreshGuard } from "./plugin/register.ts";

export default definePluginEntry({
  id: "refresh-guard",
  name: "refresh-guard",
  description: "One redemption per OAuth refresh-token rotation across agents, processes and copied credentials.",
  register(api) {
    registerRefreshGuard(api as unknown as PluginApi);
  },
});
