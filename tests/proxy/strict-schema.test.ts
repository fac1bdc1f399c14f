import { describe, expect, test } from "bun:test";
import { renderContext, strictViolation } from "../../src/proxy/strict-schema.ts";

describe("strict-mode schema rules", () => {
  test.each([
    [
      "a good schema",
      { type: "object", properties: { a: { type: "string" } }, required: ["a"], additionalProperties: false },
      null,
    ],
    [
      "no additionalProperties",
      { type: "object", properties: { a: { type: "string" } }, required: ["a"] },
      "()",
    ],
    [
      "a property not required",
      {
        type: "object",
        properties: { a: { type: "string" }, b: { type: "string" } },
        required: ["a"],
        additionalProperties: false,
      },
      "()",
    ],
    [
      "a node without type",
      { type: "object", properties: { a: {} }, required: ["a"], additionalProperties: false },
      "('properties', 'a')",
    ],
    [
      "a nested object",
      {
        type: "object",
        properties: {
          o: {
            type: "object",
            properties: { x: { type: "number" } },
            required: [],
            additionalProperties: false,
          },
        },
        required: ["o"],
        additionalProperties: false,
      },
      "('properties', 'o')",
    ],
    ["array items", { type: "array", items: { type: "object", properties: {} } }, "('items',)"],
    ["anyOf branches", { anyOf: [{ type: "string" }, { type: "object", properties: {} }] }, "('anyOf', 1)"],
    ["$ref is fine", { $ref: "#/$defs/x", $defs: { x: { type: "string" } } }, null],
  ] as const)("%s", (_name, schema, where) => {
    const v = strictViolation(schema);
    if (where === null) expect(v).toBeNull();
    else expect(renderContext(v!.path)).toBe(where);
  });

  test("the reason names the missing required keys", () => {
    const v = strictViolation({
      type: "object",
      properties: { a: { type: "string" }, b: { type: "string" } },
      additionalProperties: false,
    });
    expect(v!.reason).toContain("Missing 'a', 'b'");
  });
});
