// Transactions below the server: interleaved transactions, conflict detection, retry, timeouts,
// effects on commit, and a store that fails mid-commit.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ManagedObjectError,
  ManualClock,
  MemoryDataStore,
  ResourceUnavailableError,
  TaskFailedError,
  TransactionConflictError,
  TransactionTimeoutError,
  managed,
} from "shardless";
import { CapturingLogger, ControlledStore, testKernel } from "./helpers.ts";

@managed("tx.Account")
class Account {
  constructor(public balance = 0) {}
}

/** Stores accounts `a` and `b` with 100 each. */
async function seed(kernel: ReturnType<typeof testKernel>["kernel"]): Promise<void> {
  await kernel.run("seed", (ctx) => {
    ctx.data.setBinding("a", new Account(100));
    ctx.data.setBinding("b", new Account(100));
  });
}

describe("optimistic transactions", () => {
  it("aborts the later committer when two transactions write what both read", async () => {
    const { kernel } = testKernel();
    await seed(kernel);
    const first = kernel.openTransaction("first");
    const second = kernel.openTransaction("second");
    kernel.execute(first, "first", (ctx) => ctx.data.getBinding<Account>("a").balance++);
    kernel.execute(second, "second", (ctx) => ctx.data.getBinding<Account>("a").balance--);
    const durable = first.commit();
    assert.throws(() => second.commit(), TransactionConflictError);
    await durable;
    assert.equal(await kernel.run("read", (ctx) => ctx.data.getBinding<Account>("a").balance), 101);
  });

  it("aborts at once a read of something committed after the transaction started", async () => {
    const { kernel } = testKernel();
    await seed(kernel);
    const reader = kernel.openTransaction("reader");
    kernel.execute(reader, "reader", (ctx) => ctx.data.getBinding<Account>("a").balance);
    const writer = kernel.openTransaction("writer");
    kernel.execute(writer, "writer", (ctx) => (ctx.data.getBinding<Account>("b").balance = 0));
    await writer.commit();
    // reader saw a = 100 before the write; it must not now see b = 0 (a state no serial order shows).
    assert.throws(() => kernel.execute(reader, "reader", (ctx) => ctx.data.getBinding<Account>("b")), TransactionConflictError);
    reader.abort();
  });

  it("lets transactions that touch different objects both commit", async () => {
    const { kernel } = testKernel();
    await seed(kernel);
    const first = kernel.openTransaction("first");
    const second = kernel.openTransaction("second");
    kernel.execute(first, "first", (ctx) => ctx.data.getBinding<Account>("a").balance++);
    kernel.execute(second, "second", (ctx) => ctx.data.getBinding<Account>("b").balance++);
    await Promise.all([first.commit(), second.commit()]);
    assert.deepEqual(await kernel.run("read", (ctx) => [ctx.data.getBinding<Account>("a").balance, ctx.data.getBinding<Account>("b").balance]), [101, 101]);
  });

  it("detects a phantom: a binding added inside a range another transaction scanned", async () => {
    const { kernel } = testKernel();
    await kernel.run("seed", (ctx) => {
      ctx.data.setBinding("player.a", new Account());
      ctx.data.setBinding("player.c", new Account());
      ctx.data.setBinding("total", new Account());
    });
    const counter = kernel.openTransaction("count players");
    kernel.execute(counter, "count", (ctx) => {
      let count = 0;
      for (let name = ctx.data.nextBoundName("player."); name?.startsWith("player.") === true; name = ctx.data.nextBoundName(name)) count++;
      ctx.data.getBinding<Account>("total").balance = count;
    });
    const joiner = kernel.openTransaction("join");
    kernel.execute(joiner, "join", (ctx) => ctx.data.setBinding("player.b", new Account()));
    await joiner.commit();
    assert.throws(() => counter.commit(), TransactionConflictError);
  });

  it("retries a task that lost a conflict, and commits its second attempt once", async () => {
    const logger = new CapturingLogger();
    const { kernel } = testKernel({ logger });
    await seed(kernel);
    let attempts = 0;
    await kernel.run("transfer", (ctx) => {
      attempts++;
      const a = ctx.data.getBinding<Account>("a");
      if (attempts === 1) {
        // Another transaction commits a change to `a` while this attempt is under way.
        const rival = kernel.openTransaction("rival");
        kernel.execute(rival, "rival", (rctx) => (rctx.data.getBinding<Account>("a").balance += 1000));
        void rival.commit();
      }
      ctx.log.info("moving 10");
      a.balance -= 10;
      ctx.data.getBinding<Account>("b").balance += 10;
    });
    assert.equal(attempts, 2);
    assert.equal(kernel.counters.conflicts, 1);
    assert.deepEqual(await kernel.run("read", (ctx) => [ctx.data.getBinding<Account>("a").balance, ctx.data.getBinding<Account>("b").balance]), [1090, 110]);
    assert.equal(logger.messages().filter((message) => message === "moving 10").length, 1, "the aborted attempt logged nothing");
  });

  it("times a task out at a data access, and retries it", async () => {
    const clock = new ManualClock();
    const { kernel } = testKernel({ clock, txnTimeoutMs: 100 });
    await seed(kernel);
    const errors: unknown[] = [];
    let attempts = 0;
    await kernel.run("slow once", (ctx) => {
      attempts++;
      if (attempts === 1) clock.advance(101);
      try {
        ctx.data.getBinding<Account>("a").balance++;
      } catch (error) {
        errors.push(error);
        throw error;
      }
    });
    assert.equal(attempts, 2);
    assert.ok(errors[0] instanceof TransactionTimeoutError && errors[0].retryable);
    assert.equal(await kernel.run("read", (ctx) => ctx.data.getBinding<Account>("a").balance), 101);
  });

  it("checks the timeout at commit too, and gives up after the attempt limit", async () => {
    const clock = new ManualClock();
    const { kernel } = testKernel({ clock, txnTimeoutMs: 100, maxTaskAttempts: 3 });
    await seed(kernel);
    let attempts = 0;
    const error = await kernel
      .run("always slow", (ctx) => {
        attempts++;
        ctx.data.getBinding<Account>("a").balance++;
        clock.advance(150); // after the last access: only the commit can notice
      })
      .catch((rejection: unknown) => rejection);
    assert.equal(attempts, 3);
    assert.ok(error instanceof TaskFailedError && error.cause instanceof TransactionTimeoutError);
    assert.equal(await kernel.run("read", (ctx) => ctx.data.getBinding<Account>("a").balance), 100, "no attempt committed");
  });

  it("does not retry errors thrown by game code or unstorable values", async () => {
    const { kernel } = testKernel();
    let attempts = 0;
    const error = await kernel
      .run("buggy", () => {
        attempts++;
        throw new RangeError("game bug");
      })
      .catch((rejection: unknown) => rejection);
    assert.equal(attempts, 1);
    assert.ok(error instanceof TaskFailedError && error.cause instanceof RangeError);
    const unstorable = await kernel
      .run("unstorable", (ctx) => ctx.data.setBinding("x", Object.assign(new Account(), { f: Symbol("no") })))
      .catch((rejection: unknown) => rejection);
    assert.ok(unstorable instanceof TaskFailedError && unstorable.cause instanceof ManagedObjectError);
  });

  it("releases effects only after the commit is durable, in commit order", async () => {
    const store = new ControlledStore();
    store.held = true;
    const { kernel } = testKernel({ store });
    const order: string[] = [];
    const commitWithEffect = (name: string) => {
      const tx = kernel.openTransaction(name);
      kernel.execute(tx, name, (ctx) => ctx.data.setBinding(name, new Account()));
      tx.addEffect(() => order.push(`effect of ${name}`));
      return tx.commit().then(() => order.push(`${name} durable`));
    };
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const first = commitWithEffect("first");
    await turn(); // the first batch goes to the store and waits at its gate
    const second = commitWithEffect("second"); // joins the next batch
    await turn();
    assert.equal(store.waiting.length, 1, "one store commit in flight at a time");
    assert.deepEqual(order, [], "nothing is released while the store has not finished");
    store.release();
    await first;
    assert.deepEqual(order, ["effect of first", "first durable"]);
    await turn();
    store.held = false;
    store.release();
    await second;
    assert.deepEqual(order, ["effect of first", "first durable", "effect of second", "second durable"]);
  });

  it("fails everything pending, releases no effect, and reports once when the store fails", async () => {
    const failures: unknown[] = [];
    const store = new (class extends MemoryDataStore {
      override commit(): Promise<void> {
        return Promise.reject(new Error("disk on fire"));
      }
    })();
    const { kernel } = testKernel({ store, onFatal: (error) => failures.push(error) });
    const effects: string[] = [];
    const error = await kernel
      .run("doomed", (ctx, tx) => {
        ctx.data.setBinding("x", new Account());
        tx.addEffect(() => effects.push("released"));
      })
      .catch((rejection: unknown) => rejection);
    assert.ok(error instanceof TaskFailedError && error.cause instanceof ResourceUnavailableError);
    assert.deepEqual(effects, []);
    assert.equal(failures.length, 1);
    const later = await kernel.run("later", (ctx) => ctx.data.setBinding("y", new Account())).catch((rejection: unknown) => rejection);
    assert.ok(later instanceof TaskFailedError, "no commit is accepted after a store failure");
  });

  it("group-commits: tasks queued together share store transactions", async () => {
    const store = new ControlledStore();
    const { kernel } = testKernel({ store });
    await seed(kernel);
    const before = store.commits;
    const tasks = 200;
    await Promise.all(
      Array.from({ length: tasks }, (_, i) => kernel.run(`deposit ${i}`, (ctx) => ctx.data.getBinding<Account>(i % 2 ? "a" : "b").balance++)),
    );
    const commits = store.commits - before;
    assert.ok(commits >= 1 && commits <= tasks / 4, `${tasks} tasks took ${commits} store commits`);
    assert.deepEqual(await kernel.run("read", (ctx) => [ctx.data.getBinding<Account>("a").balance, ctx.data.getBinding<Account>("b").balance]), [200, 200]);
  });

  it("releases the effects of tasks that change nothing without a store commit, still in order", async () => {
    const store = new ControlledStore();
    const { kernel } = testKernel({ store });
    await seed(kernel);
    const before = store.commits;
    const order: string[] = [];
    await Promise.all([
      kernel.run("read only", (ctx, tx) => {
        ctx.data.getBinding<Account>("a");
        tx.addEffect(() => order.push("read"));
      }),
      kernel.run("writes", (ctx, tx) => {
        ctx.data.getBinding<Account>("b").balance++;
        tx.addEffect(() => order.push("write"));
      }),
      kernel.run("read only again", (ctx, tx) => {
        ctx.data.getBinding<Account>("a");
        tx.addEffect(() => order.push("read again"));
      }),
    ]);
    assert.deepEqual(order, ["read", "write", "read again"], "effects keep commit order");
    assert.equal(store.commits - before, 1, "only the batch with a write reached the store");
    await kernel.run("reads", (ctx) => ctx.data.getBinding("a"));
    assert.equal(store.commits - before, 1, "a task that changes nothing costs no store commit");
  });

  it("does not hold tasks that change nothing behind an application-time checkpoint's fsync", async () => {
    const store = new ControlledStore();
    const { kernel } = testKernel({ store });
    await seed(kernel);
    store.held = true;
    kernel.committer.checkpoint(); // in flight, held at the gate
    assert.equal(store.waiting.length, 1);
    const effects: string[] = [];
    await kernel.run("read only", (ctx, tx) => {
      ctx.data.getBinding<Account>("a");
      tx.addEffect(() => effects.push("read"));
    });
    assert.deepEqual(effects, ["read"], "released while the checkpoint is still being written");
    let written = false;
    const write = kernel.run("writes", (ctx) => ctx.data.getBinding<Account>("a").balance++).then(() => (written = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(written, false, "a task with writes waits for the store, one batch at a time");
    store.held = false;
    store.release();
    await write;
    assert.equal(await kernel.run("read", (ctx) => ctx.data.getBinding<Account>("a").balance), 101);
  });
});
