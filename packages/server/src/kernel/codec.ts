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
  const high = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const low = ((bytes[4]! << 24) | (bytes[5]! << 16) | (bytes[6]! << 8) | bytes[7]!) >>> 0;
  // Ids below 2^53 (all of them, in practice) convert through a number, with no allocation but
  // the bigint itself.
  if (high < 0x200000) return BigInt(high * 0x100000000 + low);
  return (BigInt(high) << 32n) | BigInt(low);
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
/** As {@link BoxedMap}, for Sets: only Shardless's own classes get msgpack extensions. */
class BoxedSet {
  constructor(readonly values: unknown[]) {}
}
addExtension({ Class: BoxedSet, type: EXT_SET, write: (box: BoxedSet) => box.values, read: (values: unknown[]) => new Set(values) });

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "bigint", moreTypes: false });

const MIN_INT64 = -(2n ** 63n);
const MAX_UINT64 = 2n ** 64n - 1n;

/**
 * Encodes and decodes managed objects. A stored object is the msgpack array `[tag, fields]`, where
 * `fields` holds the object's own enumerable properties. Storable values: primitives (bigints within
 * 64 bits), `null`/`undefined`, plain objects, arrays, `Map`, `Set`, `Date`, `Uint8Array`, `Ref`s and
 * periodic task handles. Anything else is refused with the path of the offending field.
 *
 * Not kept across a round trip: private `#fields` and state behind accessors (only own enumerable
 * fields are stored), `-0` (comes back as 0), holes in arrays (come back as undefined), the null
 * prototype of a dictionary, and the exact class of a byte array (a Node `Buffer` comes back).
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
    let needsBoxing = false;
    const fields: Record<string, unknown> = {};
    for (const key of Object.keys(obj)) {
      if (key === "__proto__") throw refuse(`${root}.__proto__`, "a field named __proto__, which cannot be restored safely");
      const value = (obj as Record<string, unknown>)[key];
      if (checkStorable(value, `${root}.${key}`, ancestors)) needsBoxing = true;
      fields[key] = value;
    }
    // A plain copy, never the instance: msgpackr would honour a toJSON method on the class.
    return packr.pack([tag, needsBoxing ? boxCollections(fields) : fields]);
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
    if (!Array.isArray(decoded) || decoded.length !== 2 || typeof decoded[0] !== "string" || !isFieldRecord(decoded[1])) {
      throw new DataFormatError("stored object does not have the [tag, fields] form");
    }
    const [tag, fields] = decoded as [string, Record<string, unknown>];
    const cls = managedClassForTag(tag);
    if (cls === undefined) {
      throw new DataFormatError(`stored object has tag ${JSON.stringify(tag)}, but no loaded class is registered under it (is the module defining it imported?)`);
    }
    // Own data properties, as the fields were. Assignment only where no class in the chain defines
    // the name: elsewhere it would run a setter on stored data, or fail on a field that shadows a
    // getter, so those fields are defined.
    const instance = Object.create(cls.prototype as object) as Record<string, unknown>;
    const plain = plainFieldsOf(cls);
    for (const key of Object.keys(fields)) {
      if (plain.has(key) || isPlainField(cls, key, plain)) instance[key] = fields[key];
      else Object.defineProperty(instance, key, { value: fields[key], writable: true, enumerable: true, configurable: true });
    }
    return instance;
  },
};

/**
 * Per class, the field names that plain assignment stores as own data properties: no class in its
 * prototype chain defines them (as a setter, a getter or a read-only value). Assignment is several
 * times cheaper than `defineProperty` and keeps decoded objects in V8's fast shapes.
 */
const plainFields = new WeakMap<object, Set<string>>();

function plainFieldsOf(cls: object): Set<string> {
  let known = plainFields.get(cls);
  if (known === undefined) plainFields.set(cls, (known = new Set()));
  return known;
}

/** True (and remembered) when assigning `key` on an instance of `cls` makes a plain own field. */
function isPlainField(cls: object, key: string, plain: Set<string>): boolean {
  for (let proto: unknown = (cls as { prototype: unknown }).prototype; proto !== null && proto !== undefined; proto = Object.getPrototypeOf(proto)) {
    if (Object.prototype.hasOwnProperty.call(proto, key)) return false;
  }
  plain.add(key);
  return true;
}

/** Throws unless `value` is storable; returns true when it contains a Map or Set (which need boxing). */
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
      hasMap = true;
      for (const item of value) checkStorable(item, `${path}<member>`, ancestors);
    } else if (isPlainObject(value)) {
      for (const key of Object.keys(value)) {
        if (key === "__proto__") throw refuse(`${path}.__proto__`, "a key named __proto__, which cannot be restored safely");
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

/** A copy of `value` with every Map and Set boxed for their extensions; other leaves are shared. */
function boxCollections(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (value instanceof Map) return new BoxedMap([...value].map(([key, item]) => [boxCollections(key), boxCollections(item)]));
  if (value instanceof Set) return new BoxedSet([...value].map(boxCollections));
  if (Array.isArray(value)) return value.map(boxCollections);
  if (!isPlainObject(value)) return value; // Ref, Date, bytes, handles
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) copy[key] = boxCollections((value as Record<string, unknown>)[key]);
  return copy;
}

/** Calls `visit` with the id of every `Ref` that `value` (a field's value) holds, at any depth. */
export function visitRefs(value: unknown, visit: (id: bigint) => void, seen: Set<object> = new Set()): void {
  if (typeof value !== "object" || value === null) return;
  if (value instanceof Ref) return visit(value.id);
  if (seen.has(value)) return;
  seen.add(value);
  if (Array.isArray(value)) for (const item of value) visitRefs(item, visit, seen);
  else if (value instanceof Map) {
    for (const [key, item] of value) {
      visitRefs(key, visit, seen);
      visitRefs(item, visit, seen);
    }
  } else if (value instanceof Set) for (const item of value) visitRefs(item, visit, seen);
  else for (const key of Object.keys(value)) visitRefs((value as Record<string, unknown>)[key], visit, seen);
}

function isFieldRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
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
