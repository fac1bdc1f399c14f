import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { FakeClock } from "../../src/core/clock.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
const ACC = "chatgpt-s1";
beforeAll(async () => {
  env = await startProxyEnv({
    accounts: [{ id: "s1", chatgptAccountId: ACC }],
    env: { CODEX_LB_STREAM_IDLE_TIMEOUT_SECONDS: "1" },
  });
});
afterAll(async () => {
  await env.stop();
});

const codex = (
  headers: Record<string, string> = {},
  body: Record<string, unknown> = {},
  signal?: AbortSignal,
) =>
  fetch(`${env.gw.url}/backend-api/codex/responses`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "gpt-5.2", input: [{ role: "user", content: "hi" }], ...body }),
    signal,
  });

describe("streaming pass-through", () => {
  test("the first bytes reach the client before the upstream has finished", async () => {
    let finish!: () => void;
    const upstreamRest = new Promise<void>((r) => {
      finish = r;
    });
    env.fake.script(ACC, { kind: "slow", text: "slow answer here", rest: upstreamRest });
    const res = await codex();
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    const id = /"id":"(resp_fake\d+)"/.exec(first)![1]!;
    expect(first).toContain("response.created");
    // The upstream has not sent its end yet.
    expect(env.fake.finished).not.toContain(id);
    finish();
    let rest = "";
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      rest += new TextDecoder().decode(r.value);
    }
    expect(rest).toContain("response.completed");
    expect(env.fake.finished).toContain(id);
  });

  test("a client that disconnects aborts the upstream call and releases the lease", async () => {
    env.fake.script(ACC, { kind: "slow", text: "never read to the end", delayMs: 3000 });
    const ac = new AbortController();
    const res = await codex({}, {}, ac.signal);
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    const id = /"id":"(resp_fake\d+)"/.exec(first)![1]!;
    ac.abort();
    expect(await eventually(() => env.fake.aborted.includes(id))).toBe(true);
    expect(await eventually(() => env.inFlight("s1") === 0)).toBe(true);
    const row = await eventually(() =>
      env.db.selectFrom("request_logs").selectAll().where("response_id", "=", id).executeTakeFirst(),
    );
    expect(row?.status).toBe("cancelled");
  });

  test("a client slower than the upstream still gets every byte, in order (the body waits for it)", async () => {
    // About 24 MB of events (two 4 MB deltas, the text again in the closing events): far more than
    // the sockets buffer, so the gateway must wait for the client between writes.
    const text = Array.from({ length: 8 * 1024 }, (_, i) =>
      `${i.toString(36).padStart(4, "0")}`.repeat(256),
    ).join("");
    env.fake.script(ACC, { kind: "text", text });
    const res = await codex();
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let body = "";
    for (let reads = 0; ; reads++) {
      const r = await reader.read();
      if (r.done) break;
      body += dec.decode(r.value, { stream: true });
      if (reads % 8 === 0) await Bun.sleep(1);
    }
    const deltas = body
      .split("\n\n")
      .filter((b) => b.startsWith("event: response.output_text.delta\n"))
      .map((b) => (JSON.parse(b.slice(b.indexOf("data: ") + 6)) as { delta: string }).delta);
    expect(deltas.join("")).toBe(text);
    expect(body.endsWith("\n\n")).toBe(true);
    expect(body).toContain("event: response.completed");
  });

  test("an upstream silent past the idle timeout ends the stream with response.failed", async () => {
    // The idle deadline runs on the gateway's clock: a gateway of its own on a FakeClock, moved 1.1 s
    // at a time until the stream ends (no wall-clock wait).
    const clock = new FakeClock(Date.now());
    const idle = await startProxyEnv({
      clock,
      accounts: [{ id: "s1", chatgptAccountId: ACC }],
      env: { CODEX_LB_STREAM_IDLE_TIMEOUT_SECONDS: "1" },
    });
    try {
      idle.fake.script(ACC, { kind: "silent" });
      const res = await fetch(`${idle.gw.url}/backend-api/codex/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-5.2", input: [{ role: "user", content: "hi" }] }),
      });
      let ended = false;
      const read = res.text().finally(() => {
        ended = true;
      });
      for (let i = 0; i < 50 && !ended; i++) {
        await clock.advance(1_100);
        await Bun.sleep(5);
      }
      const text = await read;
      expect(text).toContain("event: response.failed");
      expect(text).toContain("stream_idle_timeout");
      expect(idle.inFlight("s1")).toBe(0);
    } finally {
      await idle.stop();
    }
  });

  test("an upstream error event after the first byte becomes response.failed; /v1 clients do not see codex.* events", async () => {
    env.fake.script(ACC, {
      kind: "truncated",
      text: "partial",
      thenError: { type: "server_error", code: "server_error", message: "kaboom" },
    });
    const res = await fetch(`${env.gw.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-5.2", input: "hi", stream: true }),
    });
    const text = await res.text();
    expect(text).not.toContain("event: error");
    expect(text).toContain("event: response.failed");
    expect(text).toContain("kaboom");

    env.fake.script(ACC, { kind: "text", text: "with limits", rateLimits: true });
    const v1 = await (
      await fetch(`${env.gw.url}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-5.2", input: "hi", stream: true }),
      })
    ).text();
    expect(v1).not.toContain("codex.rate_limits");
    env.fake.script(ACC, { kind: "text", text: "with limits", rateLimits: true });
    expect(await (await codex()).text()).toContain("codex.rate_limits");
  });

  test("live quota from codex.rate_limits and x-codex-* headers is recorded", async () => {
    const rows = await eventually(async () => {
      const r = await env.db
        .selectFrom("usage_snapshots")
        .selectAll()
        .where("account_id", "=", "s1")
        .execute();
      return r.length > 0 ? r : null;
    });
    expect(rows![0]!.window).toBe("primary");
    expect(rows![0]!.used_percent).toBe(12.5);
  });
});

describe("the upstream request", () => {
  test("SDK clients get the Codex persona; credentials, forwarded-for and hop-by-hop headers are not forwarded", async () => {
    env.fake.script(ACC, { kind: "text", text: "ok" });
    // A forwarding header from an untrusted peer makes the client remote, so it needs a gateway key
    // (and remote clients are served only with API-key authentication on).
    await fetch(`${env.gw.url}/api/settings/access`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ apiKeyAuthEnabled: true }),
    });
    const created = await fetch(`${env.gw.url}/api/api-keys`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "persona-test" }),
    });
    const { key } = (await created.json()) as { key: string };
    const res = await fetch(`${env.gw.url}/v1/responses`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${key}`,
        "user-agent": "OpenAI/JS 7.0",
        "x-stainless-os": "Linux",
        "x-forwarded-for": "10.1.2.3",
        "x-real-ip": "10.1.2.3",
        cookie: "a=b",
      },
      body: JSON.stringify({
        model: "gpt-5.2",
        input: [
          { role: "developer", content: "dev rules" },
          { role: "user", content: "q" },
        ],
        instructions: "base",
        temperature: 0.2,
        max_output_tokens: 50,
        metadata: { a: "b" },
        prompt_cache_key: "pck-1",
      }),
    });
    expect(res.status).toBe(200);
    await res.text();
    const { headers, body } = env.fake.requests.at(-1)!;
    expect(headers.get("authorization")).toBe(`Bearer ${env.tokens.get("s1")!.accessToken}`);
    expect(headers.get("chatgpt-account-id")).toBe(ACC);
    expect(headers.get("x-codex-installation-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(headers.get("user-agent")).toStartWith("codex_cli_rs/");
    expect(headers.get("originator")).toBe("codex_cli_rs");
    for (const h of ["x-stainless-os", "x-forwarded-for", "x-real-ip", "cookie"])
      expect(headers.get(h)).toBeNull();
    expect(JSON.stringify([...headers])).not.toContain(key);
    await fetch(`${env.gw.url}/api/settings/access`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ apiKeyAuthEnabled: false }),
    });
    expect(body.store).toBe(false);
    expect(body.stream).toBe(true);
    expect(body.instructions).toBe("base\ndev rules");
    expect(body.input).toEqual([{ role: "user", content: "q" }]);
    for (const f of ["temperature", "max_output_tokens", "metadata"]) expect(body[f]).toBeUndefined();
    expect(body.prompt_cache_key).toBe("pck-1");
  });

  test("Codex CLI's own headers are forwarded; the installation id is the account's, stable across requests", async () => {
    const ids: (string | null)[] = [];
    for (let i = 0; i < 2; i++) {
      env.fake.script(ACC, { kind: "text", text: "ok" });
      await (
        await codex({
          "user-agent": "codex_cli_rs/0.171.0 (Linux; x86_64)",
          originator: "codex_cli_rs",
          version: "0.171.0",
          "session-id": "sess-1",
          "x-codex-beta-features": "feat",
          "x-codex-installation-id": "client-own-id",
          "x-codex-turn-metadata": JSON.stringify({ installation_id: "client-own-id", turn_id: "t1" }),
        })
      ).text();
      const { headers } = env.fake.requests.at(-1)!;
      expect(headers.get("user-agent")).toBe("codex_cli_rs/0.171.0 (Linux; x86_64)");
      expect(headers.get("session-id")).toBe("sess-1");
      expect(headers.get("version")).toBe("0.171.0");
      expect(headers.get("x-codex-beta-features")).toBe("feat");
      expect(headers.get("x-codex-installation-id")).not.toBe("client-own-id");
      expect(JSON.parse(headers.get("x-codex-turn-metadata")!).installation_id).toBe(
        headers.get("x-codex-installation-id"),
      );
      ids.push(headers.get("x-codex-installation-id"));
    }
    expect(ids[0]).toBe(ids[1]);
  });
});

