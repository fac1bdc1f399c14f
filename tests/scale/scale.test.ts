/**
 * Three gateway processes on one PostgreSQL database behave as one gateway: one refresh per token
 * across them, an account taken out by one is out on all, sticky sessions cross replicas, a key
 * revoked on one is refused by another within a second, and the leader's background work moves to
 * another replica within seconds of a `kill -9`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { FakeIdentity } from "../fakes/jwt.ts";
import { authJsonOf, identity } from "../support/accounts.ts";
import { type Replica, startCluster, type TestCluster } from "../support/cluster.ts";

let c: TestCluster;
/** Refresh calls the fake auth server received, per identity email; `reused` for unknown tokens. */
const refreshes = new Map<string, number>();
let reused = 0;
/** Identities whose refresh answers 401 token_expired. */
const expired = new Set<string>();

beforeAll(async () => {
  c = await startCluster({
    replicas: 3,
    // The default log flush: a response owner stays in a replica's write queue for up to 250 ms.
    // The stream cap is streams.test.ts's subject: here it must not turn a slow (loaded) machine's
    // bursts into refusals.
    env: {
      CODEX_LB_REFRESH_CHECK_INTERVAL_SECONDS: "1",
      CODEX_LB_REQUEST_LOG_FLUSH_MS: "250",
      CODEX_LB_ACCOUNT_MAX_STREAMS: "100",
      CODEX_LB_ACCOUNT_QUEUE_WAIT_MS: "10000",
    },
  });
  c.auth.state.refreshDelayMs = 100;
  c.auth.state.onRefresh = (_rt, who) => {
    if (!who) {
      reused++;
      return undefined;
    }
    refreshes.set(who.email, (refreshes.get(who.email) ?? 0) + 1);
    if (expired.has(who.email))
      return Response.json({ error: { code: "token_expired", message: "fake: expired" } }, { status: 401 });
    return undefined;
  };
}, 90_000);
afterAll(async () => {
  await c?.stop();
}, 30_000);

const replica = (i: number): Replica => c.replicas[i % c.replicas.length] as Replica;

