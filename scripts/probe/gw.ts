import { heapStats } from "bun:jsc";
import { writeFileSync } from "node:fs";
import { serveGateway } from "../bench-servers.ts";
let k = 0;
process.on("SIGUSR2", () => {
  Bun.gc(true);
  const h = heapStats();
  const m = process.memoryUsage();
  console.error(JSON.stringify({ heapSize: h.heapSize, extraMemorySize: h.extraMemorySize, objectCount: h.objectCount, rss: m.rss }));
  if (process.env.SNAP) writeFileSync(`/tmp/memx/snap${k++}.json`, (Bun as any).generateHeapSnapshot("v8"));
});
await serveGateway(process.argv[2]!, 1);
