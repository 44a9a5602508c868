import { Unpackr } from "msgpackr";
// The codec module registers the msgpack extensions of Ref, PeriodicTaskHandle, Map and Set (a
// process-wide table); importing it lets this decoder read them without registering its own,
// which would replace the server's in a process that runs both.
import "../kernel/codec.js";
import { PeriodicTaskHandle, Ref } from "../api/ref.js";

/** A stored object read without its class: the class tag and the stored fields. */
export interface GenericObject {
  readonly tag: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

/**
 * A stored value as JSON. Values JSON has no form for are marked objects: `{"$ref": id}`,
 * `{"$taskHandle": id}`, `{"$bigint": digits}`, `{"$map": [[key, value], ...]}`, `{"$set": [...]}`,
 * `{"$date": iso}`, `{"$bytes": base64}`, `{"$number": "NaN" | "Infinity" | "-Infinity"}`,
 * `{"$undefined": true}`; a plain object with a key starting with `$` is wrapped as `{"$object": {...}}`.
 * Ids are decimal strings, since they are 64-bit.
 */
export type JsonView = null | boolean | number | string | JsonView[] | { [key: string]: JsonView };

// The codec's own options: a generic reader must turn the same bytes into the same values.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: "bigint", moreTypes: false });

/**
 * Decodes a stored object without needing its class to be loaded.
 * @throws {Error} if the bytes are not msgpack of the form `[tag, fields]`.
 */
export function decodeGeneric(bytes: Uint8Array): GenericObject {
  const decoded: unknown = unpackr.unpack(bytes);
  if (!Array.isArray(decoded) || decoded.length !== 2 || typeof decoded[0] !== "string") {
    throw new Error("the stored bytes do not have the [tag, fields] form");
  }
  const fields: unknown = decoded[1];
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) throw new Error("the stored fields are not a record");
  return { tag: decoded[0], fields: fields as Record<string, unknown> };
}

/** The ids of every Ref in `value` at any depth, each once, in the order they are met. */
export function refIds(value: unknown, found: bigint[] = []): bigint[] {
  if (value instanceof Ref) {
    if (!found.includes(value.id)) found.push(value.id);
  } else if (value instanceof Map) {
    for (const [key, item] of value) {
      refIds(key, found);
      refIds(item, found);
    }
  } else if (value instanceof Set || Array.isArray(value)) {
    for (const item of value as Iterable<unknown>) refIds(item, found);
  } else if (isPlainRecord(value)) {
    for (const item of Object.values(value)) refIds(item, found);
  }
  return found;
}

/** `value` (a decoded stored value) as JSON; see {@link JsonView} for the marked forms. */
export function toJsonView(value: unknown): JsonView {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : { $number: String(value) };
    case "bigint":
      return { $bigint: value.toString() };
    case "undefined":
      return { $undefined: true };
    case "object":
      return value === null ? null : objectView(value);
    default:
      // Decoding never yields functions or symbols; say what it was rather than fail.
      return { $unknown: String(value) };
  }
}

function objectView(value: object): JsonView {
  if (value instanceof Ref) return { $ref: value.id.toString() };
  if (value instanceof PeriodicTaskHandle) return { $taskHandle: value.id.toString() };
  if (value instanceof Map) return { $map: [...value].map(([key, item]) => [toJsonView(key), toJsonView(item)]) };
  if (value instanceof Set) return { $set: [...value].map(toJsonView) };
  if (value instanceof Date) return { $date: Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString() };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
  if (Array.isArray(value)) return value.map(toJsonView);
  return recordView(value as Record<string, unknown>);
}

/** The JSON view of a plain record, wrapped when one of its keys could be mistaken for a marker. */
export function recordView(record: Readonly<Record<string, unknown>>): JsonView {
  const view: Record<string, JsonView> = {};
  for (const [key, item] of Object.entries(record)) view[key] = toJsonView(item);
  return Object.keys(record).some((key) => key.startsWith("$")) ? { $object: view } : view;
}

/**
 * A one-line, JavaScript-like rendering of a {@link JsonView}: `#12` for a Ref, `5n` for a bigint,
 * `Map(1) { "a" => 1 }`, `Set(2) { 1, 2 }`. Past `maxChars` the text is cut and ends with `…`.
 */
export function formatView(view: JsonView, maxChars = Infinity): string {
  const text = format(view);
  return text.length > maxChars ? `${text.slice(0, Math.max(0, maxChars - 1))}…` : text;
}

function format(view: JsonView): string {
  if (view === null) return "null";
  if (typeof view === "string") return JSON.stringify(view);
  if (typeof view !== "object") return String(view);
  if (Array.isArray(view)) return `[${view.map(format).join(", ")}]`;
  return formatMarked(view) ?? formatRecord(view);
}

function formatMarked(view: { [key: string]: JsonView }): string | undefined {
  const keys = Object.keys(view);
  if (keys.length !== 1) return undefined;
  const inner = view[keys[0]!]!;
  // The scalar markers hold strings; anything else is shown as JSON rather than "[object Object]".
  const text = typeof inner === "string" ? inner : JSON.stringify(inner);
  switch (keys[0]) {
    case "$ref":
      return `#${text}`;
    case "$taskHandle":
      return `PeriodicTaskHandle(#${text})`;
    case "$bigint":
      return `${text}n`;
    case "$number":
      return text;
    case "$undefined":
      return "undefined";
    case "$date":
      return `Date(${text})`;
    case "$bytes":
      return `<${Buffer.from(text, "base64").length} bytes>`;
    case "$map": {
      const entries = inner as [JsonView, JsonView][];
      return `Map(${entries.length}) {${entries.length === 0 ? "" : ` ${entries.map(([key, item]) => `${format(key)} => ${format(item)}`).join(", ")} `}}`;
    }
    case "$set": {
      const items = inner as JsonView[];
      return `Set(${items.length}) {${items.length === 0 ? "" : ` ${items.map(format).join(", ")} `}}`;
    }
    case "$object":
      return formatRecord(inner as { [key: string]: JsonView });
    default:
      return undefined;
  }
}

function formatRecord(view: { [key: string]: JsonView }): string {
  const entries = Object.entries(view);
  if (entries.length === 0) return "{}";
  return `{ ${entries.map(([key, item]) => `${/^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key)}: ${format(item)}`).join(", ")} }`;
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The class tag of an encoded object, read from its first bytes without decoding the fields; falls
 * back to a full decode for encodings this fast path does not recognise.
 * @throws {Error} as {@link decodeGeneric} when the bytes are not a stored object.
 */
export function peekTag(bytes: Uint8Array): string {
  // [tag, fields] starts with a two-element array header, then the tag as a msgpack string.
  if (bytes[0] === 0x92) {
    const head = bytes[1] ?? 0;
    let start = -1;
    let length = 0;
    if (head >= 0xa0 && head <= 0xbf) [start, length] = [2, head - 0xa0];
    else if (head === 0xd9 && bytes.length > 2) [start, length] = [3, bytes[2]!];
    if (start > 0 && start + length <= bytes.length) return Buffer.from(bytes.buffer, bytes.byteOffset + start, length).toString("utf8");
  }
  return decodeGeneric(bytes).tag;
}
