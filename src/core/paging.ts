/**
 * The one paging shape of the admin API: a listing that can grow without bound (request logs, the
 * audit trail, sticky sessions, an account's events) takes `limit` and `offset` and answers
 * `{items, total, limit, offset}`, newest first. Small collections that are always shown whole
 * (accounts, API keys, sessions, firewall entries) come in one answer.
 *
 * @module
 */
import { type TSchema, t } from "elysia";

/** The `limit` and `offset` query parameters (`limit` up to `max`, `defaultLimit` when absent). */
export function pageQuery(defaultLimit: number, max: number) {
  return {
    limit: t.Optional(
      t.Numeric({
        minimum: 1,
        maximum: max,
        multipleOf: 1,
        default: defaultLimit,
        description: `Items per page (at most ${max})`,
      }),
    ),
    offset: t.Optional(
      t.Numeric({
        minimum: 0,
        maximum: 1_000_000_000,
        multipleOf: 1,
        default: 0,
        description: "Items to skip (newest first)",
      }),
    ),
  };
}

/** `{items, total, limit, offset}`: one page of `item`s and how many match in all. */
export function Page<T extends TSchema>(item: T) {
  return t.Object({
    items: t.Array(item),
    total: t.Integer({ description: "Items matching the filters, over all pages" }),
    limit: t.Integer(),
    offset: t.Integer(),
  });
}

export interface PageOf<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}
