/**
 * The Bun seam for HTTP: puts a `fetch(Request, peerIp) → Response` on a socket with Bun.serve and
 * stops it gracefully. Nothing else in the code base calls Bun.serve.
 *
 * @module
 */

export interface Listening {
  readonly host: string;
  readonly port: number;
  /** Stops accepting; waits up to `graceMs` for in-flight requests, then closes what is left. */
  close(graceMs: number): Promise<void>;
}

export function listen(
  handler: (request: Request, peerIp: string | null) => Promise<Response> | Response,
  opts: { host: string; port: number; maxRequestBodySize: number; onError?: (e: Error) => void },
): Listening {
  const server = Bun.serve({
    hostname: opts.host,
    port: opts.port,
    // Never Bun's development error page (source lines, working directory): JSON errors only.
    development: false,
    // Streams may be quiet for minutes; the proxy enforces its own stream idle timeout.
    idleTimeout: 0,
    maxRequestBodySize: opts.maxRequestBodySize,
    fetch(request, srv) {
      return handler(request, srv.requestIP(request)?.address ?? null);
    },
    // Last resort for anything the handler let escape: a JSON 500, one log line (by the caller).
    error(e) {
      opts.onError?.(e);
      return new Response(
        JSON.stringify({ error: { code: "server_error", message: "Internal server error" } }),
        { status: 500, headers: { "content-type": "application/json" } },
      );
    },
  });
  return {
    host: opts.host,
    port: server.port ?? opts.port,
    async close(graceMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const graceful = server.stop(false);
      const timeout = new Promise<"timeout">((r) => {
        timer = setTimeout(() => r("timeout"), graceMs);
      });
      const how = await Promise.race([graceful.then(() => "done" as const), timeout]);
      clearTimeout(timer);
      if (how === "timeout") await server.stop(true);
    },
  };
}
