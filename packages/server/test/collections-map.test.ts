// ScalableMap and ScalableSet: behaviour against a JS Map/Set model, edge cases of keys and values,
// large sizes that force splits and merges, iterators kept across tasks under concurrent change,
// and persistence across a restart on LMDB.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  ManagedObjectError,
  MemoryDataStore,
  ObjectNotFoundError,
  ScalableMap,
  ScalableSet,
  TransactionNotActiveError,
  managed,
  type Ref,
  type ScalableIterator,
  type ScalableKey,
  type Server,
  type Task,
  type TaskContext,
} from "shardless";
import { hashKey } from "../src/collections/keys.ts";
import { failure, tempDir, testServer } from "./helpers.ts";

@managed("collections-map.App")
class App {
  initialize(): void {}
}

@managed("collections-map.Player")
class Player {
  constructor(public name: string) {}
}

/** Holds a map by Ref, as game objects do. */
@managed("collections-map.Guild")
class Guild {
  constructor(public members: Ref<ScalableMap<string, Ref<Player>>>) {}
}

/** A task that walks a map in slices, keeping its iterator between runs. */
@managed("collections-map.Walker")
class Walker implements Task {
  seen: string[] = [];
  runs = 0;
  constructor(
    public cursor: Ref<ScalableIterator<[string, number]>>,
    public perRun: number,
  ) {}

  run(ctx: TaskContext): void {
    this.runs++;
    const cursor = this.cursor.get();
    for (let n = 0; n < this.perRun && ctx.tasks.shouldContinue(); n++) {
      const step = cursor.next();
      if (step.done) {
        ctx.data.removeObject(cursor);
        return;
      }
      this.seen.push(step.value[0]);
    }
    ctx.tasks.scheduleTask(this);
  }
}

/** Stored objects in the store: ids are handed out in order and never reused. */
function storedObjects(store: MemoryDataStore): number {
  const next = store.readMeta()?.nextObjectId ?? 0n;
  let count = 0;
  for (let id = 1n; id < next; id++) if (store.getObject(id) !== undefined) count++;
  return count;
}


function map<K extends ScalableKey = string, V = unknown>(ctx: TaskContext, name = "map"): ScalableMap<K, V> {
  return ctx.data.getBinding<ScalableMap<K, V>>(name);
}

async function withMap(server: Server, options: ConstructorParameters<typeof ScalableMap>[0] = {}, name = "map"): Promise<void> {
  await server.run("create", (ctx) => ctx.data.setBinding(name, new ScalableMap(options)));
}

// Pairs of keys whose 32-bit hashes are equal (found by search; asserted below).
const COLLIDING: [ScalableKey, ScalableKey][] = [
  [141695694, 533314969],
  ["player:5kbmuo", "player:evu4et"],
  [223440773, "player:84lnmg"],
];

