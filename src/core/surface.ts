/**
 * Which surface a path belongs to: one table, used by admission, auth and the error envelope.
 * The dashboard's page and assets (`/`, `/dashboard/*`) are public: they hold no data, and its data
 * comes from `/api/*`.
 */
export type Surface = "proxy" | "admin" | "public";

const prefixes: readonly [string, Surface][] = [
  ["/v1/", "proxy"],
  ["/backend-api/", "proxy"],
  ["/api/", "admin"],
  ["/docs", "admin"],
];

/** Each prefix with the bare path it also covers (`/v1/` covers `/v1`), worked out once. */
const table = prefixes.map(([p, s]) => [p, p.replace(/\/$/, ""), s] as const);

export function surfaceOf(pathname: string): Surface {
  for (const [p, bare, s] of table) if (pathname.startsWith(p) || pathname === bare) return s;
  return "public";
}
