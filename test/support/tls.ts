// Throwaway TLS material for end-to-end tests against a real OpenClaw host.
//
// Creates (with the `openssl` CLI) a private CA and one server certificate whose
// subjectAltName covers the OpenAI hosts the host talks to during a Codex refresh
// and probe. Point the host at the CA with NODE_EXTRA_CA_CERTS=<caCertPath>.
//
// Runs under Node 22 type stripping: no enums, no parameter properties,
// relative imports with the .ts extension.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export const DEFAULT_TLS_HOSTS: readonly string[] = ["auth.openai.com", "chatgpt.com"];

export interface TestTls {
  /** Directory holding every file below (remove with cleanup()). */
  dir: string;
  /** The throwaway CA certificate alone (PEM file). */
  caCertPath: string;
  /**
   * Give THIS to the host as NODE_EXTRA_CA_CERTS: the CA file the parent process already
   * had in NODE_EXTRA_CA_CERTS (on these machines /etc/ssl/certs/ca-certificates.crt, which
   * holds the registry proxy's CA) followed by the throwaway CA. Replacing the variable with
   * the test CA alone breaks `npm install` run by the host (`openclaw plugins install`
   * with dependencies): SELF_SIGNED_CERT_IN_CHAIN against the npm registry.
   */
  caBundlePath: string;
  caCert: string;
  /** Server certificate (PEM, signed by the CA) and its private key. */
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
  hosts: string[];
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
}

/**
 * Create a CA and a server certificate for `hosts` (default auth.openai.com and
 * chatgpt.com, plus localhost / 127.0.0.1) in a fresh temp dir (or `opts.dir`).
 * Takes ~50-150 ms (EC P-256 keys).
 */
export function createTestTls(opts: { hosts?: string[]; dir?: string } = {}): TestTls {
  const hosts = [...(opts.hosts ?? DEFAULT_TLS_HOSTS)];
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), "rg-tls-"));
  mkdirSync(dir, { recursive: true });
  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

  // CA
  openssl(
    [
      "req",
      "-x509",
      ...ecKey,
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      "/CN=refresh-guard test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  // Server key + CSR
  openssl(["req", ...ecKey, "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", `/CN=${hosts[0] ?? "localhost"}`], dir);
  const san = [...hosts.map((h) => `DNS:${h}`), "DNS:localhost", "IP:127.0.0.1"].join(",");
  writeFileSync(
    path.join(dir, "server.ext"),
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth,clientAuth",
      `subjectAltName=${san}`,
      "",
    ].join("\n"),
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.crt",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      "server.ext",
    ],
    dir,
  );

  const caCertPath = path.join(dir, "ca.crt");
  const caBundlePath = path.join(dir, "ca-bundle.crt");
  let inherited = "";
  const inheritedPath = process.env.NODE_EXTRA_CA_CERTS;
  if (inheritedPath && existsSync(inheritedPath)) {
    inherited = readFileSync(inheritedPath, "utf8");
    if (!inherited.endsWith("\n")) inherited += "\n";
  }
  writeFileSync(caBundlePath, inherited + readFileSync(caCertPath, "utf8"));
  const certPath = path.join(dir, "server.crt");
  const keyPath = path.join(dir, "server.key");
  return {
    dir,
    caCertPath,
    caBundlePath,
    caCert: readFileSync(caCertPath, "utf8"),
    certPath,
    keyPath,
    cert: readFileSync(certPath, "utf8"),
    key: readFileSync(keyPath, "utf8"),
    hosts,
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
