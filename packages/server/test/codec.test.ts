import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DataFormatError, ManagedObjectError, PeriodicTaskHandle, Ref, managed } from "shardless";
import { objectCodec } from "../src/kernel/codec.ts";

@managed("codec.Holder")
class Holder {
  value: unknown = null;
  constructor(value?: unknown) {
    this.value = value;
  }
  describe(): string {
    return `holder of ${typeof this.value}`;
  }
}

@managed("codec.Other")
class Other {
  n = 1;
}

class Plain {
  x = 1;
}

function roundTrip(value: unknown): unknown {
  const decoded = objectCodec.decode(objectCodec.encode(new Holder(value))) as Holder;
  assert.ok(decoded instanceof Holder, "decodes into the registered class");
  return decoded.value;
}

function refusal(value: unknown, path: RegExp, what: RegExp): void {
  assert.throws(
    () => objectCodec.encode(new Holder(value)),
    (error: unknown) => error instanceof ManagedObjectError && path.test(error.message) && what.test(error.message),
  );
}

describe("object codec", () => {
  it("round-trips every storable kind of value", () => {
    const value = {
      text: "héllo \u{1F600}",
      integer: 42,
      big: 2 ** 40,
      float: -1.5,
      nan: NaN,
      infinity: -Infinity,
      yes: true,
      nothing: null,
      missing: undefined,
      bigint: -(2n ** 63n),
      ubigint: 2n ** 64n - 1n,
      bytes: new Uint8Array([0, 255, 7]),
      date: new Date(1_700_000_000_123),
      list: [1, "two", [3], { four: 4 }],
      map: new Map<unknown, unknown>([["k", 1], [2, new Set([3n])]]),
      set: new Set(["a", "b"]),
      ref: new Ref(2n ** 50n + 3n),
      handle: new PeriodicTaskHandle(77n),
      nullProto: Object.assign(Object.create(null) as object, { a: 1 }),
    };
    const decoded = roundTrip(value) as typeof value;
    assert.equal(decoded.text, value.text);
    assert.equal(decoded.big, 2 ** 40);
    assert.equal(typeof decoded.big, "number", "numbers stay numbers");
    assert.ok(Number.isNaN(decoded.nan));
    assert.equal(decoded.infinity, -Infinity);
    assert.equal(decoded.bigint, -(2n ** 63n));
    assert.equal(decoded.ubigint, 2n ** 64n - 1n);
    assert.equal(typeof decoded.bigint, "bigint", "bigints stay bigints");
    assert.deepEqual([...decoded.bytes], [0, 255, 7]);
    assert.equal(decoded.date.getTime(), value.date.getTime());
    assert.deepEqual(decoded.list, value.list);
    assert.ok(decoded.map instanceof Map && decoded.map.get(2) instanceof Set);
    assert.deepEqual([...decoded.set], ["a", "b"]);
    assert.ok(decoded.ref instanceof Ref && decoded.ref.id === 2n ** 50n + 3n);
    assert.ok(decoded.handle instanceof PeriodicTaskHandle && decoded.handle.id === 77n);
    assert.ok("missing" in decoded && decoded.missing === undefined, "undefined fields are kept");
    assert.equal((decoded.nullProto).a, 1);
  });

  it("restores methods through the class prototype without calling the constructor", () => {
    const decoded = objectCodec.decode(objectCodec.encode(new Holder("x"))) as Holder;
    assert.equal(decoded.describe(), "holder of string");
  });

  it("restores a field that the class shadows with an accessor as a plain field, running no setter", () => {
    @managed("codec.Guarded")
    class Guarded {
      declare level: number;
      plain = 1;
    }
    let setterRuns = 0;
    Object.defineProperty(Guarded.prototype, "level", {
      get: () => -1,
      set: () => void setterRuns++,
      configurable: true,
    });
    const original = new Guarded();
    Object.defineProperty(original, "level", { value: 7, writable: true, enumerable: true, configurable: true });
    for (let i = 0; i < 2; i++) {
      // Twice: the second decode takes the path remembered for the class.
      const decoded = objectCodec.decode(objectCodec.encode(original)) as Guarded;
      assert.ok(Object.prototype.hasOwnProperty.call(decoded, "level"), "an own field, not the prototype's accessor");
      assert.equal(decoded.level, 7);
      assert.equal(decoded.plain, 1);
    }
    assert.equal(setterRuns, 0, "stored data never runs a setter");
  });

  it("round-trips Refs across the whole range of ids", () => {
    for (const id of [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n + 5n, 2n ** 64n - 1n]) {
      const decoded = roundTrip(new Ref(id)) as Ref;
      assert.equal(decoded.id, id);
    }
  });

  it("encodes deterministically, so unchanged objects compare equal", () => {
    const holder = new Holder({ b: 1, a: new Map([["z", 1], ["y", 2]]) });
    assert.deepEqual(objectCodec.encode(holder), objectCodec.encode(holder));
  });

  it("refuses what cannot be stored, naming the field path", () => {
    refusal(() => 1, /Holder\.value:/, /a function/);
    refusal({ deep: [1, { f: function named() {} }] }, /Holder\.value\.deep\[1\]\.f:/, /function \(named\)/);
    refusal(Symbol("s"), /Holder\.value:/, /a symbol/);
    refusal({ other: new Other() }, /Holder\.value\.other:/, /managed object .*Other.*hold a Ref/);
    refusal([new Plain()], /Holder\.value\[0\]:/, /class Plain, which is not storable/);
    refusal(2n ** 64n, /Holder\.value:/, /bigint outside 64 bits/);
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    refusal(cyclic, /Holder\.value\.self:/, /a cycle/);
    refusal(new Map([["k", () => 1]]), /Holder\.value\.get\(k\):/, /a function/);
  });

  it("stores a value shared twice (not a cycle) as two copies", () => {
    const shared = { n: 1 };
    const decoded = roundTrip([shared, shared]) as { n: number }[];
    assert.deepEqual(decoded, [{ n: 1 }, { n: 1 }]);
  });

  it("refuses to encode a non-managed object", () => {
    assert.throws(() => objectCodec.encode(new Plain()), ManagedObjectError);
  });

  it("reports corrupt bytes and unknown tags as data format errors", () => {
    assert.throws(() => objectCodec.decode(new Uint8Array([0xc1])), DataFormatError);
    assert.throws(() => objectCodec.decode(objectCodec.encode(new Holder(1)).subarray(0, 3)), DataFormatError);
    const unknown = objectCodec.encode(new Holder(1));
    const text = Buffer.from(unknown).toString("latin1").replace("codec.Holder", "codec.Nobody");
    assert.throws(() => objectCodec.decode(Buffer.from(text, "latin1")), (error: unknown) => error instanceof DataFormatError && /codec\.Nobody/.test(error.message));
  });

  it("round-trips arbitrary JSON-like values with bigints (property)", () => {
    const storable = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: "small" },
        fc.string(),
        fc.double({ noNaN: true }).filter((x) => !Object.is(x, -0)),
        fc.boolean(),
        fc.constant(null),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
        fc.array(tie("value"), { maxLength: 5 }),
        fc.dictionary(fc.string().filter((key) => key !== "__proto__"), tie("value"), { maxKeys: 5, noNullPrototype: true }),
      ),
    })).value;
    fc.assert(
      fc.property(storable, (value) => {
        assert.deepEqual(roundTrip(value), value);
      }),
      { numRuns: 300 },
    );
  });
});