describe("ScalableMap", () => {
  it("gets, sets, overwrites and deletes like a Map, across tasks", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await withMap(server);
    assert.deepEqual(
      await server.run("empty", (ctx) => [map(ctx).size(), map(ctx).isEmpty(), map(ctx).get("a"), map(ctx).has("a"), map(ctx).delete("a"), [...map(ctx)]]),
      [0, true, undefined, false, false, []],
    );
    await server.run("put", (ctx) => {
      assert.equal(map(ctx).set("a", 1), map(ctx), "set returns the map");
      map(ctx).set("b", { nested: [1, 2] });
    });
    assert.deepEqual(await server.run("read", (ctx) => [map(ctx).get("a"), map(ctx).get("b"), map(ctx).size(), map(ctx).isEmpty()]), [1, { nested: [1, 2] }, 2, false]);
    await server.run("overwrite", (ctx) => map(ctx).set("a", "one"));
    assert.deepEqual(await server.run("delete", (ctx) => [map(ctx).get("a"), map(ctx).delete("b"), map(ctx).delete("b"), map(ctx).size()]), ["one", true, false, 1]);
  });

  it("keeps 1, '1' and 1n apart, folds -0 into 0, and finds NaN", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await withMap(server);
    await server.run("put", (ctx) => {
      const m = map<ScalableKey>(ctx);
      m.set(1, "number").set("1", "string").set(1n, "bigint").set(-0, "zero").set(NaN, "nan");
    });
    const read = await server.run("read", (ctx) => {
      const m = map<ScalableKey>(ctx);
      return { one: [m.get(1), m.get("1"), m.get(1n)], zero: [m.get(0), m.get(-0), Object.is([...m.keys()].find((key) => key === 0), 0)], nan: m.get(NaN), size: m.size() };
    });
    assert.deepEqual(read, { one: ["number", "string", "bigint"], zero: ["zero", "zero", true], nan: "nan", size: 5 });
  });

  it("refuses keys it cannot store and managed objects as values, naming the call", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await withMap(server);
    for (const key of [null, undefined, {}, true, Symbol("s"), "\ud800", 2n ** 64n]) {
      const cause = await failure(server.run("bad key", (ctx) => map<ScalableKey>(ctx).set(key as ScalableKey, 1)));
      assert.ok(cause instanceof ManagedObjectError && /ScalableMap\.set/.test(cause.message), String(cause));
    }
    const cause = await failure(server.run("managed value", (ctx) => map(ctx).set("p", new Player("ann"))));
    assert.ok(cause instanceof ManagedObjectError && /store a Ref/.test(cause.message));
    assert.throws(() => new ScalableMap(), TransactionNotActiveError);
    const range = await failure(server.run("bad option", (ctx) => ctx.data.setBinding("tiny", new ScalableMap({ maxBucketEntries: 2 }))));
    assert.ok(range instanceof RangeError && /maxBucketEntries/.test(range.message));
  });

  it("stores Refs as values, and is itself held by Ref inside another managed object", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await server.run("create", (ctx) => {
      const members = new ScalableMap<string, Ref<Player>>();
      members.set("ann", ctx.data.createReference(new Player("Ann")));
      ctx.data.setBinding("guild", new Guild(ctx.data.createReference(members)));
    });
    assert.equal(await server.run("read", (ctx) => ctx.data.getBinding<Guild>("guild").members.get().get("ann")!.get().name), "Ann");
  });

  it("saves a value changed in place, as a field of a managed object would be", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await withMap(server);
    await server.run("put", (ctx) => map<string, { score: number }>(ctx).set("ann", { score: 1 }));
    await server.run("bump", (ctx) => map<string, { score: number }>(ctx).get("ann")!.score++);
    assert.equal(await server.run("read", (ctx) => map<string, { score: number }>(ctx).get("ann")!.score), 2);
  });

  it("holds keys whose hashes collide, and iterates them once each", async () => {
    for (const [a, b] of COLLIDING) assert.equal(hashKey(a), hashKey(b), `${String(a)} and ${String(b)} collide`);
    const server = await testServer({ app: App }, import.meta.url);
    await withMap(server, { maxBucketEntries: 8, minConcurrency: 1 });
    const keys = COLLIDING.flat();
    await server.run("put", (ctx) => {
      keys.forEach((key, index) => map<ScalableKey>(ctx).set(key, index));
      // Enough other keys to split the trie around the colliding ones.
      for (let i = 0; i < 300; i++) map<ScalableKey>(ctx).set(`filler${i}`, -1);
    });
    await server.run("delete one of each pair", (ctx) => {
      for (const [a] of COLLIDING) assert.ok(map<ScalableKey>(ctx).delete(a));
    });
    const read = await server.run("read", (ctx) => {
      const m = map<ScalableKey>(ctx);
      return { values: keys.map((key) => m.get(key)), iterated: [...m.keys()].filter((key) => keys.includes(key)).sort() };
    });
    assert.deepEqual(read.values, [undefined, 1, undefined, 3, undefined, 5]);
    assert.deepEqual(read.iterated, COLLIDING.map(([, b]) => b).sort());
  });

  it("matches a JS Map under random operations across tasks, with tiny buckets that split and merge", async () => {
    const store = new MemoryDataStore();
    const server = await testServer({ app: App, store }, import.meta.url);
    const key = fc.oneof(fc.integer({ min: -20, max: 20 }), fc.constantFrom("a", "b", "", "1", "🙂", "k".repeat(40)), fc.bigInt({ min: -5n, max: 5n }), fc.constantFrom(NaN, 0.5, -0));
    const op = fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant("set" as const), key, value: fc.integer() }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("delete" as const), key }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { maxLength: 40 }), { minLength: 1, maxLength: 6 }), fc.constantFrom(1, 16), async (tasks, minConcurrency) => {
        let model = new Map<ScalableKey, number>();
        const baseline = storedObjects(store);
        await withMap(server, { maxBucketEntries: 8, minConcurrency });
        for (const ops of tasks) {
          model = await server.run("ops", (ctx) => {
            const m = map<ScalableKey, number>(ctx);
            const next = new Map(model);
            for (const step of ops) {
              if (step.kind === "set") {
                m.set(step.key, step.value);
                next.set(step.key, step.value);
              } else if (step.kind === "delete") {
                assert.equal(m.delete(step.key), next.delete(step.key));
              } else {
                m.clear();
                next.clear();
              }
              assert.equal(m.get(step.kind === "clear" ? 0 : step.key), next.get(step.kind === "clear" ? 0 : step.key));
            }
            return next;
          });
          const seen = await server.run("check", (ctx) => {
            const m = map<ScalableKey, number>(ctx);
            for (const [k, v] of model) assert.equal(m.get(k), v);
            return { size: m.size(), entries: [...m.entries()] };
          });
          assert.equal(seen.size, model.size);
          assert.equal(seen.entries.length, model.size, "iteration returns each entry once");
          assert.deepEqual(new Map(seen.entries), model);
        }
        await server.run("remove", (ctx) => {
          ctx.data.removeObject(map(ctx));
          ctx.data.removeBinding("map");
        });
        await server.whenIdle();
        assert.equal(storedObjects(store), baseline, "removing the map removed every internal object");
      }),
      { numRuns: 60 },
    );
  });

  it("splits into many buckets for 20,000 entries and merges back as they are removed", async () => {
    const store = new MemoryDataStore();
    const server = await testServer({ app: App, store }, import.meta.url);
    await withMap(server);
    const empty = storedObjects(store);
    const batch = 4000;
    for (let from = 0; from < 20_000; from += batch) {
      await server.run("insert", (ctx) => {
        for (let i = from; i < from + batch; i++) map<number, string>(ctx).set(i, `v${i}`);
      });
    }
    const full = storedObjects(store);
    assert.ok(full > empty + 200, `20,000 entries spread over many buckets (${full} objects)`);
    const check = await server.run("check", (ctx) => {
      const m = map<number, string>(ctx);
      let wrong = 0;
      for (let i = 0; i < 20_000; i++) if (m.get(i) !== `v${i}`) wrong++;
      const keys = [...m.keys()];
      return { wrong, size: m.size(), iterated: keys.length, distinct: new Set(keys).size };
    });
    assert.deepEqual(check, { wrong: 0, size: 20_000, iterated: 20_000, distinct: 20_000 });
    for (let from = 0; from < 20_000; from += batch) {
      await server.run("remove", (ctx) => {
        for (let i = from; i < from + batch; i++) assert.ok(map<number, string>(ctx).delete(i));
      });
    }
    assert.equal(await server.run("size", (ctx) => map(ctx).size()), 0);
    assert.equal(storedObjects(store), empty, "every bucket split off merged back");
  });

  it("iterates while the same task deletes what it has seen", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await withMap(server, { maxBucketEntries: 8 });
    await server.run("fill", (ctx) => {
      for (let i = 0; i < 500; i++) map<number, number>(ctx).set(i, i);
    });
    const visited = await server.run("drain", (ctx) => {
      const m = map<number, number>(ctx);
      let count = 0;
      for (const key of m.keys()) {
        m.delete(key);
        count++;
      }
      return [count, m.size()];
    });
    assert.deepEqual(visited, [500, 0]);
  });

  it("offers forEach, keys, values and entries in one order", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await withMap(server);
    const result = await server.run("walk", (ctx) => {
      const m = map<string, number>(ctx);
      for (let i = 0; i < 100; i++) m.set(`k${i}`, i);
      const viaForEach: [string, number][] = [];
      m.forEach((value, key, self) => {
        assert.equal(self, m);
        viaForEach.push([key, value]);
      });
      return { viaForEach, entries: [...m.entries()], keys: [...m.keys()], values: [...m.values()] };
    });
    assert.deepEqual(result.viaForEach, result.entries);
    assert.deepEqual(result.keys, result.entries.map(([key]) => key));
    assert.deepEqual(result.values, result.entries.map(([, value]) => value));
    assert.equal(new Set(result.keys).size, 100);
  });

  it("keeps an iterator in a task that walks in slices, under concurrent changes: none twice, stable ones all", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await withMap(server, { maxBucketEntries: 16 });
    await server.run("fill", (ctx) => {
      for (let i = 0; i < 3000; i++) map<string, number>(ctx).set(`k${i}`, i);
    });
    // Walk 200 entries per task; between the walker's runs, other tasks add, remove and re-add keys.
    await server.run("start walker", (ctx) => {
      const cursor = ctx.data.createReference(map<string, number>(ctx).iterator());
      ctx.data.setBinding("walker", new Walker(cursor, 200));
    });
    await server.run("first slice", (ctx) => ctx.data.getBinding<Walker>("walker").run(ctx));
    const churned = new Set<string>();
    for (let round = 0; round < 20; round++) {
      await server.run("churn", (ctx) => {
        const m = map<string, number>(ctx);
        for (let i = round * 50; i < round * 50 + 50; i++) {
          m.delete(`k${i * 3}`);
          m.set(`new${round}-${i}`, -1);
          m.set(`k${i * 3}`, i); // removed and added back: may be seen, never twice
          churned.add(`k${i * 3}`);
          churned.add(`new${round}-${i}`);
        }
        for (let i = 2000 + round * 20; i < 2000 + round * 20 + 20; i++) {
          m.delete(`k${i}`);
          churned.add(`k${i}`);
        }
      });
    }
    await server.whenIdle();
    const walker = await server.run("result", (ctx) => {
      const w = ctx.data.getBinding<Walker>("walker");
      return { seen: w.seen, runs: w.runs };
    });
    assert.equal(new Set(walker.seen).size, walker.seen.length, "no entry seen twice");
    for (let i = 0; i < 3000; i++) {
      if (!churned.has(`k${i}`)) assert.ok(walker.seen.includes(`k${i}`), `k${i}, present throughout, was seen`);
    }
    assert.ok(walker.runs >= 15, `the walk took many tasks (${walker.runs})`);
    const cause = await failure(server.run("cursor removed", (ctx) => ctx.data.getBinding<Walker>("walker").cursor.get()));
    assert.ok(cause instanceof ObjectNotFoundError, "the walker removed its iterator at the end");
  });

  it("clears a large map, removing its buckets in the background", async () => {
    const store = new MemoryDataStore();
    const server = await testServer({ app: App, store }, import.meta.url);
    await withMap(server, { maxBucketEntries: 8 });
    const empty = storedObjects(store);
    await server.run("fill", (ctx) => {
      for (let i = 0; i < 3000; i++) map<number, number>(ctx).set(i, i);
    });
    await server.run("clear", (ctx) => map(ctx).clear());
    assert.deepEqual(await server.run("after", (ctx) => [map(ctx).size(), map<number>(ctx).get(5)]), [0, undefined]);
    await server.whenIdle();
    assert.equal(storedObjects(store), empty);
    await server.run("reuse", (ctx) => map<number, number>(ctx).set(1, 1));
    assert.equal(await server.run("size", (ctx) => map(ctx).size()), 1);
  });

  it("survives a restart on LMDB, with an iterator continued after it", async () => {
    const dataDir = tempDir();
    const first = await testServer({ app: App, durability: "sync", dataDir }, import.meta.url);
    await withMap(first, { maxBucketEntries: 16 });
    await first.run("fill", (ctx) => {
      for (let i = 0; i < 2000; i++) map<string, number>(ctx).set(`k${i}`, i);
      const set = new ScalableSet<number>({ minConcurrency: 1 });
      for (let i = 0; i < 300; i++) set.add(i);
      ctx.data.setBinding("set", set);
    });
    const before = await first.run("half walk", (ctx) => {
      const cursor = map<string, number>(ctx).iterator();
      ctx.data.setBinding("cursor", cursor);
      return Array.from({ length: 700 }, () => cursor.next().value![0]);
    });
    await first.close();
    const second = await testServer({ app: App, durability: "sync", dataDir }, import.meta.url);
    const after = await second.run("rest of walk", (ctx) => {
      const cursor = ctx.data.getBinding<ScalableIterator<[string, number]>>("cursor");
      return [...cursor].map(([key]) => key);
    });
    assert.equal(before.length + after.length, 2000);
    assert.equal(new Set([...before, ...after]).size, 2000);
    const check = await second.run("check", (ctx) => {
      const m = map<string, number>(ctx);
      const set = ctx.data.getBinding<ScalableSet<number>>("set");
      return [m.size(), m.get("k1234"), set.size(), set.has(299), set.has(300)];
    });
    assert.deepEqual(check, [2000, 1234, 300, true, false]);
  });
});

