/**
 * `bun scripts/build-event-scan.ts`: assembles `src/proxy/event-scan.wat` (the byte pass-through's
 * bulk framing scan) with wabt and writes its bytes, base64, into `src/proxy/event-scan-wasm.ts`,
 * so the gateway (and its compiled binary) embeds them without a build step or a runtime
 * dependency. `tests/proxy/event-scan.test.ts` checks the embedded bytes are the assembled source.
 *
 * @module
 */
import { assembleEventScan, EVENT_SCAN_TS } from "./event-scan-source.ts";

const bytes = await assembleEventScan();
const base64 = Buffer.from(bytes).toString("base64");
await Bun.write(
  EVENT_SCAN_TS,
  `/**
 * The bytes of \`event-scan.wat\`, assembled by \`bun scripts/build-event-scan.ts\` (do not edit).
 *
 * @module
 */
export const EVENT_SCAN_WASM =
  "${base64}";
`,
);
console.log(`wrote ${EVENT_SCAN_TS} (${bytes.length} bytes of WebAssembly)`);
