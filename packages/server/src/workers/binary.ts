/**
 * A little binary format for what crosses between threads on every task: ids, versions, names and
 * encoded objects. Copying such data with `postMessage`'s structured clone costs microseconds per
 * small object, which on the main thread is as much as running a small task; written here into one
 * buffer, it costs tens of nanoseconds per field, and the buffer is handed over without a copy.
 */
export class BinaryWriter {
  private buffer = scratch;
  private view = scratchView;
  private offset = 0;
  /** Strings written with {@link atom}, by their index in this message. */
  private readonly atoms = new Map<string, number>();

  /**
   * What was written, as a buffer of its own (to be transferred). Writers share one scratch buffer
   * (a writer is filled and finished in one synchronous call), so each must finish before the next
   * starts writing.
   */
  finish(): ArrayBuffer {
    const out = new ArrayBuffer(this.offset);
    new Uint8Array(out).set(this.buffer.subarray(0, this.offset));
    if (this.buffer.length > scratch.length && this.buffer.length <= MAX_SCRATCH_BYTES) {
      scratch = this.buffer;
      scratchView = this.view;
    }
    return out;
  }

  u8(value: number): void {
    this.room(1);
    this.buffer[this.offset++] = value;
  }

  u32(value: number): void {
    this.room(4);
    this.view.setUint32(this.offset, value, true);
    this.offset += 4;
  }

  f64(value: number): void {
    this.room(8);
    this.view.setFloat64(this.offset, value, true);
    this.offset += 8;
  }

  u64(value: bigint): void {
    this.room(8);
    this.view.setBigUint64(this.offset, value, true);
    this.offset += 8;
  }

  /** Bytes, or null, with their length. */
  bytes(value: Uint8Array | null): void {
    if (value === null) {
      this.f64(-1);
      return;
    }
    this.f64(value.byteLength);
    this.room(value.byteLength);
    this.buffer.set(value, this.offset);
    this.offset += value.byteLength;
  }

  /** A string in UTF-8 after its length in bytes; ASCII (names, keys) is copied here, without a call into C++. */
  string(value: string): void {
    this.room(4 + 3 * value.length);
    const at = this.offset + 4;
    let length = 0;
    while (length < value.length) {
      const unit = value.charCodeAt(length);
      if (unit >= 0x80) break;
      this.buffer[at + length++] = unit;
    }
    if (length < value.length) length = utf8.encodeInto(value, this.buffer.subarray(at)).written;
    this.view.setUint32(this.offset, length, true);
    this.offset = at + length;
  }

  /**
   * A string likely to repeat within the message (a task kind, a field name): written once, then
   * by its index.
   */
  atom(value: string): void {
    const index = this.atoms.get(value);
    if (index !== undefined) {
      this.u32(index + 1);
      return;
    }
    this.atoms.set(value, this.atoms.size);
    this.u32(0);
    this.string(value);
  }

  /**
   * A value, in this format where it is plain data (primitives, byte arrays, plain objects and
   * arrays); each part that is not (a Map, a Date, an instance of a class, …) goes onto `extra`, for
   * structured clone. Byte arrays are written with exactly their bytes: a clone would copy the
   * whole buffer a view points into (a socket read holds 64 KiB), for every message. Values nested
   * deeper than {@link MAX_PLAIN_DEPTH} (a cycle, say) go whole by structured clone, which keeps
   * cycles and shared parts; plain data is copied as a tree.
   */
  value(value: unknown, extra: unknown[]): void {
    const start = this.offset;
    const atoms = this.atoms.size;
    const extras = extra.length;
    if (this.plain(value, 0, extra)) return;
    // Too deep: start again and let structured clone carry the whole value.
    this.offset = start;
    for (const [atom, index] of this.atoms) if (index >= atoms) this.atoms.delete(atom);
    extra.length = extras;
    this.cloned(value, extra);
  }

  private cloned(value: unknown, extra: unknown[]): true {
    this.u8(Tag.Extra);
    this.u32(extra.length);
    extra.push(value);
    return true;
  }

  /** Writes `value`; false (with junk written) if it is nested too deep. */
  private plain(value: unknown, depth: number, extra: unknown[]): boolean {
    switch (typeof value) {
      case "undefined":
        this.u8(Tag.Undefined);
        return true;
      case "boolean":
        this.u8(value ? Tag.True : Tag.False);
        return true;
      case "number":
        this.u8(Tag.Number);
        this.f64(value);
        return true;
      case "string":
        this.u8(Tag.String);
        this.string(value);
        return true;
      case "bigint":
        if (value < 0n || value > MAX_U64) return this.cloned(value, extra);
        this.u8(Tag.BigInt);
        this.u64(value);
        return true;
      case "object":
        if (value === null) {
          this.u8(Tag.Null);
          return true;
        }
        return depth < MAX_PLAIN_DEPTH && this.plainObject(value, depth + 1, extra);
      default:
        return this.cloned(value, extra);
    }
  }

