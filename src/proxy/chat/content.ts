/**
 * Chat message content → Responses content parts: text, images (`image_url` → `input_image`),
 * files (`file` → `input_file`); audio input is refused with a 400 naming the part.
 *
 * @module
 */
import { badField, isObject, type Json } from "../validate.ts";

/** Text of a system/developer/assistant content (string or text parts). */
export function textParts(content: unknown, where: string): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) throw badField(where, "content must be a string or an array of parts");
  return content
    .map((p, i) => {
      if (typeof p === "string") return p;
      if (isObject(p) && typeof p.text === "string") return p.text;
      throw badField(`${where}.${i}`, "only text parts are allowed here");
    })
    .join("");
}

/** Responses input parts of a user message's content. */
export function userParts(content: unknown, where: string): Json[] {
  if (typeof content === "string") return [{ type: "input_text", text: content }];
  if (content === null || content === undefined) return [];
  if (!Array.isArray(content)) throw badField(where, "content must be a string or an array of parts");
  return content.map((p, i) => {
    if (typeof p === "string") return { type: "input_text", text: p };
    if (!isObject(p)) throw badField(`${where}.${i}`, "each content part must be an object");
    switch (p.type) {
      case "text":
      case "input_text":
        if (typeof p.text !== "string") throw badField(`${where}.${i}.text`, "'text' must be a string");
        return { type: "input_text", text: p.text };
      case "image_url": {
        const img = p.image_url;
        const url = typeof img === "string" ? img : isObject(img) ? img.url : undefined;
        if (typeof url !== "string")
          throw badField(`${where}.${i}.image_url.url`, "'image_url.url' must be a string");
        const detail = isObject(img) && typeof img.detail === "string" ? { detail: img.detail } : {};
        return { type: "input_image", image_url: url, ...detail };
      }
      case "input_audio":
        throw badField(`${where}.${i}`, "Audio input is not supported");
      case "file": {
        const f = isObject(p.file) ? p.file : null;
        if (!f) throw badField(`${where}.${i}.file`, "'file' must be an object");
        if (typeof f.file_url === "string") return { type: "input_file", file_url: f.file_url };
        const data = f.file_data ?? f.data;
        if (typeof data === "string") {
          const url = data.startsWith("data:")
            ? data
            : `data:${typeof f.mime_type === "string" ? f.mime_type : "application/octet-stream"};base64,${data}`;
          return {
            type: "input_file",
            file_data: url,
            ...(typeof f.filename === "string" ? { filename: f.filename } : {}),
          };
        }
        throw badField(`${where}.${i}.file`, "'file' needs 'file_url' or 'file_data'");
      }
      default:
        return p;
    }
  });
}

/** The `output` string of a tool message. */
export function toolOutput(content: unknown, where: string): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return textParts(content, where);
  throw badField(where, "a tool message needs string content");
}
