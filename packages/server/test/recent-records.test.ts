// Records the LMDB store keeps in memory after reading or writing them: within their byte budget,
// oldest out first, and always exactly what LMDB holds, whatever the order of reads and commits.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { LmdbDataStore, type CommitBatch } from "shardless";
import { RecentRecords } from "../src/data/recent-records.ts";
import { tempDir } from "./helpers.ts";

describe("recent records", () => {
  it("keeps entries within the budget, dropping the oldest first", () => {
    const records = new RecentRecords<string, number>(64, (size) => size);
    records.set("a", 2);
    records.set("b", 2);
    records.set("c", 2);
    assert.deepEqual([records.get("a"), records.get("b"), records.get("c")], [2, 2, 2]);
    for (let i = 0; i < 40; i++) records.set(`x${i}`, 2);
    assert.equal(records.get("a"), undefined, "the oldest went first");
    assert.equal(records.get("x39"), 2, "the newest stayed");
    assert.equal(records.size, 32, "64 bytes of entries of 2");
  });

  it("replaces an entry, and does not keep one over a sixteenth of the budget", () => {
    const records = new RecentRecords<string, number>(64, (size) => size);
    records.set("a", 2);
    records.set("a", 3);
    assert.equal(records.get("a"), 3);
    records.set("a", 5);
    assert.equal(records.get("a"), undefined, "5 > 64 / 16: not kept, and the old entry is gone");
    records.set("b", 4);
    records.delete("b");
    assert.equal(records.size, 0);
  });

  it("keeps nothing with a budget of 0", () => {
    const records = new RecentRecords<string, number>(0, () => 1);
    records.set("a", 1);
    assert.equal(records.get("a"), undefined);
  });
});

describe("the LMDB store's recent records", () => {
  const ids = [1n, 2n, 3n, 4n, 5n, 6n];
  const names = ["a.1", "a.2", "a.3", "a.4"];
  type Step = { read: number } | { write: number; bytes: number[] } | { remove: number } | { bind: number; to: number } | { unbind: number };
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ read: fc.nat(9) }),
    fc.record({ write: fc.nat(ids.length - 1), bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 40 }) }),
    fc.record({ remove: fc.nat(ids.length - 1) }),
    fc.record({ bind: fc.nat(names.length - 1), to: fc.nat(ids.length - 1) }),
    fc.record({ unbind: fc.nat(names.length - 1) }),
  );

  it("read exactly what a reader of the same directory reads, with a budget that holds all or a few", async () => {
    for (const recentRecordBytes of [1 << 20, 1600]) {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.array(step, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 12 }), async (batches) => {
          const path = tempDir();
          const store = LmdbDataStore.open({ path, durability: "relaxed", recentRecordBytes });
          const reader = LmdbDataStore.openReader(path, "relaxed");
          try {
            let seq = 0;
            // Bytes compare as numbers: a record kept from a commit is the committed Uint8Array, one read is a Buffer.
            const plain = (record: { bytes: Uint8Array; version: number } | undefined) => record && { bytes: [...record.bytes], version: record.version };
            const agree = () => {
              reader.resetReadTxn();
              for (const id of ids) assert.deepEqual(plain(store.getObject(id)), plain(reader.getObject(id)), `object ${id}`);
              for (const name of names) assert.deepEqual(store.getBinding(name), reader.getBinding(name), `binding ${name}`);
            };
            for (const steps of batches) {
              const batch: { objects: CommitBatch["objects"][number][]; bindings: CommitBatch["bindings"][number][] } = { objects: [], bindings: [] };
              seq++;
              for (const each of steps) {
                // Reads between commits fill the memory, which the next commit must then correct.
                if ("read" in each) void (each.read < ids.length ? store.getObject(ids[each.read]!) : store.getBinding(names[each.read % names.length]!));
                else if ("write" in each) batch.objects.push({ id: ids[each.write]!, bytes: new Uint8Array(each.bytes), version: seq });
                else if ("remove" in each) batch.objects.push({ id: ids[each.remove]!, bytes: null, version: seq });
                else if ("bind" in each) batch.bindings.push({ name: names[each.bind]!, id: ids[each.to]!, version: seq });
                else batch.bindings.push({ name: names[each.unbind]!, id: null, version: seq });
              }
              await store.commit({ ...batch, meta: { nextObjectId: 100n, lastCommitSeq: seq, appTimeMs: 0 } });
              agree();
            }
          } finally {
            await reader.close();
            await store.close();
          }
        }),
        { numRuns: 25 },
      );
    }
  });

  it("refuses a budget that is not a whole number of bytes", () => {
    assert.throws(() => LmdbDataStore.open({ path: tempDir(), recentRecordBytes: -1 }), RangeError);
    assert.throws(() => LmdbDataStore.open({ path: tempDir(), recentRecordBytes: 1.5 }), RangeError);
  });
});
