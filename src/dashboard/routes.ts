/**
 * The browser UI's pages: the dashboard's single page at `/` and `/dashboard/*` with its hashed
 * assets under `/dashboard/assets/`, and Swagger UI at `/docs` with its assets under
 * `/docs/assets/`, all from the binary (see `UiAssets`). Every page carries a Content-Security-Policy
 * that allows this origin only, so a page can never make the browser reach another host.
 *
 * The dashboard's shell and assets are public (they hold no data; the data comes from `/api/*`,
 * behind the admin guard); `/docs` is on the admin surface and a browser without a session is sent
 * to the dashboard's login and back.
 *
 * @module
 */
import { Elysia } from "elysia";
import type { AppDeps } from "../core/deps.ts";
import { GatewayError } from "../core/errors.ts";
import type { UiAsset, UiAssets } from "./assets.ts";

/** Same origin only; inline styles are allowed for Swagger UI's and the bars' computed widths. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const pageHeaders = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

function serve(asset: UiAsset, request: Request, cache: "immutable" | "no-cache"): Response {
  const headers: Record<string, string> = {
    ...pageHeaders,
    "content-type": asset.type,
    etag: asset.etag,
    "cache-control": cache === "immutable" ? "public, max-age=31536000, immutable" : "no-cache",
  };
  if (request.headers.get("if-none-match") === asset.etag)
    return new Response(null, { status: 304, headers });
  return new Response(asset.bytes, { headers });
}

const docsHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>codex-lb API</title>
<link rel="icon" href="data:," />
<link rel="stylesheet" href="/docs/assets/swagger-ui.css" />
<link rel="stylesheet" href="/docs/assets/docs.css" />
</head>
<body>
<main id="swagger-ui"></main>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>`;

// Swagger UI reads the document from this origin; "Try it out" sends the session cookie (same origin).
// No deep links: they put a link inside each operation's toggle button (nested controls, bad for
// keyboard and screen-reader users).
const docsInit = `window.ui = SwaggerUIBundle({ url: "/docs/json", dom_id: "#swagger-ui", deepLinking: false, validatorUrl: null });`;

/** Contrast fixes for Swagger UI's badges and small print (WCAG AA, 4.5:1, on its white page). */
const docsCss = [
  ".swagger-ui .info .title small { background: #555b66 !important; }",
  ".swagger-ui .info .title small.version-stamp { background: #3d6b00 !important; }",
  ".swagger-ui .info .title small pre { color: #fff !important; }",
  ".swagger-ui .info .url, .swagger-ui .info .base-url { color: #3b4151 !important; }",
  ".swagger-ui .btn.authorize { color: #1e7f55 !important; border-color: #1e7f55 !important; }",
  ".swagger-ui .btn.authorize svg { fill: #1e7f55 !important; }",
  ".swagger-ui .json-schema-2020-12-expand-deep-button { color: #4a4a4a !important; }",
  ...Object.entries({
    get: "#1f6fb8",
    post: "#1e7f55",
    put: "#9a5b00",
    delete: "#b8232a",
    patch: "#0f7a65",
    head: "#7a3db8",
    options: "#0d5aa7",
  }).map(
    ([m, c]) => `.swagger-ui .opblock.opblock-${m} .opblock-summary-method { background: ${c} !important; }`,
  ),
].join("\n");

const text = (body: string, type: string) =>
  new Response(body, { headers: { ...pageHeaders, "content-type": type, "cache-control": "no-cache" } });

/** The UI routes; without `ui` (a gateway built without the browser UI) they answer 404. */
export function dashboardRoutes(deps: AppDeps & { ui: UiAssets | null }) {
  const { ui } = deps;
  const shell = async ({ request }: { request: Request }) => {
    const index = ui ? await ui.dashboard("index.html") : null;
    if (!index) throw new GatewayError("not_found", "The dashboard is not part of this build");
    return serve(index, request, "no-cache");
  };
  const hide = { detail: { hide: true } };
  return new Elysia({ name: "routes:dashboard" })
    .get("/", shell, hide)
    .get("/dashboard", shell, hide)
    .get(
      "/dashboard/assets/:file",
      async ({ params, request }) => {
        const asset = ui && params.file !== "index.html" ? await ui.dashboard(params.file) : null;
        if (!asset) throw new GatewayError("not_found", `No dashboard asset ${JSON.stringify(params.file)}`);
        return serve(asset, request, "immutable");
      },
      hide,
    )
    .get("/dashboard/*", shell, hide)
    .get("/docs", () => text(docsHtml, "text/html; charset=utf-8"), hide)
    .get(
      "/docs/assets/:file",
      async ({ params, request }) => {
        if (params.file === "init.js") return text(docsInit, "text/javascript; charset=utf-8");
        if (params.file === "docs.css") return text(docsCss, "text/css; charset=utf-8");
        const asset = ui ? await ui.swagger(params.file) : null;
        if (!asset) throw new GatewayError("not_found", `No docs asset ${JSON.stringify(params.file)}`);
        // Not hashed names: revalidate with the ETag.
        return serve(asset, request, "no-cache");
      },
      hide,
    );
}
