import { describe, expect, test } from "bun:test";
import { homedir } from "node:os";
import { join } from "node:path";
import { loadSettings, parseDotEnv, SettingsError } from "../../src/settings/load.ts";
import { envNameOf, SettingsSchema } from "../../src/settings/schema.ts";

describe("settings", () => {
  test("defaults when nothing is set", () => {
    const s = loadSettings({}, { cwd: "/srv" });
    expect(s.host).toBe("127.0.0.1");
    expect(s.port).toBe(2455);
    expect(s.dataDir).toBe(join(homedir(), ".codex-lb"));
    expect(s.databaseUrl).toBe("");
    expect(s.upstreamBaseUrl).toBe("https://chatgpt.com/backend-api");
    expect(s.authBaseUrl).toBe("https://auth.openai.com");
    expect(s.logLevel).toBe("info");
    expect(s.plugins).toEqual([]);
    expect(Object.isFrozen(s)).toBe(true);
  });

  test("env names are derived from keys", () => {
    expect(envNameOf("streamIdleTimeoutSeconds")).toBe("CODEX_LB_STREAM_IDLE_TIMEOUT_SECONDS");
    expect(envNameOf("port")).toBe("CODEX_LB_PORT");
  });

  test("values are converted from strings", () => {
    const s = loadSettings(
      {
        CODEX_LB_PORT: "8080",
        CODEX_LB_DATA_DIR: "state",
        CODEX_LB_PLUGINS: " a.ts, ,b.ts ",
        CODEX_LB_UPSTREAM_BASE_URL: "http://127.0.0.1:9999/backend-api/",
        CODEX_LB_LOG_LEVEL: "debug",
      },
      { cwd: "/srv" },
    );
    expect(s.port).toBe(8080);
    expect(s.dataDir).toBe("/srv/state");
    expect(s.plugins).toEqual(["a.ts", "b.ts"]);
    expect(s.upstreamBaseUrl).toBe("http://127.0.0.1:9999/backend-api");
    expect(s.logLevel).toBe("debug");
  });

  const bad: [string, string, RegExp][] = [
    ["CODEX_LB_PORT", "abc", /expected an integer from 0 to 65535/],
    ["CODEX_LB_PORT", "70000", /from 0 to 65535/],
    ["CODEX_LB_PORT", "1.5", /integer/],
    ["CODEX_LB_PORT", "", /integer/],
    ["CODEX_LB_LOG_LEVEL", "loud", /one of "fatal", "error"/],
    ["CODEX_LB_UPSTREAM_BASE_URL", "chatgpt.com", /http\(s\) URL/],
    ["CODEX_LB_AUTH_BASE_URL", "ftp://x", /http\(s\) URL/],
    ["CODEX_LB_HOST", "", /non-empty string/],
    ["CODEX_LB_ROUTING_STRATEGY", "random", /one of/],
    ["CODEX_LB_ACCOUNT_MAX_STREAMS", "0", /integer >= 1/],
    ["CODEX_LB_STREAM_IDLE_TIMEOUT_SECONDS", "-3", /number >= 1/],
    ["CODEX_LB_HEADERS_TIMEOUT_SECONDS", "0", /number from 0.1 to 10/],
    ["CODEX_LB_HEADERS_TIMEOUT_SECONDS", "11", /number from 0.1 to 10\b/],
    ["CODEX_LB_MAX_PENDING_CONNECTIONS_PER_ADDRESS", "0", /integer >= 1/],
    ["CODEX_LB_MAX_PENDING_CONNECTIONS_PER_ADDRESS", "2.5", /integer/],
    ["CODEX_LB_PROT", "1", /unknown setting/],
  ];
  for (const [name, value, why] of bad) {
    test(`${name}=${JSON.stringify(value)} is refused with one line naming the variable`, () => {
      let err: unknown;
      try {
        loadSettings({ [name]: value });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SettingsError);
      const msg = (err as Error).message;
      expect(msg).toContain(name);
      expect(msg).toMatch(why);
      expect(msg.includes("\n")).toBe(false);
    });
  }

  test(".env values apply only where the environment is silent", () => {
    const dotEnv = parseDotEnv(
      '# comment\nCODEX_LB_PORT=3000\nexport CODEX_LB_HOST="0.0.0.0"\nCODEX_LB_LOG_LEVEL=warn # trailing\n',
    );
    expect(dotEnv).toEqual({ CODEX_LB_PORT: "3000", CODEX_LB_HOST: "0.0.0.0", CODEX_LB_LOG_LEVEL: "warn" });
    const s = loadSettings({ CODEX_LB_PORT: "4000" }, { dotEnv });
    expect(s.port).toBe(4000);
    expect(s.host).toBe("0.0.0.0");
    expect(s.logLevel).toBe("warn");
  });

  test("every setting has a default and a description", () => {
    for (const [key, schema] of Object.entries(SettingsSchema.properties)) {
      expect(schema.default, key).toBeDefined();
      expect(typeof schema.description, key).toBe("string");
    }
  });
});
