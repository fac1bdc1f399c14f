/**
 * `bun scripts/bench-body.ts`: what reading and checking a proxy request's body costs the gateway,
 * by body size, apart from everything else on the request path. A server process (127.0.0.1 only)
 * answers each variant's route; a client process posts the bench's bodies (the short answer's and
 * the ~256 KB long Codex history of `bun run bench`) and reads the server's own CPU time per request
 * (`process.cpuUsage` on the server, so a busy shared machine inflates it less than wall time).
 * Bodies: the short one, the bench's history, the same as the Codex CLI sends it (nothing to
 * change), a history of texts full of escapes, and one shaped like a Codex CLI session.
 * Variants, interleaved `BODY_ROUNDS` (default 5) times, `BODY_REQUESTS` (default 400) each:
 * - `pass-through`: the body read and posted on to a sink, as the bench's pass-through does;
 * - `guard only`: the body read as text under the gateway's body guard (size limit, deadline), as
 *   the proxy pipeline reads it (`BodyGuard.readText`);
 * - `route`: what the Responses routes do with a body (`readResponses` in src/proxy/serve.ts):
 *   parse, check, build the upstream payload and its text, and post that to the sink.
 * The sink runs in the server process (its CPU counts, as the pass-through's does).
 * Prints the median CPU µs per request of each, and each one's extra for the big body over the short.
 *
 * @module
 */
import { BodyGuard } from "../src/core/body-guard.ts";
import { systemClock } from "../src/core/clock.ts";
import { readResponses } from "../src/proxy/serve.ts";
import { envNumber } from "./bench-env.ts";
import { bigBody, SHORT_BODY as SHORT } from "./bench-servers.ts";

const BIG = bigBody();

/** The same history as the Codex CLI sends it: streamed, not stored (nothing to change). */
const BIG_CODEX = JSON.stringify({ ...JSON.parse(BIG), store: false, stream: true });
/** A ~280 KB Codex history whose texts have escapes (quotes, backslashes, a newline every 12 characters). */
const ESCAPED = JSON.stringify({
  model: "gpt-5.2",
  instructions: "You are a coding agent.",
  store: false,
  stream: true,
  input: Array.from({ length: 128 }, (_, i) => ({
    type: "message",
    role: i % 2 ? "assistant" : "user",
    content: [
      {
        type: i % 2 ? "output_text" : "input_text",
        text: `line "quoted" \\ path\n\tindent ${"abc def ghi\n".repeat(160)}`,
      },
    ],
  })),
});
/**
 * A ~230 KB history shaped like a Codex CLI session: a developer message (joined into
 * `instructions`), then 60 turns of a user message, a reasoning item (encrypted content), a shell
 * call (JSON arguments), its output (code with quotes and newlines) and an answer.
 */
function codexLike(turns: number): string {
  const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const b64 = (n: number, seed: number) => {
    let s = "";
    let x = seed;
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      s += letters[x % 64];
    }
    return s;
  };
  const code = (lines: number, i: number) =>
    Array.from({ length: lines }, (_, l) => `  const v${l} = "value ${i}.${l}"; // 'quotes' and \\path`).join(
      "\n",
    );
  const input: unknown[] = [
    {
      type: "message",
      role: "developer",
      content: [{ type: "input_text", text: "<permissions>\nsandbox\n</permissions>" }],
    },
  ];
  for (let i = 0; i < turns; i++) {
    const callId = `call_${b64(24, i + 7)}`;
    input.push(
      {
        type: "message",
        role: "user",
        content: [{ type: "input_text", text: `Fix the test in src/m${i}.ts.` }],
      },
      {
        type: "reasoning",
        summary: [{ type: "summary_text", text: `**Module ${i}**\n\nLooking.` }],
        encrypted_content: b64(1200, i),
      },
      {
        type: "function_call",
        name: "shell",
        arguments: JSON.stringify({ command: ["bash", "-lc", `sed -n 1,40p src/m${i}.ts`] }),
        call_id: callId,
      },
      {
        type: "function_call_output",
        call_id: callId,
        output: JSON.stringify({ output: code(20, i), metadata: { exit_code: 0 } }),
      },
      {
        type: "message",
        role: "assistant",
        content: [{ type: "output_text", text: `Changed:\n\n\`\`\`ts\n${code(4, i)}\n\`\`\`` }],
      },
    );
  }
  return JSON.stringify({
    model: "gpt-5.2",
    instructions: "You are Codex.\n".repeat(100),
    input,
    tools: [],
    store: false,
    stream: true,
    include: ["reasoning.encrypted_content"],
    prompt_cache_key: "k",
  });
}
const CODEX_LIKE = codexLike(60);