describe("ScalableSet", () => {
  it("adds, finds and deletes members, and matches a JS Set under random operations", async () => {
    const store = new MemoryDataStore();
    const server = await testServer({ app: App, store }, import.meta.url);
    const baseline = storedObjects(store);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ add: fc.boolean(), member: fc.oneof(fc.integer({ min: 0, max: 60 }), fc.string({ maxLength: 2 })) }), { maxLength: 150 }), async (ops) => {
        const model = new Set<ScalableKey>();
        await server.run("ops", (ctx) => {
          const set = new ScalableSet<ScalableKey>({ maxBucketEntries: 8, minConcurrency: 1 });
          ctx.data.setBinding("set", set);
          for (const { add, member } of ops) {
            if (add) assert.equal(set.add(member), set);
            else assert.equal(set.delete(member), model.has(member));
            if (add) model.add(member);
            else model.delete(member);
          }
        });
        const seen = await server.run("check", (ctx) => {
          const set = ctx.data.getBinding<ScalableSet<ScalableKey>>("set");
          const viaForEach: ScalableKey[] = [];
          set.forEach((member) => viaForEach.push(member));
          return { size: set.size(), members: [...set], viaForEach, has: [...model].every((member) => set.has(member)) };
        });
        assert.equal(seen.size, model.size);
        assert.ok(seen.has);
        assert.deepEqual(new Set(seen.members), model);
        assert.equal(seen.members.length, model.size);
        assert.deepEqual(seen.viaForEach, seen.members);
        await server.run("remove", (ctx) => {
          ctx.data.removeObject(ctx.data.getBinding("set"));
          ctx.data.removeBinding("set");
        });
        await server.whenIdle();
        assert.equal(storedObjects(store), baseline);
      }),
      { numRuns: 40 },
    );
  });
});