  private plainObject(value: object, depth: number, extra: unknown[]): boolean {
    if (value instanceof Uint8Array && (value.constructor === Uint8Array || Buffer.isBuffer(value))) {
      this.u8(Tag.Bytes);
      this.bytes(value);
      return true;
    }
    if (Array.isArray(value)) {
      if (Object.getPrototypeOf(value) !== Array.prototype || hasHoles(value)) return this.cloned(value, extra);
      this.u8(Tag.Array);
      this.u32(value.length);
      for (const item of value) if (!this.plain(item, depth, extra)) return false;
      return true;
    }
    if (Object.getPrototypeOf(value) !== Object.prototype) return this.cloned(value, extra);
    const keys = Object.keys(value);
    this.u8(Tag.Object);
    this.u32(keys.length);
    for (const key of keys) {
      this.atom(key);
      if (!this.plain((value as Record<string, unknown>)[key], depth, extra)) return false;
    }
    return true;
  }

  private room(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return;
    const bigger = new Uint8Array(Math.max(this.buffer.length * 2, this.offset + bytes));
    bigger.set(this.buffer.subarray(0, this.offset));
    this.buffer = bigger;
    this.view = new DataView(bigger.buffer);
  }
}

function hasHoles(array: readonly unknown[]): boolean {
  for (let i = 0; i < array.length; i++) if (!(i in array)) return true;
  return false;
}

/** Reads what a {@link BinaryWriter} wrote, in the same order. */
export class BinaryReader {
  private readonly buffer: Buffer;
  private readonly view: DataView;
  private offset = 0;
  private readonly atoms: string[] = [];

  constructor(data: ArrayBuffer) {
    this.buffer = Buffer.from(data);
    this.view = new DataView(data);
  }

  u8(): number {
    return this.buffer[this.offset++]!;
  }

  u32(): number {
    const value = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return value;
  }

  f64(): number {
    const value = this.view.getFloat64(this.offset, true);
    this.offset += 8;
    return value;
  }

  u64(): bigint {
    const value = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return value;
  }

  /** Bytes (a view into the message, which the receiver owns), or null. */
  bytes(): Buffer | null {
    const length = this.f64();
    if (length < 0) return null;
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  string(): string {
    const length = this.u32();
    const end = this.offset + length;
    let value = "";
    if (length <= SHORT_STRING_BYTES) {
      // Short ASCII strings (names, keys) are read here: cheaper than a call into C++.
      let at = this.offset;
      while (at < end && this.buffer[at]! < 0x80) value += String.fromCharCode(this.buffer[at++]!);
      if (at === end) {
        this.offset = end;
        return value;
      }
    }
    value = this.buffer.toString("utf8", this.offset, end);
    this.offset = end;
    return value;
  }

  atom(): string {
    const index = this.u32();
    if (index > 0) return this.atoms[index - 1]!;
    const value = this.string();
    this.atoms.push(value);
    return value;
  }

  /** A value written by {@link BinaryWriter.value}, with `extra` the message's cloned part. */
  value(extra: readonly unknown[]): unknown {
    const tag = this.u8() as Tag;
    switch (tag) {
      case Tag.Undefined:
        return undefined;
      case Tag.Null:
        return null;
      case Tag.False:
        return false;
      case Tag.True:
        return true;
      case Tag.Number:
        return this.f64();
      case Tag.String:
        return this.string();
      case Tag.BigInt:
        return this.u64();
      case Tag.Bytes: {
        // A Uint8Array, as structured clone would give (even for a Buffer), viewing this message.
        const bytes = this.bytes()!;
        return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      }
      case Tag.Array: {
        const array: unknown[] = [];
        for (let count = this.u32(); count > 0; count--) array.push(this.value(extra));
        return array;
      }
      case Tag.Object: {
        const object: Record<string, unknown> = {};
        for (let count = this.u32(); count > 0; count--) {
          const key = this.atom();
          object[key] = this.value(extra);
        }
        return object;
      }
      case Tag.Extra:
        return extra[this.u32()];
      default:
        throw new Error(`corrupt message between threads: value tag ${String(tag)}`);
    }
  }
}

/** How a {@link BinaryWriter.value} is written. */
const enum Tag {
  Undefined,
  Null,
  False,
  True,
  Number,
  String,
  BigInt,
  Bytes,
  Array,
  Object,
  /** Carried by structured clone: the index in the message's `extra`. */
  Extra,
}

const MAX_U64 = 2n ** 64n - 1n;
/** Deeper values go by structured clone, which also handles cycles. */
const MAX_PLAIN_DEPTH = 16;
/** The largest scratch buffer kept for the next message. */
const MAX_SCRATCH_BYTES = 1 << 20;
/** Strings up to this length are decoded in JavaScript when they are ASCII. */
const SHORT_STRING_BYTES = 32;
const utf8 = new TextEncoder();
let scratch = new Uint8Array(1 << 16);
let scratchView = new DataView(scratch.buffer);
