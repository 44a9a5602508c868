// The decoded-object cache: an object read and left as it was is taken by the next task instead of
// decoded again; anything a task changed, might have changed, or added outside its stored fields is
// decoded afresh, so no task ever sees the cache.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, managed, resolveConfig, type Ref } from "shardless";
import { ObjectCache } from "../src/kernel/object-cache.ts";
import { failure, testKernel } from "./helpers.ts";

@managed("cache.Counter")
class Counter {
  constructor(
    public count = 0,
    public notes: string[] = [],
  ) {}
}

/** Holds only values that cannot change or be shared, so a written instance may be kept. */
@managed("cache.Point")
class Point {
  constructor(
    public x = 0,
    public label = "",
    public next: Ref<Point> | null = null,
  ) {}
}

type TestKernel = ReturnType<typeof testKernel>["kernel"];

/** One task that writes the Point bound to "p": its coordinate, a label, and a Ref to itself. */
function writePoint(kernel: TestKernel, x: number): Promise<Point> {
  return kernel.run("write", (ctx) => {
    const point = ctx.data.getBinding<Point>("p");
    point.x = x;
    point.label = `at ${x}`;
    point.next = ctx.data.createReference(point);
    return point;
  });
}

/**
 * Binds a Point to "p" and writes it until the cache keeps the written instance (an object written
 * again soon gets in); returns the last coordinate written.
 */
async function warmPoint(kernel: TestKernel): Promise<number> {
  await kernel.run("seed", (ctx) => ctx.data.setBinding("p", new Point()));
  for (let x = 1; x <= 2; x++) {
    const written = await writePoint(kernel, x);
    if ((await kernel.run("read", (ctx) => ctx.data.getBinding<Point>("p"))) === written) return x;
  }
  throw new Error("the written instance was not kept on its second write");
}

async function seed(kernel: TestKernel, names: string[] = ["a"]): Promise<void> {
  await kernel.run("seed", (ctx) => {
    for (const name of names) ctx.data.setBinding(name, new Counter());
  });
}

function cacheOf(kernel: TestKernel) {
  const cache = kernel.runtime.objects;
  assert.ok(cache !== undefined);
  return cache;
}

/** The instance a task gets for binding `name`, and its count. */
function read(kernel: TestKernel, name = "a"): Promise<Counter> {
  return kernel.run("read", (ctx) => ctx.data.getBinding<Counter>(name));
}

