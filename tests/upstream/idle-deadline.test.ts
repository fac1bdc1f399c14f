/**
 * The idle deadline shared by an upstream HTTP stream's reads and an upstream socket's turn
 * (src/upstream/idle-deadline.ts): one timer over many waits, expiring only for a wait that lasted
 * the whole period; and a turn whose socket closes leaves no timer behind. On the fake clock.
 */
import { expect, test } from "bun:test";
import { FakeClock } from "../../src/core/clock.ts";
import { IdleDeadline } from "../../src/upstream/idle-deadline.ts";
import { WsTurnEvents } from "../../src/upstream/websocket.ts";

test("one timer for many short waits; it expires only for a wait that lasts the period", async () => {
  const clock = new FakeClock();
  let expired = 0;
  const deadline = new IdleDeadline(1000, clock, () => expired++);
  for (let i = 0; i < 10; i++) {
    deadline.begin();
    await clock.advance(300);
    deadline.end();
  }
  // 3 s of waits, none of them 1 s long: nothing expired, one timer at a time.
  expect(expired).toBe(0);
  expect(clock.pending).toBe(1);
  deadline.begin();
  await clock.advance(999);
  expect(expired).toBe(0);
  await clock.advance(1);
  expect(expired).toBe(1);
  deadline.disarm();
  expect(clock.pending).toBe(0);
});

test("a turn whose socket closes with no wait pending leaves no idle timer", async () => {
  const clock = new FakeClock();
  const turn = new WsTurnEvents(60_000, () => {}, clock);
  const waiting = turn.next();
  const ev = { event: "response.output_text.delta", data: "{}", raw: "event: x\ndata: {}\n\n" };
  turn.push(ev);
  expect(await waiting).toEqual([ev]);
  // The wait is over; its timer stays for the next one. The socket closes before any.
  expect(clock.pending).toBe(1);
  turn.end();
  expect(clock.pending).toBe(0);
  expect(await turn.next()).toBeNull();
});
