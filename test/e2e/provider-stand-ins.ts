// The model endpoints the real hosts call when `openclaw models status --probe` checks an xAI or
// Anthropic login, beside the provider's token endpoint (test/support/token-endpoint-server.ts with
// its dialect): a model call is answered only for an access token the stand-in issued and still
// honours, so a probe passes only after a real refresh, and fails once a reuse revoked the family.
import type { IncomingMessage, ServerResponse } from "node:http";

import type { TestTls } from "../support/tls.ts";
import { type Dialect, StandInEndpoint } from "../support/token-endpoint-server.ts";

export interface ProviderStandIn {
  server: StandInEndpoint;
  /** Model calls answered (valid bearer) and refused (anything else). */
  modelCalls: { ok: number; denied: number };
  /** Every request that was not a token redemption, as "METHOD path" (discovery, model calls, catalogs). */
  seen: string[];
  stop(): Promise<void>;
}

// The OpenAI Responses stream (xAI's API speaks it too).
const RESPONSES_EVENTS: Record<string, unknown>[] = [
  { type: "response.created", response: { id: "resp_1", status: "in_progress" } },
  {
    type: "response.output_item.added",
    output_index: 0,
    item: { type: "message", id: "msg_1", role: "assistant", status: "in_progress", content: [] },
  },
  { type: "response.content_part.added", item_id: "msg_1", output_index: 0, content_index: 0, part: { type: "output_text", text: "" } },
  { type: "response.output_text.delta", item_id: "msg_1", output_index: 0, content_index: 0, delta: "OK" },
  { type: "response.output_text.done", item_id: "msg_1", output_index: 0, content_index: 0, text: "OK" },
  {
    type: "response.output_item.done",
    output_index: 0,
    item: { type: "message", id: "msg_1", role: "assistant", status: "completed", content: [{ type: "output_text", text: "OK" }] },
  },
  {
    type: "response.completed",
    response: { id: "resp_1", status: "completed", usage: { input_tokens: 10, output_tokens: 1, total_tokens: 11 } },
  },
];

// Anthropic's Messages stream.
const MESSAGES_EVENTS: Record<string, unknown>[] = [
  {
    type: "message_start",
    message: {
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude-stand-in",
      content: [],
      stop_reason: null,
      usage: { input_tokens: 10, output_tokens: 1 },
    },
  },
  { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
  { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "OK" } },
  { type: "content_block_stop", index: 0 },
  { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 1 } },
  { type: "message_stop" },
];

function bearerOf(req: IncomingMessage): string {
  const authorization = req.headers.authorization ?? "";
  if (authorization.startsWith("Bearer ")) return authorization.slice("Bearer ".length);
  const key = req.headers["x-api-key"];
  return typeof key === "string" ? key : "";
}

function sse(res: ServerResponse, events: readonly Record<string, unknown>[]): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  for (const event of events) res.write(`event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`);
  res.end();
}

/** The token endpoint of `dialect` plus its model endpoints, HTTPS on `address`:443 (needs root). */
export async function startProviderStandIn(dialect: Exclude<Dialect, "openai">, tls: TestTls, address: string): Promise<ProviderStandIn> {
  const modelCalls = { ok: 0, denied: 0 };
  const seen: string[] = [];
  const server: StandInEndpoint = new StandInEndpoint({
    dialect,
    tls: { key: tls.key, cert: tls.cert },
    host: address,
    port: 443,
    route: (req, res) => {
      const path = (req.url ?? "").split("?")[0] ?? "";
      const host = String(req.headers.host ?? "").split(":")[0];
      if (server.tokenPaths().includes(path) || path === "/.well-known/openid-configuration") return false;
      seen.push(`${req.method} ${host}${path}`);
      const modelCall = req.method === "POST" && (path === "/v1/responses" || path === "/v1/messages" || path === "/v1/chat/completions");
      const catalog = req.method === "GET" && (path === "/v1/models" || path === "/v1/language-models");
      if (!modelCall && !catalog) {
        res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not_found"}');
        return true;
      }
      if (!server.accessValid(bearerOf(req))) {
        if (modelCall) modelCalls.denied += 1;
        const body =
          dialect === "anthropic"
            ? { type: "error", error: { type: "authentication_error", message: "OAuth token has been revoked or is invalid." } }
            : { code: "Client specified an invalid argument", error: "Incorrect API key provided." };
        res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify(body));
        return true;
      }
      if (catalog) {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data: [] }));
        return true;
      }
      modelCalls.ok += 1;
      sse(res, path === "/v1/messages" ? MESSAGES_EVENTS : RESPONSES_EVENTS);
      return true;
    },
  });
  await server.start();
  return { server, modelCalls, seen, stop: () => server.stop() };
}