describe("decoded-object cache", () => {
  it("hands an object that a task only read to the next task instead of decoding it again", async () => {
    const { kernel } = testKernel();
    await seed(kernel);
    const first = await read(kernel);
    const hitsBefore = cacheOf(kernel).hits;
    const second = await read(kernel);
    assert.equal(second, first);
    assert.equal(cacheOf(kernel).hits, hitsBefore + 1);
  });

  it("decodes afresh an object that a task wrote, and the next task sees the write", async () => {
    const { kernel } = testKernel();
    await seed(kernel);
    const before = await read(kernel);
    await kernel.run("write", (ctx) => {
      const counter = ctx.data.getBinding<Counter>("a");
      counter.count = 5;
      counter.notes.push("five");
    });
    const after = await read(kernel);
    assert.notEqual(after, before);
    assert.deepEqual([after.count, after.notes], [5, ["five"]]);
  });

  it("hands an object tasks keep writing to the next task, when it holds only values that cannot be shared", async () => {
    const { kernel } = testKernel();
    let x = await warmPoint(kernel);
    for (let more = 0; more < 3; more++) {
      const written = await writePoint(kernel, ++x);
      const hitsBefore = cacheOf(kernel).hits;
      const seen = await kernel.run("read", (ctx) => {
        const point = ctx.data.getBinding<Point>("p");
        return { point, x: point.x, label: point.label, nextIsItself: point.next?.get() === point };
      });
      assert.equal(seen.point, written);
      assert.deepEqual([seen.x, seen.label, seen.nextIsItself], [x, `at ${x}`, true]);
      assert.equal(cacheOf(kernel).hits, hitsBefore + 1);
    }
  });

  it("never lends out a written instance whose commit lost a conflict or whose task failed", async () => {
    const { kernel } = testKernel({ maxTaskAttempts: 1 });
    await warmPoint(kernel);
    // The loser takes the cached instance (it loads first); had it been kept, the next read would see 99.
    const loser = kernel.openTransaction("loser");
    const winner = kernel.openTransaction("winner");
    kernel.execute(loser, "loser", (ctx) => (ctx.data.getBinding<Point>("p").x = 99));
    kernel.execute(winner, "winner", (ctx) => (ctx.data.getBinding<Point>("p").x = 1000));
    await winner.commit();
    assert.throws(() => loser.commit());
    await failure(
      kernel.run("fails", (ctx) => {
        ctx.data.getBinding<Point>("p").label = "lost";
        throw new Error("after changing the object");
      }),
    );
    const point = await kernel.run("read", (ctx) => ctx.data.getBinding<Point>("p"));
    assert.deepEqual([point.x, point.label.startsWith("at ")], [1000, true]);
  });

  it("never lends out a change made by a task that failed", async () => {
    const { kernel } = testKernel({ maxTaskAttempts: 1 });
    await seed(kernel);
    await read(kernel);
    const error = await failure(
      kernel.run("fails", (ctx) => {
        const counter = ctx.data.getBinding<Counter>("a");
        counter.count = 99;
        counter.notes.push("lost");
        throw new Error("after changing the object");
      }),
    );
    assert.match(String(error), /after changing the object/);
    const after = await read(kernel);
    assert.deepEqual([after.count, after.notes], [0, []]);
  });

  it("never lends out a change made by a transaction that lost a conflict", async () => {
    const { kernel } = testKernel();
    await seed(kernel);
    await read(kernel);
    const loser = kernel.openTransaction("loser");
    const winner = kernel.openTransaction("winner");
    kernel.execute(loser, "loser", (ctx) => (ctx.data.getBinding<Counter>("a").notes = ["from the loser"]));
    kernel.execute(winner, "winner", (ctx) => (ctx.data.getBinding<Counter>("a").count = 1));
    await winner.commit();
    assert.throws(() => loser.commit());
    const after = await read(kernel);
    assert.deepEqual([after.count, after.notes], [1, []]);
  });

  it("drops an instance once another transaction commits a newer version of its object", async () => {
    const { kernel } = testKernel();
    await seed(kernel);
    await read(kernel);
    // The reader's instance goes back to the cache at the version it read; then a writer that had
    // started earlier commits a new version.
    const writer = kernel.openTransaction("writer");
    kernel.execute(writer, "writer", (ctx) => (ctx.data.getBinding<Counter>("a").count = 7));
    const stale = await read(kernel);
    await writer.commit();
    const fresh = await read(kernel);
    assert.notEqual(fresh, stale);
    assert.equal(fresh.count, 7);
  });

  it("lends an instance to one transaction at a time", async () => {
    const { kernel } = testKernel();
    await seed(kernel);
    await read(kernel);
    const first = kernel.openTransaction("first");
    const second = kernel.openTransaction("second");
    const seenByFirst = kernel.execute(first, "first", (ctx) => ctx.data.getBinding<Counter>("a"));
    const seenBySecond = kernel.execute(second, "second", (ctx) => ctx.data.getBinding<Counter>("a"));
    assert.notEqual(seenByFirst, seenBySecond);
    seenByFirst.notes.push("only in first");
    assert.deepEqual(seenBySecond.notes, []);
    first.abort();
    second.abort();
  });

  it("decodes afresh an object that a task gave state its encoding leaves out", async () => {
    const { kernel } = testKernel();
    await seed(kernel, ["symbol", "hidden", "frozen"]);
    const mark = Symbol("mark");
    await kernel.run("decorate", (ctx) => {
      (ctx.data.getBinding<Counter>("symbol") as unknown as Record<symbol, unknown>)[mark] = true;
      Object.defineProperty(ctx.data.getBinding<Counter>("hidden"), "secret", { value: 1, enumerable: false });
      Object.freeze(ctx.data.getBinding<Counter>("frozen"));
    });
    const symbol = await read(kernel, "symbol");
    assert.equal((symbol as unknown as Record<symbol, unknown>)[mark], undefined);
    assert.equal(Object.getOwnPropertyDescriptor(await read(kernel, "hidden"), "secret"), undefined);
    assert.ok(Object.isExtensible(await read(kernel, "frozen")));
  });

  it("holds at most its capacity, letting the least recently used go first", async () => {
    const { kernel } = testKernel({ objectCacheEntries: 2 });
    await seed(kernel, ["a", "b", "c"]);
    const a = await read(kernel, "a");
    await read(kernel, "b");
    await read(kernel, "c");
    assert.equal(cacheOf(kernel).size, 2);
    assert.notEqual(await read(kernel, "a"), a);
    // c was returned after b, so b is the one that went when a came back.
    const c = await read(kernel, "c");
    assert.equal(await read(kernel, "c"), c);
  });

  it("lets the place filled least recently go first, and places not filled for long, through any mix of takes and puts", () => {
    // A model of the cache: places oldest first; a taken instance leaves its place empty; every
    // take is a load, and a place not filled again within 4 loads per place of capacity goes.
    const capacity = 50;
    const cache = new ObjectCache(capacity);
    const model: { id: bigint; version: number | undefined; filledAt: number }[] = [];
    const bytes = new Uint8Array(1);
    let loads = 0;
    let seed = 1;
    const random = (below: number) => (seed = (seed * 16807) % 2147483647) % below;
    for (let step = 0; step < 20_000; step++) {
      // A few hot ids taken and given back over and over, among many cold ones.
      const id = BigInt(random(4) === 0 ? random(200) : random(5));
      const version = random(3);
      const at = model.findIndex((place) => place.id === id);
      if (random(2) === 0) {
        const expected = at >= 0 && model[at]!.version === version;
        assert.equal(cache.take(id, version) !== undefined, expected, `take of ${id} at step ${step}`);
        if (at >= 0) model[at]!.version = undefined;
        loads++;
      } else {
        cache.put(id, version, { id }, bytes);
        if (at >= 0) model.splice(at, 1);
        model.push({ id, version, filledAt: loads });
        if (model.length > capacity) model.shift();
        while (model[0]!.filledAt < loads - 4 * capacity) model.shift();
      }
      assert.equal(cache.size, model.filter((place) => place.version !== undefined).length, `size at step ${step}`);
    }
    for (const place of model) assert.equal(cache.versionHeld(place.id), place.version);
  });

  it("keeps nothing with a capacity of 0", async () => {
    const { kernel } = testKernel({ objectCacheEntries: 0 });
    await seed(kernel);
    assert.notEqual(await read(kernel), await read(kernel));
    assert.equal(cacheOf(kernel).hits, 0);
  });

  it("refuses a capacity that is not a whole number of at least 0", () => {
    for (const bad of [-1, 1.5, "10", null]) assert.throws(() => resolveConfig({ objectCacheEntries: bad }), ConfigError);
    assert.equal(resolveConfig({ objectCacheEntries: 0 }).objectCacheEntries, 0);
  });
});
