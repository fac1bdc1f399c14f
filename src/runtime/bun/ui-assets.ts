/**
 * The Bun seam for the browser UI: the dashboard (an HTML import, so `bun build --compile` bundles
 * it into the binary) and Swagger UI's files (file imports, embedded the same way). In the binary
 * the bundle's files are already built; from source the dashboard is bundled once, in memory, on
 * the first request. No file beside the binary is read and nothing is fetched from another host.
 *
 * @module
 */

// @ts-expect-error: a file import, see above
import swaggerCssPath from "../../../node_modules/swagger-ui-dist/swagger-ui.css" with { type: "file" };
// @ts-expect-error: a file import (its path, embedded by `bun build --compile`); no type declarations
import swaggerBundlePath from "../../../node_modules/swagger-ui-dist/swagger-ui-bundle.js" with {
  type: "file",
};
import type { UiAsset, UiAssets } from "../../dashboard/assets.ts";
import dashboardHtml from "../../dashboard/web/index.html";

const typeOf = (name: string): string =>
  name.endsWith(".js")
    ? "text/javascript;charset=utf-8"
    : name.endsWith(".css")
      ? "text/css;charset=utf-8"
      : name.endsWith(".html")
        ? "text/html;charset=utf-8"
        : name.endsWith(".svg")
          ? "image/svg+xml"
          : "application/octet-stream";

const baseName = (path: string) => path.slice(path.lastIndexOf("/") + 1);

async function asset(name: string, bytes: Uint8Array<ArrayBuffer>, type = typeOf(name)): Promise<UiAsset> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const etag = `"${Buffer.from(digest.slice(0, 12)).toString("base64url")}"`;
  return { name, bytes, type, etag };
}

/**
 * The dashboard's files: `index.html` plus its hashed chunks. The HTML refers to chunks by root
 * paths (`/chunk-….js`); they are rewritten to `prefix` so everything lives under one folder.
 */
async function dashboardFiles(prefix: string): Promise<Map<string, UiAsset>> {
  const raw: { name: string; bytes: Uint8Array<ArrayBuffer>; html: boolean }[] = [];
  const files = dashboardHtml.files;
  if (files && files.length > 0) {
    // Built ahead of time (the compiled binary): the files are embedded.
    for (const f of files)
      raw.push({
        name: baseName(f.path),
        bytes: new Uint8Array(await Bun.file(f.path).arrayBuffer()),
        html: f.loader === "html",
      });
  } else {
    // From source: bundle now (once per process).
    const out = await Bun.build({ entrypoints: [dashboardHtml.index], target: "browser", minify: true });
    if (!out.success) throw new Error(`dashboard bundle failed: ${out.logs.map(String).join("\n")}`);
    for (const o of out.outputs)
      raw.push({
        name: baseName(o.path),
        bytes: new Uint8Array(await o.arrayBuffer()),
        html: o.path.endsWith(".html"),
      });
  }
  const assets = new Map<string, UiAsset>();
  const chunkNames = raw.filter((r) => !r.html).map((r) => r.name);
  for (const r of raw) {
    if (r.html) {
      let text = new TextDecoder().decode(r.bytes);
      for (const n of chunkNames)
        text = text.replaceAll(`"/${n}"`, `"${prefix}${n}"`).replaceAll(`"./${n}"`, `"${prefix}${n}"`);
      assets.set("index.html", await asset("index.html", new TextEncoder().encode(text)));
    } else assets.set(r.name, await asset(r.name, r.bytes));
  }
  return assets;
}

async function swaggerFiles(): Promise<Map<string, UiAsset>> {
  const m = new Map<string, UiAsset>();
  const read = async (p: string) => new Uint8Array(await Bun.file(p).arrayBuffer());
  m.set("swagger-ui-bundle.js", await asset("swagger-ui-bundle.js", await read(swaggerBundlePath as string)));
  m.set("swagger-ui.css", await asset("swagger-ui.css", await read(swaggerCssPath as string)));
  return m;
}

/** The embedded UI files; each set is loaded (or bundled) on first use and kept. */
export function bunUiAssets(): UiAssets {
  let dashboard: Promise<Map<string, UiAsset>> | null = null;
  let swagger: Promise<Map<string, UiAsset>> | null = null;
  return {
    async dashboard(name) {
      dashboard ??= dashboardFiles("/dashboard/assets/");
      return (await dashboard).get(name) ?? null;
    },
    async swagger(name) {
      swagger ??= swaggerFiles();
      return (await swagger).get(name) ?? null;
    },
    async bundleSize() {
      dashboard ??= dashboardFiles("/dashboard/assets/");
      let n = 0;
      for (const a of (await dashboard).values()) n += a.bytes.byteLength;
      return n;
    },
  };
}
