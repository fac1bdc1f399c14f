import { describe, expect, test } from "bun:test";
import { errorCatalogue, errorTypeForStatus } from "../../src/core/errors.ts";
import { type AttemptFailure, failureError, statusForStreamError } from "../../src/proxy/failure.ts";

const failure = (over: Partial<AttemptFailure>): AttemptFailure => ({
  httpStatus: null,
  errorCode: null,
  errorType: null,
  message: null,
  transport: false,
  phase: "http",
  resetsAt: null,
  resetsInSeconds: null,
  extra: {},
  ...over,
});

describe("status -> error type: one table", () => {
  test("agrees with the error catalogue for the statuses it names", () => {
    expect(errorTypeForStatus(401)).toBe(errorCatalogue.invalid_api_key.type);
    expect(errorTypeForStatus(429)).toBe(errorCatalogue.rate_limit_exceeded.type);
    expect(errorTypeForStatus(400)).toBe(errorCatalogue.invalid_request_error.type);
    expect(errorTypeForStatus(502)).toBe("server_error");
    expect(errorTypeForStatus(503)).toBe("server_error");
  });

  test("an upstream 401 without a type reaches the client as authentication_error (HTTP and in-stream)", () => {
    expect(failureError(failure({ httpStatus: 401, phase: "http" }))).toMatchObject({
      status: 401,
      type: "authentication_error",
    });
    const inStream = failure({ phase: "sse", errorCode: "token_invalidated" });
    expect(statusForStreamError(inStream.errorCode, null)).toBe(401);
    expect(failureError(inStream)).toMatchObject({ status: 401, type: "authentication_error" });
  });

  test("an upstream type, when given, wins over the table", () => {
    expect(failureError(failure({ httpStatus: 401, errorType: "invalid_request_error" }))).toMatchObject({
      type: "invalid_request_error",
    });
  });
});
