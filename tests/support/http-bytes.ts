/**
 * Answer bytes for raw HTTP/1.1 test servers: a chunk in chunked framing, and a gzip stream cut
 * where it was sync-flushed (what a streaming upstream sends: its first part decodes on its own).
 *
 * @module
 */
import * as zlib from "node:zlib";

/** `b` as one chunk of a chunked body (size line, bytes, CRLF). */
export function chunkOf(b: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from("\r\n")]);
}

/**
 * One gzip stream of `first` then `rest`, sync-flushed after `first`: its two parts, the first of
 * which decodes to `first` alone.
 */
export async function gzipInTwo(first: string, rest: string): Promise<[Buffer, Buffer]> {
  const gz = zlib.createGzip();
  const out: Buffer[] = [];
  gz.on("data", (b: Buffer) => out.push(b));
  gz.write(first);
  await new Promise<void>((r) => gz.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
  const part1 = Buffer.concat(out.splice(0));
  const ended = new Promise<void>((r) => gz.on("end", () => r()));
  gz.end(rest);
  await ended;
  return [part1, Buffer.concat(out)];
}
