// A minimal HTTPS proxy (HTTP CONNECT) for real-host tests: tunnels the listed host names to the
// stand-in's address and refuses everything else. OpenClaw 2026.6/2026.7 refuse a token endpoint
// that resolves to any special-use address (RFC 2544 included), but send the token POST through an
// HTTPS_PROXY from the environment without resolving the name themselves ("trusted_env_proxy").
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connect, type Socket } from "node:net";

export interface ConnectProxy {
  url: string;
  /** Tunnels opened, by target host name. */
  tunnels: Map<string, number>;
  refused: number;
  stop(): Promise<void>;
}

export async function startConnectProxy(options: { hosts: readonly string[]; target: string; targetPort?: number }): Promise<ConnectProxy> {
  const allowed = new Set(options.hosts.map((host) => host.toLowerCase()));
  const sockets = new Set<Socket>();
  const proxy: ConnectProxy = { url: "", tunnels: new Map(), refused: 0, stop: async () => undefined };
  const server: Server = createServer((_req, res) => {
    proxy.refused += 1;
    res.writeHead(405).end("CONNECT only");
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("connect", (req, client: Socket, head: Buffer) => {
    const [host = "", port = ""] = (req.url ?? "").split(":");
    if (!allowed.has(host.toLowerCase()) || port !== "443") {
      proxy.refused += 1;
      client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
      return;
    }
    proxy.tunnels.set(host, (proxy.tunnels.get(host) ?? 0) + 1);
    const upstream = connect(options.targetPort ?? 443, options.target, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.stop = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return proxy;
}
