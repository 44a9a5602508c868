// The DataStore contract, run against every implementation.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { open } from "lmdb";
import { DataFormatError, DataLockedError, LmdbDataStore, MemoryDataStore, type CommitBatch, type DataStore } from "shardless";
import fc from "fast-check";
import { compareUtf8 } from "../src/kernel/data-store.ts";
import { tempDir } from "./helpers.ts";

interface StoreFactory {
  readonly name: string;
  /** A fresh, empty store. */
  create(): DataStore;
}

const factories: StoreFactory[] = [
  { name: "MemoryDataStore", create: () => new MemoryDataStore() },
  { name: "LmdbDataStore (sync)", create: () => LmdbDataStore.open({ path: tempDir(), durability: "sync" }) },
  { name: "LmdbDataStore (relaxed)", create: () => LmdbDataStore.open({ path: tempDir(), durability: "relaxed" }) },
];

function batch(parts: Partial<CommitBatch>, seq = 1): CommitBatch {
  return { objects: [], bindings: [], meta: { nextObjectId: 100n, lastCommitSeq: seq, appTimeMs: 0 }, ...parts };
}

const bytes = (...values: number[]) => new Uint8Array(values);

for (const factory of factories) {
  describe(`DataStore contract: ${factory.name}`, () => {
    it("starts empty, with no metadata", async () => {
      const store = factory.create();
      assert.equal(store.readMeta(), undefined);
      assert.equal(store.getObject(1n), undefined);
      assert.equal(store.getBinding("a.x"), undefined);
      assert.equal(store.nextBindingName(undefined, "a."), undefined);
      await store.close();
    });

    it("stores, versions, overwrites and removes objects", async () => {
      const store = factory.create();
      await store.commit(batch({ objects: [{ id: 1n, bytes: bytes(1, 2), version: 1 }, { id: 2n ** 63n, bytes: bytes(9), version: 1 }] }));
      assert.deepEqual([...store.getObject(1n)!.bytes], [1, 2]);
      assert.equal(store.getObject(1n)!.version, 1);
      assert.deepEqual([...store.getObject(2n ** 63n)!.bytes], [9], "ids use all 64 bits");
      await store.commit(batch({ objects: [{ id: 1n, bytes: bytes(3), version: 2 }] }, 2));
      assert.deepEqual([...store.getObject(1n)!.bytes], [3]);
      assert.equal(store.getObject(1n)!.version, 2);
      await store.commit(batch({ objects: [{ id: 1n, bytes: null, version: 3 }] }, 3));
      assert.equal(store.getObject(1n), undefined);
      assert.ok(store.getObject(2n ** 63n), "other objects are untouched");
      await store.close();
    });

    it("stores and removes bindings with versions", async () => {
      const store = factory.create();
      await store.commit(batch({ bindings: [{ name: "a.x", id: 7n, version: 1 }] }));
      assert.deepEqual(store.getBinding("a.x"), { id: 7n, version: 1 });
      await store.commit(batch({ bindings: [{ name: "a.x", id: 8n, version: 2 }] }, 2));
      assert.deepEqual(store.getBinding("a.x"), { id: 8n, version: 2 });
      await store.commit(batch({ bindings: [{ name: "a.x", id: null, version: 3 }] }, 3));
      assert.equal(store.getBinding("a.x"), undefined);
      await store.close();
    });

    it("never answers an object's version from before the last commit that wrote it", async () => {
      const store = factory.create();
      const version = (id: bigint) => (store.getObjectVersion === undefined ? store.getObject(id)?.version : store.getObjectVersion(id));
      // Read first, so that a store that remembers versions has each id (absent ones too) in memory.
      assert.equal(version(1n), undefined);
      assert.equal(store.getObject(2n), undefined);
      const writing = store.commit(batch({ objects: [{ id: 1n, bytes: bytes(1), version: 1 }, { id: 2n, bytes: bytes(2), version: 1 }] }));
      version(2n); // while the commit is under way either answer is right, but must not stick
      await writing;
      assert.deepEqual([version(1n), version(2n), store.getObject(2n)?.version], [1, 1, 1]);
      await store.commit(batch({ objects: [{ id: 1n, bytes: null, version: 2 }, { id: 2n, bytes: bytes(3), version: 2 }] }, 2));
      assert.deepEqual([version(1n), version(2n)], [undefined, 2]);
      assert.deepEqual([...store.getObject(2n)!.bytes], [3]);
      await store.close();
    });

    it("never answers a binding read from before the last commit that wrote it", async () => {
      const store = factory.create();
      // Read first, so that a store that remembers reads has each name (absent ones too) in memory.
      assert.equal(store.getBinding("a.y"), undefined);
      const writing = store.commit(batch({ bindings: [{ name: "a.y", id: 1n, version: 1 }, { name: "a.z", id: 2n, version: 1 }] }));
      store.getBinding("a.z"); // while the commit is under way either answer is right, but must not stick
      await writing;
      assert.deepEqual([store.getBinding("a.y"), store.getBinding("a.z")], [{ id: 1n, version: 1 }, { id: 2n, version: 1 }]);
      await store.commit(batch({ bindings: [{ name: "a.y", id: null, version: 2 }, { name: "a.z", id: 3n, version: 2 }] }, 2));
      assert.deepEqual([store.getBinding("a.y"), store.getBinding("a.z")], [undefined, { id: 3n, version: 2 }]);
      await store.close();
    });

    it("iterates binding names in UTF-8 byte order within a prefix", async () => {
      const store = factory.create();
      // UTF-16 order would put "\u{1F600}" (surrogates D83D..) before "\uFFFD"; UTF-8 order puts it after.
      const names = ["a.b", "a.a", "a.\u00e9", "a.z", "a.\uFFFD", "a.\u{1F600}", "a.", "s.hidden", "b.other", "a.aa"];
      await store.commit(batch({ bindings: names.map((name, index) => ({ name, id: BigInt(index + 1), version: 1 })) }));
      const seen: string[] = [];
      for (let name = store.nextBindingName(undefined, "a."); name !== undefined; name = store.nextBindingName(name, "a.")) seen.push(name);
      assert.deepEqual(seen, ["a.", "a.a", "a.aa", "a.b", "a.z", "a.\u00e9", "a.\uFFFD", "a.\u{1F600}"]);
      assert.equal(store.nextBindingName("a.ab", "a."), "a.b", "the start need not be bound");
      assert.equal(store.nextBindingName(undefined, "s."), "s.hidden");
      assert.equal(store.nextBindingName("s.hidden", "s."), undefined);
      await store.close();
    });

    it("keeps the metadata of the last batch", async () => {
      const store = factory.create();
      await store.commit({ objects: [], bindings: [], meta: { nextObjectId: 2n ** 48n + 5n, lastCommitSeq: 42, appTimeMs: 1234.5 } });
      assert.deepEqual(store.readMeta(), { nextObjectId: 2n ** 48n + 5n, lastCommitSeq: 42, appTimeMs: 1234.5 });
      await store.close();
    });

    it("applies a batch's objects and bindings together", async () => {
      const store = factory.create();
      await store.commit(
        batch({
          objects: Array.from({ length: 500 }, (_, i) => ({ id: BigInt(i + 1), bytes: bytes(i % 256), version: 1 })),
          bindings: Array.from({ length: 500 }, (_, i) => ({ name: `a.${i}`, id: BigInt(i + 1), version: 1 })),
        }),
      );
      assert.equal(store.getObject(500n)!.bytes[0], 499 % 256);
      assert.equal(store.getBinding("a.499")!.id, 500n);
      await store.close();
    });
  });
}

