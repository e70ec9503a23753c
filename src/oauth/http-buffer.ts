// A token endpoint's answer read completely into memory, with a byte cap, so the guard can
// journal it and hand a fresh copy to each caller.

export interface BufferedResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: string;
}

export class ResponseTooLargeError extends Error {
  readonly code = "ERR_RESPONSE_TOO_LARGE";
  constructor(limit: number) {
    super(`token endpoint answer is larger than ${limit} bytes`);
    this.name = "ResponseTooLargeError";
  }
}

/** Reads `response` whole; rejects with ResponseTooLargeError past `maxBytes` (and cancels the body). */
export async function bufferResponse(response: Response, maxBytes: number): Promise<BufferedResponse> {
  const head = { status: response.status, statusText: response.statusText, headers: [...response.headers.entries()] };
  if (response.body === null) return { ...head, body: "" };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new ResponseTooLargeError(maxBytes);
    }
    chunks.push(value);
  }
  return { ...head, body: Buffer.concat(chunks).toString("utf8") };
}

/** A fresh Response from a buffered one. */
export function rebuildResponse(response: BufferedResponse): Response {
  const headers = new Headers(response.headers);
  // The body is now plain text: drop encodings and lengths that described the wire form.
  headers.delete("content-encoding");
  headers.delete("content-length");
  headers.delete("transfer-encoding");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
