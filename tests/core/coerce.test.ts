/**
 * The one copy of the loose-value readers (`src/core/coerce.ts`), used by failure classification, token
 * claims, auth.json import, the Python import and the usage poller (through the plugin API).
 */
import { describe, expect, test } from "bun:test";
import { num, numeric, str, trimmed } from "../../src/core/coerce.ts";
import * as api from "../../src/plugin-api.ts";

describe("loose value readers", () => {
  test("str: a string with something besides blanks, as given; trimmed: the same, trimmed", () => {
    const cases: [unknown, string | null, string | null][] = [
      ["abc", "abc", "abc"],
      [" a b ", " a b ", "a b"],
      ["", null, null],
      [" \t\n", null, null],
      [12, null, null],
      [null, null, null],
      [undefined, null, null],
      [{}, null, null],
      [["x"], null, null],
    ];
    for (const [v, s, t] of cases) {
      expect(str(v)).toBe(s);
      expect(trimmed(v)).toBe(t);
    }
  });

  test("num: a finite JSON number only; numeric: also decimal text and bigints", () => {
    const cases: [unknown, number | null, number | null][] = [
      [0, 0, 0],
      [-3.5, -3.5, -3.5],
      [Number.NaN, null, null],
      [Number.POSITIVE_INFINITY, null, null],
      ["12", null, 12],
      [" -3.25 ", null, -3.25],
      [".5", null, 0.5],
      ["1e3", null, 1000],
      ["+7", null, 7],
      ["", null, null],
      ["  ", null, null],
      ["0x10", null, null],
      ["Infinity", null, null],
      ["1e999", null, null],
      ["12abc", null, null],
      [42n, null, 42],
      [true, null, null],
      [null, null, null],
      [{}, null, null],
    ];
    for (const [v, n, loose] of cases) {
      expect([v, num(v)]).toEqual([v, n]);
      expect([v, numeric(v)]).toEqual([v, loose]);
    }
  });

  test("plugins get the same functions from the public API", () => {
    expect(api.str).toBe(str);
    expect(api.trimmed).toBe(trimmed);
    expect(api.num).toBe(num);
    expect(api.numeric).toBe(numeric);
  });
});
