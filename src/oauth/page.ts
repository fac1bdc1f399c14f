/**
 * The small HTML page the callback listener answers the browser with.
 *
 * @module
 */

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** "Login complete" or "Login failed" with the (escaped) reason. */
export function resultPage(ok: boolean, errorMessage: string | null): Response {
  const title = ok ? "Login complete" : "Login failed";
  const text = ok
    ? "The account was added to codex-lb. You can close this tab."
    : escapeHtml(errorMessage ?? "Unknown error");
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>codex-lb: ${title}</title></head><body style="font-family:sans-serif;margin:3em"><h1>${title}</h1><p>${text}</p></body></html>`;
  return new Response(html, {
    status: ok ? 200 : 400,
    headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
  });
}