const ask = (r: Replica, headers: Record<string, string> = {}) =>
  fetch(`${r.url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "gpt-5.2", input: "hi" }),
  });

async function importOn(r: Replica, who: FakeIdentity, expiresInSeconds: number): Promise<string> {
  const bundle = c.auth.issue(who, { expiresInSeconds });
  const res = await fetch(`${r.url}/api/accounts/import`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(authJsonOf(bundle)),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { accountId: string }).accountId;
}

async function statusOn(r: Replica, id: string): Promise<string> {
  const res = await fetch(`${r.url}/api/accounts/${encodeURIComponent(id)}`);
  return ((await res.json()) as { status: string }).status;
}

async function pause(r: Replica, id: string): Promise<void> {
  const res = await fetch(`${r.url}/api/accounts/${encodeURIComponent(id)}/pause`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  expect(res.status).toBe(200);
}

const upstreamCallsOf = (who: FakeIdentity) =>
  c.fake.requests.filter((r) => r.chatgptAccountId === who.chatgptAccountId).length;

describe("three replicas on one PostgreSQL", () => {
  test("/api/replicas lists the three, one of them the leader, the same answer everywhere", async () => {
    const answers = await Promise.all(
      c.replicas.map(
        async (r) => (await (await fetch(`${r.url}/api/replicas`)).json()) as Record<string, unknown>,
      ),
    );
    const leaders = new Set(answers.map((a) => a.leader));
    expect(leaders.size).toBe(1);
    expect([...leaders][0]).toEqual(expect.any(String));
    for (const a of answers) {
      expect(a.database).toBe("postgres");
      expect((a.replicas as unknown[]).length).toBe(3);
    }
    expect(new Set(answers.map((a) => a.self)).size).toBe(3);
  }, 30_000);

  test("a refresh-time token_expired seen by one replica takes the account out on all three", async () => {
    const who = identity("expired");
    expired.add(who.email);
    const id = await importOn(replica(0), who, 60);
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(replica(i))));
    for (const res of answers) expect(res.status).not.toBe(200);
    expect(refreshes.get(who.email)).toBe(1);
    expect(reused).toBe(0);
    expect(upstreamCallsOf(who)).toBe(0);
    for (const r of c.replicas) expect(await statusOn(r, id)).toBe("reauth_required");
    // Later requests on any replica never pick it.
    const later = await Promise.all(Array.from({ length: 6 }, (_, i) => ask(replica(i))));
    for (const res of later) expect(res.status).not.toBe(200);
    expect(upstreamCallsOf(who)).toBe(0);
    expect(refreshes.get(who.email)).toBe(1);
  }, 30_000);

  test("60 concurrent requests over the three replicas: exactly one refresh per account, none reused", async () => {
    const people = [identity("burst"), identity("burst"), identity("burst")];
    for (const p of people) await importOn(replica(1), p, 60);
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => ask(replica(i))));
    const statuses = answers.map((r) => r.status);
    if (statuses.some((s) => s !== 200))
      console.log(await Promise.all(answers.filter((r) => r.status !== 200).map((r) => r.text())));
    expect(statuses).toEqual(Array(60).fill(200));
    for (const p of people) expect(refreshes.get(p.email)).toBe(1);
    expect(reused).toBe(0);
    expect(people.map(upstreamCallsOf).reduce((a, b) => a + b, 0)).toBe(60);
  }, 30_000);

  test("a session-id turn on replica A continues on the same account through replicas B and C", async () => {
    for (let s = 0; s < 4; s++) {
      const session = { session_id: `scale-session-${s}-${crypto.randomUUID()}` };
      const used: (string | null)[] = [];
      for (const i of [0, 1, 2, 1, 0]) {
        const before = c.fake.requests.length;
        expect((await ask(replica(i), session)).status).toBe(200);
        used.push(c.fake.requests[before]?.chatgptAccountId ?? null);
      }
      expect(new Set(used).size).toBe(1);
      expect(used[0]).not.toBeNull();
    }
  }, 30_000);

  test("previous_response_id of an answer from replica A, sent at once to replica B, stays on its account", async () => {
    for (let s = 0; s < 4; s++) {
      const before = c.fake.requests.length;
      const first = await ask(replica(0));
      expect(first.status).toBe(200);
      const { id } = (await first.json()) as { id: string };
      const owner = c.fake.requests[before]?.chatgptAccountId;
      const next = await fetch(`${replica(1).url}/v1/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-5.2", input: "and then?", previous_response_id: id }),
      });
      // Over HTTP the (fake) backend keeps no responses: it answers 400 previous_response_not_found,
      // but what matters here is the account the turn was sent with.
      await next.text();
      expect(c.fake.requests[before + 1]?.body.previous_response_id).toBe(id);
      expect(c.fake.requests[before + 1]?.chatgptAccountId).toBe(owner);
    }
  }, 30_000);

  test("an account paused through replica A gets no request from any replica 0.3 s later", async () => {
    const who = identity("paused");
    const id = await importOn(replica(0), who, 3600);
    await pause(replica(0), id);
    // Well within the 1 s every replica's caches must follow a change made on another.
    await Bun.sleep(300);
    const before = upstreamCallsOf(who);
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => ask(replica(i))));
    expect(answers.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(upstreamCallsOf(who)).toBe(before);
  }, 30_000);

  test("a key revoked through replica A is refused by replica C within 1 s", async () => {
    await importOn(replica(0), identity("keyed"), 3600);
    const created = await fetch(`${replica(0).url}/api/api-keys`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "scale" }),
    });
    expect(created.status).toBe(201);
    const { id, key } = (await created.json()) as { id: string; key: string };
    const auth = { authorization: `Bearer ${key}` };
    // C has the key's state cached.
    expect((await ask(replica(2), auth)).status).toBe(200);
    expect((await ask(replica(2), auth)).status).toBe(200);
    const revoked = await fetch(`${replica(0).url}/api/api-keys/${id}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ isActive: false }),
    });
    expect(revoked.status).toBe(200);
    const t0 = performance.now();
    let status = 200;
    for (let i = 0; i < 40 && status !== 401; i++) {
      status = (await ask(replica(2), auth)).status;
      if (status !== 401) await Bun.sleep(25);
    }
    const elapsed = performance.now() - t0;
    expect(status).toBe(401);
    expect(elapsed).toBeLessThan(1000);
  }, 30_000);

  test("kill -9 of the leader: another replica leads and runs the background refresh within 10 s", async () => {
    const info = (await (await fetch(`${replica(0).url}/api/replicas`)).json()) as { leader: string };
    let leader: Replica | undefined;
    for (const r of c.replicas) {
      const a = (await (await fetch(`${r.url}/api/replicas`)).json()) as { self: string };
      if (a.self === info.leader) leader = r;
    }
    if (!leader) throw new Error("no replica answered as the leader");
    const survivor = c.replicas.find((r) => r !== leader) as Replica;
    leader.child.proc.kill(9);
    await leader.child.proc.exited;
    const killedAt = performance.now();
    // An idle account that the background pass (leader only) must refresh; no request touches it.
    const who = identity("background");
    await importOn(survivor, who, 60);
    let refreshedAfter = -1;
    while (performance.now() - killedAt < 15_000) {
      if ((refreshes.get(who.email) ?? 0) > 0) {
        refreshedAfter = performance.now() - killedAt;
        break;
      }
      await Bun.sleep(100);
    }
    expect(refreshedAfter).toBeGreaterThan(0);
    expect(refreshedAfter).toBeLessThan(10_000);
    expect(refreshes.get(who.email)).toBe(1);
    const after = (await (await fetch(`${survivor.url}/api/replicas`)).json()) as {
      leader: string;
      replicas: { id: string }[];
    };
    expect(after.leader).not.toBe(info.leader);
    expect(after.replicas.map((r) => r.id)).not.toContain(info.leader);
  }, 30_000);
});
