/**
 * A throw-away self-signed certificate for TLS tests, made with the machine's `openssl` (a P-256
 * key: fast to make). The certificate is its own CA: pass `cert` as `ca` to trust it. And a local
 * HTTPS server with such a certificate that notes the `authorization` each request brought.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A key and certificate (PEM) for `subjectAltName=san` (`IP:127.0.0.1,DNS:localhost`). */
export function selfSignedCert(name: string, san: string): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), "codex-lb-tls-"));
  try {
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    const r = spawnSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        .concat(["-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${name}`])
        .concat(["-addext", `subjectAltName=${san}`]),
      { stdio: "ignore" },
    );
    if (r.status !== 0) throw new Error("openssl could not make a test certificate");
    return { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * An HTTPS server on 127.0.0.1 with `pair`, answering "secret answer" (with `headers`) and noting
 * each request's `authorization` in `seen`; `stops` gets its stop.
 */
export function tlsServer(
  pair: { key: string; cert: string },
  stops: (() => void)[],
  headers: Record<string, string> = {},
): { url: string; port: number; seen: string[] } {
  const seen: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: pair,
    fetch: (req) => {
      seen.push(req.headers.get("authorization") ?? "");
      return new Response("secret answer", { headers });
    },
  });
  stops.push(() => server.stop(true));
  return { url: `https://127.0.0.1:${server.port}/`, port: server.port as number, seen };
}
