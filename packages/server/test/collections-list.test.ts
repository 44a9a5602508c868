// ScalableList: indexed behaviour against an array model with tiny nodes (deep trees, many splits
// and merges), large sizes, and which writers conflict.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ManagedObjectError, MemoryDataStore, ScalableList, TaskFailedError, TransactionConflictError, managed, type Server, type TaskContext } from "shardless";
import { testKernel, testServer } from "./helpers.ts";

@managed("collections-list.App")
class App {
  initialize(): void {}
}

@managed("collections-list.Item")
class Item {}

function list<V = number>(ctx: TaskContext): ScalableList<V> {
  return ctx.data.getBinding<ScalableList<V>>("list");
}

async function withList(server: Server, options: ConstructorParameters<typeof ScalableList>[0] = {}): Promise<void> {
  await server.run("create", (ctx) => ctx.data.setBinding("list", new ScalableList(options)));
}

function storedObjects(store: MemoryDataStore): number {
  const next = store.readMeta()?.nextObjectId ?? 0n;
  let count = 0;
  for (let id = 1n; id < next; id++) if (store.getObject(id) !== undefined) count++;
  return count;
}

async function cause(promise: Promise<unknown>): Promise<unknown> {
  const error = await promise.then(
    () => assert.fail("the task should have failed"),
    (rejection: unknown) => rejection,
  );
  assert.ok(error instanceof TaskFailedError);
  return error.cause;
}

describe("ScalableList", () => {
  it("gets, sets, pushes, inserts and removes by index", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await withList(server);
    assert.deepEqual(await server.run("empty", (ctx) => [list(ctx).size(), list(ctx).isEmpty(), [...list(ctx)]]), [0, true, []]);
    const result = await server.run("edit", (ctx) => {
      const l = list<string>(ctx);
      assert.equal(l.push("b"), 1);
      assert.equal(l.push("d"), 2);
      l.insert(0, "a");
      l.insert(2, "c");
      l.insert(4, "e");
      assert.equal(l.set(1, "B"), "b");
      const removed = l.remove(3);
      const each: string[] = [];
      l.forEach((value, index) => each.push(`${index}:${value}`));
      return { removed, all: [...l], get: l.get(1), size: l.size(), each };
    });
    assert.deepEqual(result, { removed: "d", all: ["a", "B", "c", "e"], get: "B", size: 4, each: ["0:a", "1:B", "2:c", "3:e"] });
  });

  it("refuses indices out of range and managed objects as elements", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await withList(server);
    await server.run("one", (ctx) => list(ctx).push(1));
    for (const body of [(l: ScalableList<number>) => l.get(1), (l: ScalableList<number>) => l.get(-1), (l: ScalableList<number>) => l.get(0.5), (l: ScalableList<number>) => l.set(1, 0), (l: ScalableList<number>) => l.insert(2, 0), (l: ScalableList<number>) => l.remove(1)]) {
      assert.ok((await cause(server.run("bad index", (ctx) => body(list(ctx))))) instanceof RangeError);
    }
    assert.ok((await cause(server.run("managed", (ctx) => list<unknown>(ctx).push(new Item())))) instanceof ManagedObjectError);
  });

  it("matches an array under random operations across tasks, with nodes small enough to split and merge often", async () => {
    const store = new MemoryDataStore();
    const server = await testServer({ app: App, store }, import.meta.url);
    const op = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), value: fc.integer() }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("remove" as const), at: fc.nat() }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.integer() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { maxLength: 80 }), { minLength: 1, maxLength: 5 }), async (tasks) => {
        const baseline = storedObjects(store);
        await withList(server, { maxLeafItems: 4, maxChildren: 4 });
        let model: number[] = [];
        for (const ops of tasks) {
          model = await server.run("ops", (ctx) => {
            const l = list(ctx);
            const next = [...model];
            for (const step of ops) {
              if (step.kind === "insert") {
                const at = step.at % (next.length + 1);
                l.insert(at, step.value);
                next.splice(at, 0, step.value);
              } else if (step.kind === "clear") {
                l.clear();
                next.length = 0;
              } else if (next.length > 0) {
                const at = step.at % next.length;
                if (step.kind === "remove") assert.equal(l.remove(at), next.splice(at, 1)[0]);
                else assert.equal(l.set(at, step.value), next.splice(at, 1, step.value)[0]);
              }
            }
            return next;
          });
          const seen = await server.run("check", (ctx) => ({ all: [...list(ctx)], byIndex: model.map((_, i) => list(ctx).get(i)), size: list(ctx).size() }));
          assert.deepEqual(seen, { all: model, byIndex: model, size: model.length });
        }
        await server.run("remove", (ctx) => {
          ctx.data.removeObject(list(ctx));
          ctx.data.removeBinding("list");
        });
        await server.whenIdle();
        assert.equal(storedObjects(store), baseline);
      }),
      { numRuns: 60 },
    );
  });

  it("holds 20,000 elements in many nodes and shrinks back as they are removed", async () => {
    const store = new MemoryDataStore();
    const server = await testServer({ app: App, store }, import.meta.url);
    await withList(server);
    const empty = storedObjects(store);
    for (let batch = 0; batch < 4; batch++) {
      await server.run("push", (ctx) => {
        for (let i = batch * 5000; i < (batch + 1) * 5000; i++) list(ctx).push(i);
      });
    }
    assert.ok(storedObjects(store) - empty > 300, "20,000 elements in many leaves");
    const check = await server.run("check", (ctx) => {
      const l = list(ctx);
      let wrong = 0;
      for (let i = 0; i < 20_000; i += 7) if (l.get(i) !== i) wrong++;
      return [wrong, l.size()];
    });
    assert.deepEqual(check, [0, 20_000]);
    for (let batch = 0; batch < 4; batch++) {
      await server.run("remove from the middle", (ctx) => {
        const l = list(ctx);
        for (let i = 0; i < 5000; i++) l.remove(Math.floor(l.size() / 2));
      });
    }
    assert.equal(storedObjects(store), empty);
  });

  it("lets tasks setting elements in different leaves commit side by side; length changes conflict", async () => {
    const { kernel } = testKernel();
    await kernel.run("create", (ctx) => {
      const l = new ScalableList<number>({ maxLeafItems: 16 });
      for (let i = 0; i < 1000; i++) l.push(i);
      ctx.data.setBinding("list", l);
    });
    const setters = [0, 250, 500, 750, 999].map((index) => {
      const tx = kernel.openTransaction(`set ${index}`);
      kernel.execute(tx, "set", (ctx) => list(ctx).set(index, -index - 1));
      return tx;
    });
    await Promise.all(setters.map((tx) => tx.commit()));
    assert.deepEqual(await kernel.run("read", (ctx) => [0, 250, 500, 750, 999].map((i) => list(ctx).get(i))), [-1, -251, -501, -751, -1000]);
    const first = kernel.openTransaction("push");
    const second = kernel.openTransaction("insert");
    kernel.execute(first, "push", (ctx) => list(ctx).push(1));
    kernel.execute(second, "insert", (ctx) => list(ctx).insert(0, 1));
    await first.commit();
    assert.throws(() => second.commit(), TransactionConflictError);
  });
});
