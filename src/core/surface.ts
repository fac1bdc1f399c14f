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

export function surfaceOf(pathname: string): Surface {
  for (const [p, s] of prefixes) if (pathname.startsWith(p) || pathname === p.replace(/\/$/, "")) return s;
  return "public";
}
