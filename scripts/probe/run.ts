import { readFileSync } from "node:fs";
const N = Number(process.env.N ?? 1000);
const ROOT = `${import.meta.dir}/../..`;
async function spawn(cmd: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "inherit", cwd: ROOT, env: { ...process.env, ...env } });
  const reader = proc.stdout.getReader();
  let buf = "";
  while (!/PORT (\d+)/.test(buf)) {
    const r = await reader.read();
    if (r.done) throw new Error("exited");
    buf += new TextDecoder().decode(r.value);
  }
  reader.releaseLock();
  return { proc, url: `http://127.0.0.1:${/PORT (\d+)/.exec(buf)![1]}`, key: /KEY (\S+)/.exec(buf)?.[1] };
}
const mb = (pid: number, f: string) => Number(new RegExp(`${f}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
const env = { BUN_CONFIG_MAX_HTTP_REQUESTS: String(N + 256) };
const up = await spawn(["bun", "scripts/bench.ts", "upstream"], { ...env, BENCH_SLOW_SECONDS: "10" });
const gw = await spawn(["bun", ...(process.env.GW_FLAGS ? process.env.GW_FLAGS.split(" ") : []), "scripts/probe/gw.ts", up.url], { ...env, BENCH_MAX_STREAMS: String(N + 10) });
await Bun.sleep(300);
console.log("idle RSS", mb(gw.proc.pid, "VmRSS").toFixed(0));
gw.proc.kill("SIGUSR2");
await Bun.sleep(1500);
const client = Bun.spawn(["bun", "scripts/bench.ts", "stream-client", `${gw.url}/backend-api/codex/responses`, String(N), gw.key!], { stdout: "pipe", stderr: "inherit", cwd: ROOT, env: { ...process.env, ...env } });
await Bun.sleep(Number(process.env.AT ?? 6000));
console.log("mid RSS", mb(gw.proc.pid, "VmRSS").toFixed(0), "HWM", mb(gw.proc.pid, "VmHWM").toFixed(0));
gw.proc.kill("SIGUSR2");
const out = await new Response(client.stdout).text();
console.log("client", out.trim(), "HWM", mb(gw.proc.pid, "VmHWM").toFixed(0));
gw.proc.kill("SIGTERM"); up.proc.kill("SIGTERM");
await Bun.sleep(500);
gw.proc.kill("SIGKILL"); up.proc.kill("SIGKILL");