const guard = new BodyGuard({
  maxBytes: 64 * 1024 * 1024,
  timeoutMs: 60_000,
  maxPendingPerAddress: 1e6,
  timers: systemClock,
});
/** The body's text as the pipeline's `read` step gets it (src/app/app.ts, src/proxy/pipeline.ts). */
const guardedBody = (request: Request) => guard.readText(request, performance.now());

const sink: unknown[] = [];
const keep = (v: unknown) => {
  sink[0] = v;
};

/** Where bodies go (a sink that reads them and answers "ok"), like the gateway's upstream. */
let sinkUrl = "";
const post = async (body: BodyInit) => {
  const res = await fetch(sinkUrl, { method: "POST", headers: { "content-type": "application/json" }, body });
  keep(await res.text());
};

const variants: Record<string, (request: Request) => Promise<void>> = {
  // What scripts/bench-servers.ts's pass-through does with a body.
  "pass-through": async (request) => post(await request.text()),
  "guard only": async (request) => keep(await guardedBody(request)),
  route: async (request) => {
    const spec = readResponses("codex", await guardedBody(request));
    // What attempt.ts hands fetch (src/upstream/client.ts makes a function's bytes at the call).
    const body = spec.payloadBody ?? spec.payloadText ?? JSON.stringify(spec.payload);
    await post((typeof body === "function" ? body() : body) as BodyInit);
  },
};

async function server(): Promise<void> {
  const sink = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    maxRequestBodySize: 2 ** 30,
    fetch: async (request) => new Response((await request.arrayBuffer()).byteLength > 0 ? "ok" : "empty"),
  });
  sinkUrl = `http://127.0.0.1:${sink.port}/`;
  const srv = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    maxRequestBodySize: 2 ** 30,
    fetch: async (request) => {
      const name = decodeURIComponent(new URL(request.url).pathname.slice(1));
      if (name === "cpu") {
        const c = process.cpuUsage();
        return new Response(String(c.user + c.system));
      }
      await variants[name]!(request);
      return new Response("ok");
    },
  });
  // Exits cleanly on SIGTERM, so `bun --cpu-prof` writes its profile.
  process.on("SIGTERM", () => process.exit(0));
  console.log(`PORT ${srv.port}`);
}

async function client(): Promise<void> {
  const proc = Bun.spawn(["bun", import.meta.path, "server"], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let buf = "";
  while (!/PORT (\d+)/.test(buf)) {
    const r = await reader.read();
    if (r.done) throw new Error("server exited");
    buf += new TextDecoder().decode(r.value);
  }
  const base = `http://127.0.0.1:${/PORT (\d+)/.exec(buf)![1]}`;
  const rounds = envNumber("BODY_ROUNDS", 5);
  const requests = envNumber("BODY_REQUESTS", 400);
  const bodies = {
    short: SHORT,
    [`${Math.round(BIG.length / 1024)} KB`]: BIG,
    "Codex CLI's": BIG_CODEX,
    escaped: ESCAPED,
    "Codex-like": CODEX_LIKE,
  };
  const cpu = async () => Number(await (await fetch(`${base}/cpu`)).text());
  const run = async (variant: string, body: string, n: number) => {
    const url = `${base}/${encodeURIComponent(variant)}`;
    const headers = { "content-type": "application/json" };
    let next = 0;
    const c0 = await cpu();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next++ < n) {
          const res = await fetch(url, { method: "POST", headers, body });
          if (res.status !== 200) throw new Error(`${variant}: ${res.status} ${await res.text()}`);
          await res.text();
        }
      }),
    );
    return ((await cpu()) - c0) / n;
  };
  const cells = new Map<string, number[]>();
  for (const v of Object.keys(variants)) for (const b of Object.values(bodies)) await run(v, b, 100);
  for (let r = 0; r < rounds; r++) {
    for (const v of Object.keys(variants)) {
      for (const [name, b] of Object.entries(bodies)) {
        const key = `${v}|${name}`;
        cells.set(key, [...(cells.get(key) ?? []), await run(v, b, requests)]);
      }
    }
  }
  proc.kill();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const names = Object.keys(bodies);
  const header = [
    "variant",
    ...names.map((n) => `${n} body µs/req`),
    ...names.slice(1).map((n) => `extra, ${n}`),
  ];
  const rows = [header];
  for (const v of Object.keys(variants)) {
    const m = names.map((n) => median(cells.get(`${v}|${n}`)!));
    rows.push([v, ...m.map((x) => x.toFixed(0)), ...m.slice(1).map((x) => (x - m[0]!).toFixed(0))]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(`| ${r.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`);
  console.log(
    `\n${rounds} rounds × ${requests} requests per cell, 4 connections; server CPU from process.cpuUsage`,
  );
}

if (process.argv[2] === "server") await server();
else await client();
