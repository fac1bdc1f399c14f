/** The one trailing-slash rule for request paths (access control, CSRF, admission, admin guard, proxy routes). */
import { expect, test } from "bun:test";
import { withoutTrailingSlashes } from "../../src/core/paths.ts";

test("drops every trailing slash, keeps a lone `/`, leaves other paths as they are", () => {
  expect(withoutTrailingSlashes("/v1/usage")).toBe("/v1/usage");
  expect(withoutTrailingSlashes("/v1/usage/")).toBe("/v1/usage");
  expect(withoutTrailingSlashes("/v1/usage///")).toBe("/v1/usage");
  expect(withoutTrailingSlashes("/a//b/")).toBe("/a//b");
  expect(withoutTrailingSlashes("/")).toBe("/");
  expect(withoutTrailingSlashes("///")).toBe("/");
});
