import { describe, expect, test } from "bun:test";
import { eventJson, SseEventTooLarge, SseReader } from "../../src/upstream/sse.ts";

const enc = new TextEncoder();

describe("SseReader", () => {
  test("events split across chunks come out whole, with their raw text", () => {
    const r = new SseReader();
    expect(r.push(enc.encode('event: a\ndata: {"type":"a",'))).toEqual([]);
    const out = r.push(enc.encode('"x":1}\n\nevent: b\ndata: {"type":"b"}\n\n'));
    expect(out.map((e) => e.event)).toEqual(["a", "b"]);
    expect(eventJson(out[0]!)).toEqual({ type: "a", x: 1 });
    expect(out[1]!.raw).toBe('event: b\ndata: {"type":"b"}\n\n');
  });

  test("CRLF and CR separators, comments, multi-line data", () => {
    const r = new SseReader();
    const out = r.pushText(": keepalive\r\n\r\ndata: line1\r\ndata: line2\r\n\r\ndata: x\r\r");
    expect(out.map((e) => e.data)).toEqual(["line1\nline2", "x"]);
  });

  test("a CRLF split between chunks is one line break, not an event boundary", () => {
    const r = new SseReader();
    expect(r.pushText("event: a\r")).toEqual([]);
    expect(r.pushText("\ndata: 1\r")).toEqual([]);
    const out = r.pushText("\n\r\n");
    expect(out.map((e) => [e.event, e.data])).toEqual([["a", "1"]]);
  });

  test("a blank line split between chunks in every way ends the event there", () => {
    for (const [a, b] of [
      ["data: 1\n", "\ndata: 2\n\n"],
      ["data: 1\r", "\rdata: 2\n\n"],
      ["data: 1\r\n", "\r\ndata: 2\n\n"],
      ["data: 1\r\n\r", "\ndata: 2\n\n"],
      ["data: 1\n\r", "data: 2\n\n"],
    ]) {
      const r = new SseReader();
      const out = [...r.pushText(a!), ...r.pushText(b!)];
      expect(out.map((e) => e.data)).toEqual(["1", "2"]);
    }
  });

  test("a large event in many small chunks comes out whole; past 16 MiB it is refused", () => {
    const r = new SseReader();
    const text = "x".repeat(8192);
    expect(r.pushText('data: {"big":"')).toEqual([]);
    for (let i = 0; i < 256; i++) expect(r.pushText(text)).toEqual([]);
    const [ev] = r.pushText('"}\n\ndata: {"next":1}\n\n');
    expect((eventJson(ev!) as { big: string }).big.length).toBe(256 * 8192);
    const huge = new SseReader();
    const mib = "y".repeat(1024 * 1024);
    let thrown: unknown = null;
    try {
      for (let i = 0; i < 17; i++) huge.pushText(i === 0 ? `data: ${mib}` : mib);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(SseEventTooLarge);
  });

  test("a multi-byte character split between chunks survives", () => {
    const bytes = enc.encode('data: {"t":"héllo ✓"}\n\n');
    const r = new SseReader();
    const cut = bytes.indexOf(0xe2) + 1;
    expect(r.push(bytes.slice(0, cut))).toEqual([]);
    expect(eventJson(r.push(bytes.slice(cut))[0]!)).toEqual({ t: "héllo ✓" });
  });

  test("a final event without its blank line is returned by end()", () => {
    const r = new SseReader();
    expect(r.pushText("data: [DONE]")).toEqual([]);
    expect(r.end().map((e) => e.data)).toEqual(["[DONE]"]);
  });

  test("one byte at a time", () => {
    const text = 'event: response.created\ndata: {"type":"response.created"}\n\nevent: e2\ndata: {}\n\n';
    const r = new SseReader();
    const out = [...enc.encode(text)].flatMap((b) => r.push(new Uint8Array([b])));
    expect(out.map((e) => e.event)).toEqual(["response.created", "e2"]);
  });
});
