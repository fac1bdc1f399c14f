/**
 * What keeps a Codex stream alive and informed: an SSE comment while the upstream is silent, the
 * upstream's `x-codex-*` quota headers passed on, `GET /v1/models/{id}`, and the transport columns
 * of the request log.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { FakeClock } from "../../src/core/clock.ts";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
const ACC = "chatgpt-k1";
beforeAll(async () => {
  // A keepalive every 50 ms; the slow fake below is silent until the test has seen one.
  env = await startProxyEnv({ accounts: [{ id: "k1" }], env: { CODEX_LB_SSE_KEEPALIVE_SECONDS: "0.05" } });
});
afterAll(async () => {
  await env.stop();
});

const post = (path: string, body: Record<string, unknown>) =>
  fetch(`${env.gw.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-5.2", input: "hi", ...body }),
  });

describe("stream extras", () => {
  test("a silent upstream gets SSE keepalive comments in between, and the events still arrive whole", async () => {
    let finish!: () => void;
    const rest = new Promise<void>((r) => {
      finish = r;
    });
    env.fake.script(ACC, { kind: "slow", text: "after a pause", rest });
    const res = await post("/backend-api/codex/responses", {});
    // The upstream stays silent until a keepalive comment has reached the client; then it goes on.
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let text = "";
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      text += dec.decode(r.value, { stream: true });
      if (text.includes(": keepalive")) finish();
    }
    expect(text).toContain(": keepalive\n\n");
    const head = text.indexOf("response.output_text.delta");
    const pause = text.indexOf(": keepalive");
    const tail = text.indexOf("response.completed");
    expect(head).toBeLessThan(pause);
    expect(pause).toBeLessThan(tail);
    // Comments never split an event.
    for (const block of text.split("\n\n").filter((b) => b.includes(": keepalive"))) {
      expect(block).toBe(": keepalive");
    }
  });

  test("the keepalive runs on the gateway's clock: moving a fake clock sends it, no wall-clock wait", async () => {
    // A keepalive period of 120 s (past the test timeout) that the test never waits for: only the gateway's clock can send it.
    const clock = new FakeClock(Date.now());
    const own = await startProxyEnv({
      clock,
      accounts: [{ id: "k2", chatgptAccountId: "chatgpt-k2" }],
      env: { CODEX_LB_SSE_KEEPALIVE_SECONDS: "120", CODEX_LB_STREAM_IDLE_TIMEOUT_SECONDS: "3600" },
    });
    try {
      let finish!: () => void;
      const rest = new Promise<void>((r) => {
        finish = r;
      });
      own.fake.script("chatgpt-k2", { kind: "slow", text: "on the fake clock", rest });
      const res = await fetch(`${own.gw.url}/backend-api/codex/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-5.2", input: "hi" }),
      });
      const reader = res.body!.getReader();
      const dec = new TextDecoder();
      let text = dec.decode((await reader.read()).value, { stream: true });
      expect(text).toContain("response.output_text.delta");
      expect(text).not.toContain(": keepalive");
      // The next read waits for the keepalive; the clock moves until it has come.
      const next = reader.read();
      let got = false;
      void next.then(() => {
        got = true;
      });
      for (let i = 0; i < 20 && !got; i++) await clock.advance(121_000);
      text += dec.decode((await next).value, { stream: true });
      expect(text).toContain(": keepalive\n\n");
      finish();
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        text += dec.decode(r.value, { stream: true });
      }
      expect(text.indexOf(": keepalive")).toBeLessThan(text.indexOf("response.completed"));
    } finally {
      await own.stop();
    }
  });

  test("the openai SDK reads a stream with keepalive comments", async () => {
    // Silent for 75 ms of real time (one and a half keepalive periods) after the first delta.
    let finish!: () => void;
    const rest = new Promise<void>((r) => {
      finish = r;
    });
    env.fake.script(ACC, { kind: "slow", text: "sdk pause", rest });
    const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const stream = await client.responses.create({ model: "gpt-5.2", input: "hi", stream: true });
    let text = "";
    for await (const ev of stream) {
      if (ev.type !== "response.output_text.delta") continue;
      if (text === "") setTimeout(finish, 75);
      text += ev.delta;
    }
    expect(text).toBe("sdk pause");
  });

  test("x-codex-* quota headers of the upstream reach the client (stream and JSON)", async () => {
    const quota = {
      "x-codex-primary-used-percent": "33.5",
      "x-codex-primary-window-minutes": "300",
      "x-codex-secondary-used-percent": "7",
      "x-codex-credits-has-credits": "true",
    };
    env.fake.script(ACC, { kind: "text", text: "q", quotaHeaders: quota });
    const streamed = await post("/backend-api/codex/responses", {});
    await streamed.text();
    env.fake.script(ACC, { kind: "text", text: "q", quotaHeaders: quota });
    const json = await post("/v1/responses", {});
    await json.json();
    for (const res of [streamed, json]) {
      for (const [k, v] of Object.entries(quota)) expect(res.headers.get(k)).toBe(v);
    }
  });

  test("GET /v1/models/{id}: a listed model, or 404 model_not_found", async () => {
    const client = new OpenAI({ baseURL: `${env.gw.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const m = await client.models.retrieve("gpt-5.2-codex");
    expect(m).toMatchObject({ id: "gpt-5.2-codex", object: "model", owned_by: "codex-lb" });
    for (const id of ["nope", "internal-only"]) {
      const res = await fetch(`${env.gw.url}/v1/models/${id}`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("model_not_found");
    }
  });

  test("/api/request-logs shows the client and upstream transport", async () => {
    await eventually(async () => (await env.db.selectFrom("request_logs").selectAll().execute()).length >= 4);
    const page = (await (await fetch(`${env.gw.url}/api/request-logs?limit=10`)).json()) as {
      items: { transport: string; upstreamTransport: string | null }[];
    };
    expect(page.items.length).toBeGreaterThan(0);
    for (const i of page.items) expect(i).toMatchObject({ transport: "http", upstreamTransport: "http" });
  });
});
