// What the collections leave in the store: after 100,000 entries are inserted and removed, nothing
// but the empty map; after a collection is removed, nothing at all, however large it was.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryDataStore, ScalableDeque, ScalableList, ScalableMap, ScalableSet, managed, type Server, type TaskContext } from "shardless";
import { testServer } from "./helpers.ts";

@managed("collections-store.App")
class App {
  initialize(): void {}
}

/** Objects in the store: ids are handed out in order and never reused, so every id below the next is looked up. */
function storedObjects(store: MemoryDataStore): number {
  const next = store.readMeta()?.nextObjectId ?? 0n;
  let count = 0;
  for (let id = 1n; id < next; id++) if (store.getObject(id) !== undefined) count++;
  return count;
}

async function inBatches(server: Server, total: number, batch: number, body: (ctx: TaskContext, from: number, to: number) => void): Promise<void> {
  for (let from = 0; from < total; from += batch) await server.run("batch", (ctx) => body(ctx, from, Math.min(total, from + batch)));
}

async function removeBinding(server: Server, name: string): Promise<void> {
  await server.run("remove", (ctx) => {
    ctx.data.removeObject(ctx.data.getBinding(name));
    ctx.data.removeBinding(name);
  });
  await server.whenIdle(); // background removal of large collections
}

describe("collections in the store", () => {
  it("leaves no internal object after 100,000 entries are inserted and removed, and none after the map is removed", async () => {
    const store = new MemoryDataStore();
    const server = await testServer({ app: App, store }, import.meta.url);
    const before = storedObjects(store);
    await server.run("create", (ctx) => ctx.data.setBinding("map", new ScalableMap<number, string>()));
    const empty = storedObjects(store);
    assert.equal(empty - before, 18, "handle, root and 16 pre-split buckets");
    await inBatches(server, 100_000, 10_000, (ctx, from, to) => {
      const map = ctx.data.getBinding<ScalableMap<number, string>>("map");
      for (let i = from; i < to; i++) map.set(i, `value ${i}`);
    });
    const full = storedObjects(store);
    assert.ok(full - empty > 1000, `100,000 entries live in many buckets (${full - empty} more objects)`);
    assert.equal(await server.run("size", (ctx) => ctx.data.getBinding<ScalableMap>("map").size()), 100_000);
    await inBatches(server, 100_000, 10_000, (ctx, from, to) => {
      const map = ctx.data.getBinding<ScalableMap<number, string>>("map");
      // Every other key first, then the rest: buckets shrink unevenly before they merge.
      for (let i = from; i < to; i += 2) assert.ok(map.delete(i));
      for (let i = from + 1; i < to; i += 2) assert.ok(map.delete(i));
    });
    assert.equal(await server.run("size", (ctx) => ctx.data.getBinding<ScalableMap>("map").size()), 0);
    assert.equal(storedObjects(store), empty, "only the empty map's own objects remain");
    await removeBinding(server, "map");
    assert.equal(storedObjects(store), before, "removing the map removed everything");
  });

  it("removes a large collection in background slices without leaking", async () => {
    const store = new MemoryDataStore();
    const server = await testServer({ app: App, store }, import.meta.url);
    const before = storedObjects(store);
    // Tiny buckets make thousands of objects: more than one removal task can take.
    await server.run("create", (ctx) => ctx.data.setBinding("set", new ScalableSet<number>({ maxBucketEntries: 8, minConcurrency: 256 })));
    await inBatches(server, 30_000, 10_000, (ctx, from, to) => {
      const set = ctx.data.getBinding<ScalableSet<number>>("set");
      for (let i = from; i < to; i++) set.add(i);
    });
    const full = storedObjects(store);
    assert.ok(full - before > 4000, `${full - before} objects`);
    const committedBefore = server.taskCounters.committed;
    await removeBinding(server, "set");
    assert.ok(server.taskCounters.committed - committedBefore >= 3, "the removal went on in background tasks");
    assert.equal(storedObjects(store), before);
  });

  it("leaves nothing of a list or a deque once they are emptied and removed", async () => {
    const store = new MemoryDataStore();
    const server = await testServer({ app: App, store }, import.meta.url);
    const before = storedObjects(store);
    await server.run("create", (ctx) => {
      ctx.data.setBinding("list", new ScalableList<number>({ maxLeafItems: 8, maxChildren: 4 }));
      ctx.data.setBinding("deque", new ScalableDeque<number>({ segmentCapacity: 4 }));
    });
    const empty = storedObjects(store);
    await inBatches(server, 5000, 2500, (ctx, from, to) => {
      const list = ctx.data.getBinding<ScalableList<number>>("list");
      const deque = ctx.data.getBinding<ScalableDeque<number>>("deque");
      for (let i = from; i < to; i++) {
        list.insert(Math.floor(list.size() / 2), i);
        if (i % 2 === 0) deque.pushBack(i);
        else deque.pushFront(i);
      }
    });
    assert.ok(storedObjects(store) - empty > 2000);
    await inBatches(server, 5000, 2500, (ctx, from, to) => {
      const list = ctx.data.getBinding<ScalableList<number>>("list");
      const deque = ctx.data.getBinding<ScalableDeque<number>>("deque");
      for (let i = from; i < to; i++) {
        list.remove(Math.floor(list.size() / 3));
        if (i % 2 === 0) deque.popFront();
        else deque.popBack();
      }
    });
    assert.equal(storedObjects(store), empty, "emptied: only the collections' own first objects remain");
    // Filled again, then removed whole.
    await inBatches(server, 3000, 3000, (ctx, from, to) => {
      for (let i = from; i < to; i++) {
        ctx.data.getBinding<ScalableList<number>>("list").push(i);
        ctx.data.getBinding<ScalableDeque<number>>("deque").pushBack(i);
      }
    });
    await removeBinding(server, "list");
    await removeBinding(server, "deque");
    assert.equal(storedObjects(store), before);
  });
});
