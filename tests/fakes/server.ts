/**
 * A tiny programmable HTTP server on 127.0.0.1 (ephemeral port) for fakes of the ChatGPT backend
 * and the OpenAI auth server. Fakes are route tables `"METHOD /path" → handler`; tests compose
 * them into one server and read what was received.
 *
 * @module
 */

export type FakeHandler = (request: Request, url: URL) => Response | Promise<Response>;
/** Keys are `"POST /oauth/token"`; a path ending in `*` matches by prefix. */
export type FakeRoutes = Record<string, FakeHandler>;

/** A WebSocket endpoint of a fake: `accept` decides the upgrade (a Response refuses it). */
export interface FakeWebSocket<T = unknown> {
  readonly path: string;
  accept(request: Request): Response | { headers?: Record<string, string>; data: T };
  open?(ws: import("bun").ServerWebSocket<T>): void;
  message(ws: import("bun").ServerWebSocket<T>, text: string): void;
  close?(ws: import("bun").ServerWebSocket<T>, code: number): void;
}

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
  readonly body: string;
  readonly at: number;
}

export interface FakeServer {
  readonly url: string;
  readonly port: number;
  readonly received: ReceivedRequest[];
  /** Requests received for one `"METHOD /path"`. */
  calls(route: string): ReceivedRequest[];
  stop(): Promise<void>;
}

function match(routes: FakeRoutes, method: string, path: string): FakeHandler | undefined {
  const exact = routes[`${method} ${path}`];
  if (exact) return exact;
  for (const [key, h] of Object.entries(routes)) {
    const [m, p] = key.split(" ", 2) as [string, string];
    if (m === method && p.endsWith("*") && path.startsWith(p.slice(0, -1))) return h;
  }
  return undefined;
}

export function startFakeServer(routes: FakeRoutes, websocket?: FakeWebSocket): FakeServer {
  const received: ReceivedRequest[] = [];
  const server = Bun.serve<unknown>({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    websocket: {
      idleTimeout: 0,
      maxPayloadLength: 64 * 1024 * 1024,
      open: (ws) => websocket?.open?.(ws),
      message: (ws, m) => websocket?.message(ws, typeof m === "string" ? m : new TextDecoder().decode(m)),
      close: (ws, code) => websocket?.close?.(ws, code),
    },
    async fetch(request, srv) {
      const url = new URL(request.url);
      if (
        websocket &&
        url.pathname === websocket.path &&
        request.headers.get("upgrade")?.toLowerCase() === "websocket"
      ) {
        received.push({
          method: "WS",
          path: url.pathname,
          headers: request.headers,
          body: "",
          at: Date.now(),
        });
        const a = websocket.accept(request);
        if (a instanceof Response) return a;
        if (srv.upgrade(request, { headers: a.headers, data: a.data })) return undefined;
        return new Response("upgrade failed", { status: 400 });
      }
      const body = request.method === "GET" || request.method === "HEAD" ? "" : await request.clone().text();
      received.push({
        method: request.method,
        path: url.pathname,
        headers: request.headers,
        body,
        at: Date.now(),
      });
      const h = match(routes, request.method, url.pathname);
      if (!h)
        return Response.json(
          { error: { message: `fake: no route ${request.method} ${url.pathname}` } },
          { status: 404 },
        );
      return h(request, url);
    },
  });
  const port = server.port as number;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    calls: (route) => {
      const [m, p] = route.split(" ", 2) as [string, string];
      return received.filter((r) => r.method === m && r.path === p);
    },
    stop: async () => {
      await server.stop(true);
    },
  };
}