describe("live quota", () => {
  test("a response whose x-codex headers show the 5-hour window at 100% rate-limits the account until its reset", async () => {
    const live = await startProxyEnv({ accounts: [{ id: "q1" }, { id: "q2" }] });
    try {
      const resetSeconds = Math.floor(Date.now() / 1000) + 1800;
      live.fake.script("chatgpt-q1", {
        kind: "text",
        text: "last one",
        quotaHeaders: {
          "x-codex-primary-used-percent": "100",
          "x-codex-primary-window-minutes": "300",
          "x-codex-primary-reset-at": String(resetSeconds),
        },
      });
      const res = await fetch(`${live.gw.url}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-5.2", input: "hi" }),
      });
      expect(res.status).toBe(200);
      const snap = await eventually(async () => {
        const s = await live.gw.running.gateway.services.accounts.get("q1");
        return s?.status === "rate_limited" ? s : null;
      });
      expect(snap?.resetAt).toBe(resetSeconds * 1000);
      expect(snap?.primary?.usedPercent).toBe(100);
      // The next request goes to the other account without trying q1 first.
      live.fake.always("chatgpt-q2", { kind: "text", text: "from q2" });
      const next = await fetch(`${live.gw.url}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-5.2", input: "hi" }),
      });
      expect(next.status).toBe(200);
      expect(live.fake.requests.map((r) => r.chatgptAccountId)).toEqual(["chatgpt-q1", "chatgpt-q2"]);
    } finally {
      await live.stop();
    }
  });
});
