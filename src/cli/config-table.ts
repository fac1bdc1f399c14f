import type { TSchema } from "@sinclair/typebox";
import { envNameOf, type Settings, SettingsSchema } from "../settings/schema.ts";

function show(v: unknown): string {
  if (Array.isArray(v)) return v.join(",");
  return String(v);
}

/** The settings as a Markdown table; with `current`, a column of the values in force. */
export function configTable(current?: Readonly<Settings>): string {
  const props = SettingsSchema.properties as Record<string, TSchema>;
  const head = current
    ? "| Variable | Value | Default | Description |\n|---|---|---|---|\n"
    : "| Variable | Default | Description |\n|---|---|---|\n";
  const rows = Object.entries(props).map(([key, s]) => {
    const def = `\`${show(s.default) || '""'}\``;
    const desc = String(s.description ?? "").replace(/\|/g, "\\|");
    const value =
      s.secret && current?.[key as keyof Settings] ? "[set]" : show(current?.[key as keyof Settings]);
    return current
      ? `| \`${envNameOf(key)}\` | \`${value}\` | ${def} | ${desc} |`
      : `| \`${envNameOf(key)}\` | ${def} | ${desc} |`;
  });
  return `${head}${rows.join("\n")}\n`;
}
