import { addExtension, Packr } from "msgpackr";
import { DataFormatError, ManagedObjectError } from "../api/errors.js";
import { managedClassForTag, managedTagOf } from "../api/managed.js";
import { PeriodicTaskHandle, Ref } from "../api/ref.js";

// Extension type numbers written into stored data: they are part of the on-disk format.
const EXT_REF = 0x21;
const EXT_MAP = 0x22;
const EXT_SET = 0x23;
const EXT_TASK_HANDLE = 0x24;

function idBytes(id: bigint): Buffer {
  const bytes = Buffer.allocUnsafe(8);
  bytes.writeBigUInt64BE(id, 0);
  return bytes;
}

function readId(bytes: Uint8Array): bigint {
  if (bytes.byteLength !== 8) throw new DataFormatError(`stored id has ${bytes.byteLength} bytes, expected 8`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64BE(0);
}

// msgpackr's extension table is per copy of the library; these registrations are codec definitions
// (like the class tags), identical for every server, so registering them once at load is safe.
addExtension({ Class: Ref, type: EXT_REF, pack: (ref: Ref) => idBytes(ref.id), unpack: (bytes: Uint8Array) => new Ref(readId(bytes)) });
addExtension({
  Class: PeriodicTaskHandle,
  type: EXT_TASK_HANDLE,
  pack: (handle: PeriodicTaskHandle) => idBytes(handle.id),
  unpack: (bytes: Uint8Array) => new PeriodicTaskHandle(readId(bytes)),
});
/**
 * msgpackr writes a `Map` as a msgpack map, which decodes as a plain object; so before packing,
 * Maps are boxed in this class, which the extension below writes as its entry list.
 */
class BoxedMap {
  constructor(readonly entries: [unknown, unknown][]) {}
}
addExtension({ Class: BoxedMap, type: EXT_MAP, write: (box: BoxedMap) => box.entries, read: (entries: [unknown, unknown][]) => new Map(entries) });
addExtension({ Class: Set, type: EXT_SET, write: (set: Set<unknown>) => [...set], read: (values: unknown[]) => new Set(values) });

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "bigint", moreTypes: false });

const MIN_INT64 = -(2n ** 63n);
const MAX_UINT64 = 2n ** 64n - 1n;

/**
 * Encodes and decodes managed objects. A stored object is the msgpack array `[tag, fields]`, where
 * `fields` holds the object's own enumerable properties. Storable values: primitives (bigints within
 * 64 bits), `null`/`undefined`, plain objects, arrays, `Map`, `Set`, `Date`, `Uint8Array`, `Ref`s and
 * periodic task handles. Anything else is refused with the path of the offending field.
 */
export const objectCodec = {
  /**
   * The encoding of the managed object `obj`.
   * @throws {ManagedObjectError} naming the field path of the first value that cannot be stored.
   */
  encode(obj: object): Uint8Array {
    const tag = managedTagOf(obj);
    if (tag === undefined) throw new ManagedObjectError(`${describe(obj)} is not a managed object (decorate its class with @managed)`);
    const root = obj.constructor.name || tag;
    const ancestors: object[] = [obj];
    let hasMap = false;
    for (const key of Object.keys(obj)) {
      if (checkStorable((obj as Record<string, unknown>)[key], `${root}.${key}`, ancestors)) hasMap = true;
    }
    return packr.pack([tag, hasMap ? boxMaps({ ...obj }) : obj]);
  },

  /**
   * The object encoded in `bytes`, as a fresh instance of its class (the constructor is not called).
   * @throws {DataFormatError} if the bytes are corrupt or name a tag no loaded class has.
   */
  decode(bytes: Uint8Array): object {
    let decoded: unknown;
    try {
      decoded = packr.unpack(bytes);
    } catch (cause) {
      throw new DataFormatError("stored object is corrupt", { cause });
    }
    if (!Array.isArray(decoded) || decoded.length !== 2 || typeof decoded[0] !== "string" || typeof decoded[1] !== "object") {
      throw new DataFormatError("stored object does not have the [tag, fields] form");
    }
    const [tag, fields] = decoded as [string, object];
    const cls = managedClassForTag(tag);
    if (cls === undefined) {
      throw new DataFormatError(`stored object has tag ${JSON.stringify(tag)}, but no loaded class is registered under it (is the module defining it imported?)`);
    }
    return Object.assign(Object.create(cls.prototype as object) as object, fields);
  },
};

/** Throws unless `value` is storable; returns true when it contains a Map (which needs boxing). */
function checkStorable(value: unknown, path: string, ancestors: object[]): boolean {
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
    case "undefined":
      return false;
    case "bigint":
      if (value < MIN_INT64 || value > MAX_UINT64) throw refuse(path, "a bigint outside 64 bits");
      return false;
    case "function":
      throw refuse(path, `a function (${value.name || "anonymous"})`);
    case "symbol":
      throw refuse(path, "a symbol");
    case "object":
      return value === null ? false : checkObject(value, path, ancestors);
  }
}

function checkObject(value: object, path: string, ancestors: object[]): boolean {
  if (value instanceof Ref || value instanceof PeriodicTaskHandle || value instanceof Date || value instanceof Uint8Array) return false;
  const tag = managedTagOf(value);
  if (tag !== undefined) {
    throw refuse(path, `a managed object (${describe(value)}, tag ${JSON.stringify(tag)}) held directly; hold a Ref to it instead (ctx.data.createReference(obj))`);
  }
  if (ancestors.includes(value)) throw refuse(path, "a cycle (a value that contains itself); only Refs may form cycles");
  ancestors.push(value);
  try {
    let hasMap = false;
    if (Array.isArray(value)) {
      value.forEach((item, index) => {
        if (checkStorable(item, `${path}[${index}]`, ancestors)) hasMap = true;
      });
    } else if (value instanceof Map) {
      hasMap = true;
      for (const [key, item] of value) {
        checkStorable(key, `${path}<key ${String(key)}>`, ancestors);
        checkStorable(item, `${path}.get(${String(key)})`, ancestors);
      }
    } else if (value instanceof Set) {
      for (const item of value) {
        if (checkStorable(item, `${path}<member>`, ancestors)) hasMap = true;
      }
    } else if (isPlainObject(value)) {
      for (const key of Object.keys(value)) {
        if (checkStorable((value as Record<string, unknown>)[key], `${path}.${key}`, ancestors)) hasMap = true;
      }
    } else {
      throw refuse(
        path,
        `${describe(value)}, which is not storable (use plain objects, arrays, Map, Set, Date or Uint8Array, or make the class @managed and hold a Ref)`,
      );
    }
    return hasMap;
  } finally {
    ancestors.pop();
  }
}

/** A copy of `value` with every Map replaced by a {@link BoxedMap}; other leaves are shared. */
function boxMaps(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (value instanceof Map) return new BoxedMap([...value].map(([key, item]) => [boxMaps(key), boxMaps(item)]));
  if (Array.isArray(value)) return value.map(boxMaps);
  if (value instanceof Set) return new Set([...value].map(boxMaps));
  if (!isPlainObject(value)) return value; // Ref, Date, bytes, handles
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) copy[key] = boxMaps((value as Record<string, unknown>)[key]);
  return copy;
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: object): string {
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  return name ? `an instance of class ${name}` : "an object";
}

function refuse(path: string, what: string): ManagedObjectError {
  return new ManagedObjectError(`cannot store ${path}: it is ${what}`);
}
