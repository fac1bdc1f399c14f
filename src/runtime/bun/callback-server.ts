/**
 * The Bun seam for the OAuth callback listener: a second, tiny HTTP server (default port 1455,
 * the only redirect the auth server accepts) that hands `GET /auth/callback` to the core.
 *
 * @module
 */

/** The running callback listener. */
export interface CallbackListener {
  readonly port: number;
  /** Stops listening; `force` also cuts open connections (otherwise in-flight answers finish). */
  close(force?: boolean): Promise<void>;
}

/** Listens on `host:port` (0 = ephemeral); every request goes to `handler`. */
export function listenCallback(
  handler: (request: Request) => Promise<Response> | Response,
  opts: { host: string; port: number },
): CallbackListener {
  const server = Bun.serve({ hostname: opts.host, port: opts.port, fetch: handler });
  return {
    port: server.port ?? opts.port,
    close: (force = false) => server.stop(force),
  };
}
