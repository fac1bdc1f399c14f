/**
 * Request-log insert cost as the table grows: `bun run scripts/bench-log-insert.ts [maxRows]`
 * (default 1,000,000). A real SQLite store file; the table is filled in steps with rows spread over
 * the last 30 days (random filler ids), and at each step the request-log
 * writer writes `BATCHES` batches of 200 realistic rows (API key set, so the usage triggers run;
 * response id set, so the owner trigger runs). Prints µs per row (median and max over the batches)
 * and the size of the response-owner table; the goal is a flat line from 0 to 1,000,000 rows.
 *
 * The writer writes as the gateway's does: synchronous statements on the store's SQLite connection;
 * `--kysely` writes through a Kysely transaction instead (as on PostgreSQL). `--old` adds back the
 * index over every row's response id that earlier versions kept, to show what it cost.
 * The measured rows get time-ordered request ids (UUIDv7), as the gateway makes them
 * (`Random.timeOrderedId`, src/core/clock.ts); `--random-ids` gives them random UUIDs instead (as
 * when every client sends its own random `x-request-id`): random keys cost a B-tree leaf page
 * written per row once their index outgrows a batch, time-ordered ones share the newest leaf.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { createApiKey } from "../src/access/api-keys/repository.ts";
import { systemRandom } from "../src/core/clock.ts";
import type { EpochMs } from "../src/core/types.ts";
import { RequestLogWriter } from "../src/request-logs/writer.ts";
import { openMigratedStore } from "../src/store/store.ts";

const max = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const old = process.argv.includes("--old");
const viaKysely = process.argv.includes("--kysely");
const timeOrdered = !process.argv.includes("--random-ids");
const STEPS = 4;
const BATCHES = 20;
const DAY = 86_400_000;

const dir = mkdtempSync(join(tmpdir(), "codex-lb-bench-logs-"));
const store = await openMigratedStore({ kind: "sqlite", path: join(dir, "store.db") });
try {
  const now = Date.now();
  if (old) await sql`create index idx_logs_response_id on request_logs (response_id)`.execute(store.db);
  await store.db
    .insertInto("accounts")
    .values({
      id: "acc",
      chatgpt_account_id: "chatgpt-acc",
      email: "a@example.test",
      plan_type: "pro",
      codex_installation_id: "00000000-0000-4000-8000-000000000000",
      created_at: now,
      updated_at: now,
    })
    .execute();
  const { record } = await createApiKey(store.db, { name: "bench" }, now - 30 * DAY);
  const writer = new RequestLogWriter(store.db, { error: (o, m) => console.error(m, o) }, 60_000, {
    ...(viaKysely ? {} : { sqlite: store.sqlite }),
  });

  /** Adds `n` filler rows spread over the 30 days before `now` (one statement per 50k rows). */
  const fill = async (n: number, offset: number) => {
    for (let done = 0; done < n; done += 50_000) {
      const k = Math.min(50_000, n - done);
      await sql`
        with recursive seq(i) as (select 0 union all select i + 1 from seq where i < ${k - 1})
        insert into request_logs (requested_at, request_id, account_id, api_key_id, model, endpoint, status,
          http_status, input_tokens, output_tokens, latency_ms, response_id, session_key)
        select ${now - 30 * DAY} + ((${offset + done} + i) * ${Math.floor((30 * DAY) / max)}) % ${30 * DAY},
          lower(hex(randomblob(16))), 'acc', ${record.id}, 'gpt-5.2', '/backend-api/codex/responses',
          'success', 200, 1000, 300, 900, 'resp_' || lower(hex(randomblob(16))), 'sess-' || (i % 97)
        from seq`.execute(store.db);
    }
  };

  let seq = 0;
  // The measured rows come after the filler, a few minutes apart per step (so the writer prunes
  // response owners as it does in service, once a minute of log time).
  let clock = now;
  const measure = async () => {
    clock += 5 * 60_000;
    const perRow: number[] = [];
    const cpuPerRow: number[] = [];
    for (let b = 0; b < BATCHES; b++) {
      for (let i = 0; i < 200; i++) {
        seq++;
        writer.add({
          requested_at: clock + seq,
          request_id: timeOrdered
            ? systemRandom.timeOrderedId((clock + seq) as EpochMs)
            : crypto.randomUUID(),
          account_id: "acc",
          api_key_id: record.id,
          model: "gpt-5.2",
          endpoint: "/backend-api/codex/responses",
          client: "codex_cli_rs/0.171.0",
          client_ip: "127.0.0.1",
          status: "success",
          http_status: 200,
          error_code: null,
          error_message: null,
          input_tokens: 1200,
          cached_input_tokens: 800,
          output_tokens: 300,
          reasoning_tokens: 64,
          cost_usd: 0.0042,
          latency_ms: 950,
          ttfb_ms: 310,
          response_id: `resp_${crypto.randomUUID().replace(/-/g, "")}`,
          session_key: `sess-${seq % 97}`,
          reasoning_effort: "medium",
        });
      }
      const t = performance.now();
      const c = process.cpuUsage();
      await writer.flush();
      const used = process.cpuUsage(c);
      perRow.push(((performance.now() - t) * 1000) / 200);
      cpuPerRow.push((used.user + used.system) / 200);
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    return { median: med(perRow), max: Math.max(...perRow), cpu: med(cpuPerRow) };
  };

  console.log(
    `| rows in table | CPU µs per row (median) | wall µs per row (median) | wall µs per row (max batch) | response owners |`,
  );
  console.log(
    `|---------------|-------------------------|--------------------------|-----------------------------|-----------------|`,
  );
  let filled = 0;
  for (let step = 0; step <= STEPS; step++) {
    const target = Math.round((max * step) / STEPS);
    if (target > filled) {
      await fill(target - filled, filled);
      filled = target;
      // The bulk fill's WAL is folded back first: its checkpoint is not the cost of a row.
      await sql`pragma wal_checkpoint(truncate)`.execute(store.db);
    }
    const r = await measure();
    const owners = await store.db
      .selectFrom("response_owners")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    console.log(
      `| ${String(target).padStart(13)} | ${r.cpu.toFixed(1).padStart(23)} | ${r.median.toFixed(1).padStart(24)} | ${r.max.toFixed(1).padStart(27)} | ${String(owners.n).padStart(15)} |`,
    );
  }
  await writer.stop();
  console.log(
    `\n${viaKysely ? "through Kysely" : "synchronous statements"}, ${timeOrdered ? "time-ordered" : "random"} request ids, ${old ? "with" : "without"} the old idx_logs_response_id index; SQLite file in ${dir}`,
  );
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
