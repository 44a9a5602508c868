// ScalableDeque: behaviour against an array model, both ends written at once without conflicts,
// and persistence across a restart on LMDB.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ManagedObjectError, ScalableDeque, ScalableList, TaskFailedError, TransactionConflictError, managed, type Ref, type Server, type TaskContext } from "shardless";
import { tempDir, testKernel, testServer } from "./helpers.ts";

@managed("collections-deque.App")
class App {
  initialize(): void {}
}

@managed("collections-deque.Item")
class Item {
  constructor(public name: string) {}
}

function deque<V = number>(ctx: TaskContext): ScalableDeque<V> {
  return ctx.data.getBinding<ScalableDeque<V>>("deque");
}

async function withDeque(server: Server, segmentCapacity?: number): Promise<void> {
  await server.run("create", (ctx) => ctx.data.setBinding("deque", new ScalableDeque(segmentCapacity === undefined ? {} : { segmentCapacity })));
}

describe("ScalableDeque", () => {
  it("pushes, pops and peeks at both ends, and is empty again after", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await withDeque(server, 4);
    assert.deepEqual(
      await server.run("empty", (ctx) => {
        const d = deque(ctx);
        return [d.size(), d.isEmpty(), d.popFront(), d.popBack(), d.peekFront(), d.peekBack(), [...d]];
      }),
      [0, true, undefined, undefined, undefined, undefined, []],
    );
    await server.run("single", (ctx) => deque(ctx).pushBack(7));
    assert.deepEqual(await server.run("peek single", (ctx) => [deque(ctx).peekFront(), deque(ctx).peekBack(), deque(ctx).size()]), [7, 7, 1]);
    assert.equal(await server.run("pop single", (ctx) => deque(ctx).popFront()), 7);
    await server.run("fill", (ctx) => {
      for (let i = 1; i <= 10; i++) deque(ctx).pushBack(i);
      for (let i = 0; i >= -9; i--) deque(ctx).pushFront(i);
    });
    assert.deepEqual(await server.run("order", (ctx) => [...deque(ctx)]), Array.from({ length: 20 }, (_, i) => i - 9));
    const popped = await server.run("drain", (ctx) => {
      const d = deque(ctx);
      const out: (number | undefined)[] = [d.peekFront(), d.peekBack(), d.size()];
      while (!d.isEmpty()) out.push(d.popFront(), d.popBack());
      out.push(d.size());
      return out;
    });
    assert.deepEqual(popped.slice(0, 3), [-9, 10, 20]);
    assert.deepEqual(popped.slice(3, 7), [-9, 10, -8, 9]);
    assert.equal(popped.at(-1), 0);
  });

  it("matches an array under random operations across tasks, with tiny segments", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    const op = fc.oneof(
      fc.record({ kind: fc.constantFrom("pushBack" as const, "pushFront" as const), value: fc.integer() }),
      fc.record({ kind: fc.constantFrom("popBack" as const, "popFront" as const, "peekFront" as const, "peekBack" as const, "clear" as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { maxLength: 40 }), { minLength: 1, maxLength: 5 }), async (tasks) => {
        await withDeque(server, 4);
        let model: number[] = [];
        for (const ops of tasks) {
          model = await server.run("ops", (ctx) => {
            const d = deque(ctx);
            const next = [...model];
            for (const step of ops) {
              switch (step.kind) {
                case "pushBack":
                  d.pushBack(step.value);
                  next.push(step.value);
                  break;
                case "pushFront":
                  d.pushFront(step.value);
                  next.unshift(step.value);
                  break;
                case "popBack":
                  assert.equal(d.popBack(), next.pop());
                  break;
                case "popFront":
                  assert.equal(d.popFront(), next.shift());
                  break;
                case "peekFront":
                  assert.equal(d.peekFront(), next[0]);
                  break;
                case "peekBack":
                  assert.equal(d.peekBack(), next.at(-1));
                  break;
                case "clear":
                  d.clear();
                  next.length = 0;
              }
            }
            return next;
          });
          const seen = await server.run("check", (ctx) => {
            const values: number[] = [];
            deque(ctx).forEach((value) => values.push(value));
            return { size: deque(ctx).size(), empty: deque(ctx).isEmpty(), values };
          });
          assert.deepEqual(seen, { size: model.length, empty: model.length === 0, values: model });
        }
      }),
      { numRuns: 60 },
    );
  });

  it("stores Refs, and refuses managed objects held directly", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await withDeque(server);
    await server.run("push", (ctx) => deque<Ref<Item>>(ctx).pushBack(ctx.data.createReference(new Item("sword"))));
    assert.equal(await server.run("pop", (ctx) => deque<Ref<Item>>(ctx).popFront()!.get().name), "sword");
    const error = await server.run("bad", (ctx) => deque<unknown>(ctx).pushFront(new Item("shield"))).catch((rejection: unknown) => rejection);
    assert.ok(error instanceof TaskFailedError && error.cause instanceof ManagedObjectError);
  });

  it("lets tasks at the front and tasks at the back commit side by side once it holds more than two segments", async () => {
    const { kernel } = testKernel();
    await kernel.run("create", (ctx) => {
      const d = new ScalableDeque<number>({ segmentCapacity: 8 });
      for (let i = 0; i < 40; i++) d.pushBack(i);
      ctx.data.setBinding("deque", d);
    });
    // 300 rounds, each a producer and a consumer on the same snapshot: the producer appends at the
    // back, the consumer takes from the front, crossing segment boundaries on both sides.
    let conflicts = 0;
    const taken: number[] = [];
    for (let round = 0; round < 300; round++) {
      const producer = kernel.openTransaction("producer");
      const consumer = kernel.openTransaction("consumer");
      kernel.execute(producer, "producer", (ctx) => deque(ctx).pushBack(40 + round));
      kernel.execute(consumer, "consumer", (ctx) => taken.push(deque(ctx).popFront()!));
      for (const tx of [producer, consumer]) {
        try {
          await tx.commit();
        } catch (error) {
          if (!(error instanceof TransactionConflictError)) throw error;
          conflicts++;
        }
      }
    }
    assert.equal(conflicts, 0);
    assert.deepEqual(taken, Array.from({ length: 300 }, (_, i) => i));
    assert.equal(await kernel.run("size", (ctx) => deque(ctx).size()), 40);
  });

  it("makes tasks at the same end conflict, as they must", async () => {
    const { kernel } = testKernel();
    await kernel.run("create", (ctx) => ctx.data.setBinding("deque", new ScalableDeque<number>()));
    const first = kernel.openTransaction("first");
    const second = kernel.openTransaction("second");
    kernel.execute(first, "first", (ctx) => deque(ctx).pushBack(1));
    kernel.execute(second, "second", (ctx) => deque(ctx).pushBack(2));
    await first.commit();
    assert.throws(() => second.commit(), TransactionConflictError);
  });

  it("survives a restart on LMDB, and so does a ScalableList", async () => {
    const dataDir = tempDir();
    const first = await testServer({ app: App, durability: "sync", dataDir }, import.meta.url);
    await first.run("fill", (ctx) => {
      const d = new ScalableDeque<string>({ segmentCapacity: 4 });
      const list = new ScalableList<string>({ maxLeafItems: 4, maxChildren: 4 });
      for (let i = 0; i < 50; i++) {
        d.pushBack(`b${i}`);
        d.pushFront(`f${i}`);
        list.insert(Math.floor(list.size() / 2), `x${i}`);
      }
      ctx.data.setBinding("deque", d);
      ctx.data.setBinding("list", list);
    });
    const listBefore = await first.run("read", (ctx) => [...ctx.data.getBinding<ScalableList<string>>("list")]);
    await first.close();
    const second = await testServer({ app: App, durability: "sync", dataDir }, import.meta.url);
    const after = await second.run("read", (ctx) => {
      const d = deque<string>(ctx);
      const list = ctx.data.getBinding<ScalableList<string>>("list");
      return { size: d.size(), front: d.popFront(), back: d.popBack(), list: [...list], at: list.get(25) };
    });
    assert.deepEqual(after, { size: 100, front: "f49", back: "b49", list: listBefore, at: listBefore[25] });
  });
});
