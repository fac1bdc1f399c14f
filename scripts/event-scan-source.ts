/**
 * The byte pass-through's framing scan as source (`src/proxy/event-scan.wat`), assembled with wabt:
 * shared by `scripts/build-event-scan.ts` (writes the embedded bytes) and its test (checks them).
 *
 * @module
 */
import wabtInit from "wabt";

const root = new URL("../", import.meta.url).pathname;
export const EVENT_SCAN_WAT = `${root}src/proxy/event-scan.wat`;
export const EVENT_SCAN_TS = `${root}src/proxy/event-scan-wasm.ts`;

/** The module `event-scan.wat` assembles to. */
export async function assembleEventScan(): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const module = wabt.parseWat("event-scan.wat", await Bun.file(EVENT_SCAN_WAT).text(), { simd: true });
  try {
    module.validate();
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}
