import { describe, expect, test } from "bun:test";
import {
  type DirectController,
  directSink,
  pushStream,
  SEND_AS_IS,
} from "../../src/runtime/bun/push-stream.ts";

/** A controller that records what the sink asks of it; `flushes` gives what each flush returns. */
function recorder(flushes: (Promise<number> | number)[] = []) {
  const calls: string[] = [];
  const c: DirectController = {
    write(bytes) {
      const n = typeof bytes === "string" ? bytes.length : bytes.byteLength;
      calls.push(`write ${n}`);
      return n;
    },
    flush() {
      calls.push("flush");
      return flushes.shift() ?? 0;
    },
  };
  return { c, calls };
}

const bytes = (n: number, fill = 97) => new Uint8Array(n).fill(fill);

describe("directSink", () => {
  test("a big write after smaller unflushed ones sends those first, then itself, in order", () => {
    const { c, calls } = recorder();
    const s = directSink(c);
    s.write(bytes(152));
    s.write(bytes(SEND_AS_IS));
    s.flush();
    expect(calls).toEqual(["write 152", "flush", `write ${SEND_AS_IS}`, "flush"]);
  });

  test("no extra flush for small writes, a big first write, or after a flush", () => {
    const { c, calls } = recorder();
    const s = directSink(c);
    s.write(bytes(SEND_AS_IS + 1));
    s.write(bytes(10));
    s.write(bytes(SEND_AS_IS - 1));
    s.flush();
    s.write(bytes(SEND_AS_IS));
    s.write(bytes(SEND_AS_IS));
    expect(calls).toEqual([
      `write ${SEND_AS_IS + 1}`,
      "write 10",
      `write ${SEND_AS_IS - 1}`,
      "flush",
      `write ${SEND_AS_IS}`,
      `write ${SEND_AS_IS}`,
    ]);
  });

  test("backpressure on the early flush is what the next flush waits for", async () => {
    let drained!: (n: number) => void;
    const full = new Promise<number>((r) => {
      drained = r;
    });
    const { c } = recorder([full]);
    const s = directSink(c);
    s.write(bytes(5));
    s.write(bytes(SEND_AS_IS));
    const wait = s.flush();
    expect(wait).toBe(full);
    drained(0);
    await wait;
    expect(s.flush()).toBeUndefined();
  });
});

test("a pushed body with small and big writes reaches the client byte for byte, in order", async () => {
  const parts = [
    bytes(152, 98),
    bytes(135_600, 99),
    bytes(7, 100),
    bytes(SEND_AS_IS * 2, 101),
    bytes(3, 102),
  ];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () =>
      new Response(
        pushStream(
          async (s) => {
            s.write(parts[0]!);
            s.write(parts[1]!);
            s.write(parts[2]!);
            await s.flush();
            await Bun.sleep(1);
            s.write(parts[3]!);
            s.write(parts[4]!);
            await s.flush();
          },
          () => {},
        ),
      ),
  });
  try {
    const got = await (await fetch(`http://127.0.0.1:${server.port}/`)).bytes();
    expect(Buffer.from(got).equals(Buffer.concat(parts))).toBe(true);
  } finally {
    server.stop(true);
  }
});
