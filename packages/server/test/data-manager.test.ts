import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type {
  Ref} from "shardless";
import {
  AsyncHandlerError,
  ManagedObjectError,
  MemoryDataStore,
  NameNotBoundError,
  ObjectNotFoundError,
  TransactionNotActiveError,
  managed,
  type TaskContext,
} from "shardless";
import { CapturingLogger, failure, testServer } from "./helpers.ts";

@managed("dm.App")
class App {
  initialize(): void {}
}

@managed("dm.Box")
class Box {
  items: number[] = [];
  child: Ref<Box> | null = null;
  constructor(public value = 0) {}
}

@managed("dm.Parent")
class Parent {
  children: Ref<Box>[] = [];
  removals = 0;
  removingObject(ctx: TaskContext): void {
    for (const child of this.children) ctx.data.removeObject(child.get());
  }
}

class NotManaged {
  x = 1;
}


describe("DataManager", () => {
  it("binds, reads and rebinds names across tasks", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await server.run("bind", (ctx) => ctx.data.setBinding("box", new Box(1)));
    assert.equal(await server.run("read", (ctx) => ctx.data.getBinding<Box>("box").value), 1);
    await server.run("rebind", (ctx) => {
      const old = ctx.data.getBinding<Box>("box");
      ctx.data.setBinding("old", old);
      ctx.data.setBinding("box", new Box(2));
    });
    assert.deepEqual(await server.run("read", (ctx) => [ctx.data.getBinding<Box>("box").value, ctx.data.getBinding<Box>("old").value]), [2, 1]);
  });

  it("reports an unbound name with NameNotBoundError, not retried", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    let attempts = 0;
    const cause = await failure(
      server.run("missing", (ctx) => {
        attempts++;
        return ctx.data.getBinding("nobody");
      }),
    );
    assert.ok(cause instanceof NameNotBoundError);
    assert.equal(cause.code, "ERR_DATA_NAME_NOT_BOUND");
    assert.equal(attempts, 1);
  });

  it("removes bindings but not the objects they named", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    const ref = await server.run("setup", (ctx) => {
      const box = new Box(5);
      ctx.data.setBinding("box", box);
      return ctx.data.createReference(box);
    });
    await server.run("unbind", (ctx) => ctx.data.removeBinding("box"));
    assert.ok((await failure(server.run("read", (ctx) => ctx.data.getBinding("box")))) instanceof NameNotBoundError);
    assert.ok((await failure(server.run("unbind again", (ctx) => ctx.data.removeBinding("box")))) instanceof NameNotBoundError);
    assert.equal(await server.run("through ref", () => ref.get().value), 5);
  });

  it("iterates bound names in UTF-8 byte order, seeing the task's own changes", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await server.run("setup", (ctx) => {
      for (const name of ["b", "a", "\u00e9", "z", "", "\u{1F600}", "\uFFFD"]) ctx.data.setBinding(name, new Box());
    });
    const names = await server.run("scan", (ctx) => {
      ctx.data.setBinding("c", new Box());
      ctx.data.removeBinding("z");
      const seen: string[] = [];
      for (let name = ctx.data.nextBoundName(); name !== undefined; name = ctx.data.nextBoundName(name)) seen.push(name);
      return seen;
    });
    assert.deepEqual(names, ["", "a", "b", "c", "\u00e9", "\uFFFD", "\u{1F600}"]);
    assert.equal(await server.run("from unbound", (ctx) => ctx.data.nextBoundName("bb")), "c");
    assert.equal(await server.run("past the end", (ctx) => ctx.data.nextBoundName("\u{1F600}")), undefined);
  });

  it("hides service bindings from the application's iteration", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    // initialize bound the app listener under a service binding: the application sees none.
    assert.equal(await server.run("scan", (ctx) => ctx.data.nextBoundName()), undefined);
  });

  it("detects modification without markForUpdate, including nested values", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await server.run("setup", (ctx) => ctx.data.setBinding("box", new Box()));
    await server.run("mutate", (ctx) => {
      ctx.data.getBinding<Box>("box").items.push(1, 2);
    });
    assert.deepEqual(await server.run("read", (ctx) => ctx.data.getBinding<Box>("box").items), [1, 2]);
  });

  it("writes an unchanged object only when marked for update", async () => {
    const store = new MemoryDataStore();
    const server = await testServer({ app: App, store }, import.meta.url);
    const id = await server.run("setup", (ctx) => {
      const box = new Box();
      ctx.data.setBinding("box", box);
      return ctx.data.getObjectId(box);
    });
    const version = () => store.getObject(id)!.version;
    const first = version();
    await server.run("read only", (ctx) => ctx.data.getBinding<Box>("box"));
    assert.equal(version(), first, "an unchanged object is not written");
    await server.run("mark", (ctx) => ctx.data.markForUpdate(ctx.data.getBinding<Box>("box")));
    assert.ok(version() > first, "markForUpdate writes it");
    const second = version();
    await server.run("for update", (ctx) => ctx.data.getBindingForUpdate<Box>("box"));
    assert.ok(version() > second, "getBindingForUpdate writes it");
    const third = version();
    await server.run("ref for update", (ctx) => ctx.data.createReference(ctx.data.getBinding<Box>("box")).getForUpdate());
    assert.ok(version() > third, "Ref.getForUpdate writes it");
  });

  it("gives one JS object per managed object within a task, and equal ids for equal objects", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    await server.run("setup", (ctx) => {
      const parent = new Box(1);
      parent.child = ctx.data.createReference(new Box(2));
      ctx.data.setBinding("parent", parent);
    });
    await server.run("identity", (ctx) => {
      const parent = ctx.data.getBinding<Box>("parent");
      assert.equal(ctx.data.getBinding<Box>("parent"), parent);
      assert.equal(parent.child!.get(), parent.child!.get());
      const again = ctx.data.createReference(parent.child!.get());
      assert.equal(again.id, parent.child!.id);
      assert.ok(again.equals(parent.child));
      assert.equal(ctx.data.getObjectId(parent.child!.get()), parent.child!.id);
    });
  });

  it("hands out 64-bit ids in partition 0 that are never reused", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    const first = await server.run("create", (ctx) => {
      const box = new Box();
      const id = ctx.data.getObjectId(box);
      ctx.data.removeObject(box);
      return id;
    });
    const second = await server.run("create again", (ctx) => ctx.data.getObjectId(new Box()));
    assert.equal(typeof first, "bigint");
    assert.equal(first >> 48n, 0n, "top 16 bits are the partition");
    assert.ok(second > first);
  });

  it("removes objects, calling removingObject first, and leaves dangling bindings and Refs", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    const childRef = await server.run("setup", (ctx) => {
      const parent = new Parent();
      const child = ctx.data.createReference(new Box(3));
      parent.children.push(child);
      ctx.data.setBinding("parent", parent);
      return child;
    });
    await server.run("remove", (ctx) => {
      const parent = ctx.data.getBinding<Parent>("parent");
      ctx.data.removeObject(parent);
      ctx.data.removeObject(parent); // a second removal in the same task does nothing
      assert.throws(() => childRef.get(), ObjectNotFoundError, "the hook removed the child");
    });
    const dangling = await failure(server.run("read", (ctx) => ctx.data.getBinding("parent")));
    assert.ok(dangling instanceof ObjectNotFoundError && /parent/.test(dangling.message));
    assert.ok((await failure(server.run("ref", () => childRef.get()))) instanceof ObjectNotFoundError);
  });

  it("refuses objects that are not managed", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    for (const body of [
      (ctx: TaskContext) => ctx.data.setBinding("x", new NotManaged()),
      (ctx: TaskContext) => ctx.data.createReference(new NotManaged()),
      (ctx: TaskContext) => ctx.data.getObjectId({}),
    ]) {
      const cause = await failure(server.run("not managed", body));
      assert.ok(cause instanceof ManagedObjectError && /not a managed object/.test(cause.message), String(cause));
    }
  });

  it("names the field path of a value that cannot be stored, at commit", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    const cause = await failure(
      server.run("store a function", (ctx) => {
        const box = new Box();
        (box as unknown as { handler: unknown }).handler = () => 1;
        ctx.data.setBinding("box", box);
      }),
    );
    assert.ok(cause instanceof ManagedObjectError);
    assert.match(cause.message, /Box\.handler: it is a function/);
    assert.ok((await failure(server.run("nothing stored", (ctx) => ctx.data.getBinding("box")))) instanceof NameNotBoundError);
  });

  it("refuses use outside a task, and objects carried over from another task", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    let kept: TaskContext | undefined;
    const { ref, box } = await server.run("setup", (ctx) => {
      kept = ctx;
      const stored = new Box(1);
      ctx.data.setBinding("box", stored);
      return { ref: ctx.data.createReference(stored), box: stored };
    });
    assert.throws(() => ref.get(), TransactionNotActiveError);
    assert.throws(() => kept!.data.getBinding("box"), TransactionNotActiveError);
    const cause = await failure(server.run("reuse", (ctx) => ctx.data.createReference(box)));
    assert.ok(cause instanceof TransactionNotActiveError && /another task/.test(cause.message));
  });

  it("tells which task an object belongs to without a trace on the object, frozen or not", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    const frozen = Object.freeze(new Box(7));
    const { loaded, keys } = await server.run("store and load", (ctx) => {
      ctx.data.setBinding("frozen", frozen);
      const copy = ctx.data.getBinding<Box>("frozen");
      return { loaded: copy, keys: [Reflect.ownKeys(frozen), Reflect.ownKeys({ ...frozen })] };
    });
    // Storing and loading leave nothing a program can see: no key, nothing copied by spreading.
    assert.deepEqual(keys, [Reflect.ownKeys(new Box(7)), Reflect.ownKeys(new Box(7))]);
    assert.equal(loaded, frozen, "within the task that stored it, the binding yields the same instance");
    // The instance belongs to the task that stored it; a copy made by assigning its fields is new.
    const cause = await failure(server.run("reuse", (ctx) => ctx.data.createReference(frozen)));
    assert.ok(cause instanceof TransactionNotActiveError && /another task/.test(cause.message));
    await server.run("store a copy", (ctx) => ctx.data.setBinding("copy", Object.assign(new Box(), frozen)));
    assert.equal(await server.run("read the copy", (ctx) => ctx.data.getBinding<Box>("copy").value), 7);
  });

  it("fails a handler that returns a Promise, with a clear error", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    // eslint-disable-next-line @typescript-eslint/require-await
    const cause = await failure(server.run("async", async (ctx) => ctx.data.setBinding("x", new Box())));
    assert.ok(cause instanceof AsyncHandlerError && /synchronous/.test(cause.message));
    assert.ok((await failure(server.run("nothing stored", (ctx) => ctx.data.getBinding("x")))) instanceof NameNotBoundError);
  });

  it("writes ctx.log lines only when the task commits", async () => {
    const logger = new CapturingLogger();
    const server = await testServer({ app: App, logger }, import.meta.url);
    await server.run("logs", (ctx) => ctx.log.info("committed line", { n: 1 }));
    await failure(
      server.run("logs then fails", (ctx) => {
        ctx.log.info("aborted line");
        throw new Error("game bug");
      }),
    );
    assert.ok(logger.messages("info").includes("committed line"));
    assert.ok(!logger.messages().includes("aborted line"));
    const record = logger.records.find((entry) => entry.message === "committed line");
    assert.deepEqual({ ...record?.fields, txn: typeof record?.fields?.txn }, { task: "logs", type: "run", txn: "number", n: 1 });
  });

  it("gives a task one logical time", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    const [a, b] = await server.run("now", (ctx) => [ctx.now(), ctx.now()]);
    assert.equal(a, b);
    assert.equal(a, server.appTimeMs());
  });
});
