/** GET /api/accounts shows each account's health next to its status: backoff, streak, load, usability. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { eventually, type ProxyEnv, startProxyEnv } from "../support/proxy-env.ts";

let env: ProxyEnv;
beforeAll(async () => {
  env = await startProxyEnv({ accounts: [{ id: "h1" }, { id: "h2" }] });
});
afterAll(async () => {
  await env.stop();
});

type Health = {
  usable: boolean;
  backoffUntil: number | null;
  failureStreak: number;
  inFlight: number;
  queued: number;
};
async function health(): Promise<Record<string, Health & { status: string; routingPolicy: string }>> {
  const res = await fetch(`${env.gw.url}/api/accounts`);
  const { accounts } = (await res.json()) as {
    accounts: { id: string; status: string; routingPolicy: string; health: Health }[];
  };
  return Object.fromEntries(
    accounts.map((a) => [a.id, { ...a.health, status: a.status, routingPolicy: a.routingPolicy }]),
  );
}

test("an idle, healthy account", async () => {
  expect((await health()).h1).toEqual({
    usable: true,
    backoffUntil: null,
    failureStreak: 0,
    inFlight: 0,
    queued: 0,
    status: "active",
    routingPolicy: "normal",
  });
});

test("a stream in flight shows on its account while it runs", async () => {
  let finish!: () => void;
  const rest = new Promise<void>((r) => {
    finish = r;
  });
  env.fake.script("chatgpt-h1", { kind: "slow", text: "slow answer", rest });
  const pending = fetch(`${env.gw.url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-5.2", input: "hi", stream: true }),
  });
  expect(await eventually(async () => (await health()).h1?.inFlight === 1)).toBe(true);
  finish();
  await (await pending).text();
  expect(await eventually(async () => (await health()).h1?.inFlight === 0)).toBe(true);
});

test("an account in backoff is shown with its end and as not usable", async () => {
  const until = Date.now() + 60_000;
  const { services } = env.gw.running.gateway;
  for (let i = 0; i < 3; i++) {
    await services.apply(
      [{ type: "account.cooldown", accountId: "h2", until: i === 2 ? until : Date.now() }],
      {
        source: "test",
      },
    );
  }
  const h2 = (await health()).h2!;
  expect(h2).toMatchObject({ status: "active", usable: false, backoffUntil: until, failureStreak: 3 });
});