describe("LmdbDataStore specifics", () => {
  it("keeps everything across close and reopen", async () => {
    const path = tempDir();
    const first = LmdbDataStore.open({ path });
    await first.commit(batch({ objects: [{ id: 5n, bytes: bytes(5), version: 9 }], bindings: [{ name: "a.five", id: 5n, version: 9 }] }, 9));
    await first.close();
    const second = LmdbDataStore.open({ path });
    assert.deepEqual([...second.getObject(5n)!.bytes], [5]);
    assert.deepEqual(second.getBinding("a.five"), { id: 5n, version: 9 });
    assert.equal(second.readMeta()!.lastCommitSeq, 9);
    await second.close();
  });

  it("refuses a directory that another open store holds, and frees it on close", async () => {
    const path = tempDir();
    const first = LmdbDataStore.open({ path });
    assert.throws(() => LmdbDataStore.open({ path }), DataLockedError);
    await first.close();
    const second = LmdbDataStore.open({ path });
    await second.close();
  });

  it("takes over a lock left by a process that no longer exists", async () => {
    const path = tempDir();
    writeFileSync(join(path, "shardless.lock"), "2147483646\n"); // no such pid
    const store = LmdbDataStore.open({ path });
    await store.close();
  });

  it("refuses a data directory of another format version", async () => {
    const path = tempDir();
    const store = LmdbDataStore.open({ path });
    await store.commit(batch({}));
    await store.close();
    const raw = open({ path, maxDbs: 8 });
    const meta = raw.openDB<string, string>({ name: "meta", encoding: "string" });
    await meta.put("meta", JSON.stringify({ format: 99, nextObjectId: "1", lastCommitSeq: 1, appTimeMs: 0 }));
    await raw.close();
    const formatError = (error: unknown) => error instanceof DataFormatError && /format version 99/.test(error.message);
    assert.throws(() => LmdbDataStore.open({ path }), formatError);
    // The failed open released the directory: a second attempt fails the same way, not as locked.
    assert.throws(() => LmdbDataStore.open({ path }), formatError);
  });
});

describe("compareUtf8", () => {
  it("orders well-formed strings exactly as their UTF-8 bytes", () => {
    const text = fc.string({ unit: "grapheme-composite", maxLength: 8 });
    fc.assert(
      fc.property(text, text, (a, b) => {
        assert.equal(Math.sign(compareUtf8(a, b)), Math.sign(Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"))));
      }),
      { numRuns: 5000 },
    );
    assert.ok(compareUtf8("\u{1F600}", "\uFFFD") > 0, "an astral character sorts after U+FFFD in UTF-8");
  });
});
