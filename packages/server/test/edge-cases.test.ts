// Edge cases of the kernel, the codec and the task service, each once a real defect.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isMainThread } from "node:worker_threads";
import { pack } from "msgpackr";
import {
  DataFormatError,
  ManagedObjectError,
  ManualClock,
  ObjectNotFoundError,
  TaskFailedError,
  TransactionConflictError,
  managed,
  type Server,
  type TaskContext,
} from "shardless";
import { objectCodec } from "../src/kernel/codec.ts";
import { CapturingLogger, RunTally, testKernel, testServer } from "./helpers.ts";

@managed("edge.App")
class App {
  initialize(): void {}
}

@managed("edge.Box")
class Box {
  constructor(public value = 0) {}
}

@managed("edge.WithToJson")
class WithToJson {
  name = "ann";
  hp = 10;
  toJSON(): unknown {
    return { name: this.name };
  }
}

let setterCalls = 0;

@managed("edge.WithSetter")
class WithSetter {
  private stored = 0;
  hp = 5;
  get doubled(): number {
    return this.stored * 2;
  }
  set doubled(value: number) {
    setterCalls++;
    this.stored = value / 2;
  }
}

@managed("edge.Base")
class Base {
  get label(): string {
    return "base";
  }
}

@managed("edge.Shadowing")
class Shadowing extends Base {
  constructor() {
    super();
    Object.defineProperty(this, "label", { value: "own", writable: true, enumerable: true, configurable: true });
  }
}

/** Records each run in a tally. */
@managed("edge.Counting")
class Counting {
  constructor(
    public label: string,
    public tally: string,
  ) {}
  run(): void {
    RunTally.record(this.tally, this.label);
  }
}

@managed("edge.Holder")
class Holder {
  constructor(public task: unknown = null) {}
}

/** Runs past its time budget on its first three attempts (counted in a tally), then commits. */
@managed("edge.SlowThenFine")
class SlowThenFine {
  constructor(
    public label: string,
    public tally: string,
  ) {}
  run(ctx: TaskContext): void {
    const count = RunTally.record(this.tally, this.label);
    if (count <= 3) spendBudget(200);
    ctx.data.setBinding(`done:${this.label}`, new Box(count));
  }
}

/**
 * Lets `ms` of a task's time budget pass: on the main thread the budget runs on the test's
 * ManualClock, on a worker thread on the real clock.
 */
function spendBudget(ms: number): void {
  if (isMainThread) (globalThis as unknown as { edgeClock: ManualClock }).edgeClock.advance(ms);
  else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

async function advance(clock: ManualClock, server: Server, ms: number, step: number): Promise<void> {
  await server.whenIdle();
  for (let moved = 0; moved < ms; moved += step) {
    clock.advance(step);
    await server.whenIdle();
  }
}

describe("edge cases", () => {
  it("commits a task with a huge number of effects whole, or not at all", async () => {
    const logger = new CapturingLogger();
    const { kernel } = testKernel({ logger });
    await kernel.run(
      "many logs",
      (ctx) => {
        ctx.data.setBinding("box", new Box(1));
        for (let i = 0; i < 200_000; i++) ctx.log.debug("line");
      },
      { timeoutMs: Infinity },
    );
    assert.equal(logger.records.filter((record) => record.message === "line").length, 200_000);
    assert.equal(await kernel.run("read", (ctx) => ctx.data.getBinding<Box>("box").value), 1);
  });

  it("stores every field even when the class defines toJSON", () => {
    const decoded = objectCodec.decode(objectCodec.encode(new WithToJson())) as WithToJson;
    assert.equal(decoded.hp, 10);
    assert.equal(decoded.name, "ann");
  });

  it("restores fields as own data properties: no setter runs, a field shadowing a getter loads", () => {
    setterCalls = 0;
    const decoded = objectCodec.decode(objectCodec.encode(new WithSetter())) as WithSetter;
    assert.equal(setterCalls, 0);
    assert.equal(decoded.hp, 5);
    const shadow = objectCodec.decode(objectCodec.encode(new Shadowing())) as Shadowing;
    assert.equal(shadow.label, "own");
  });

  it("refuses __proto__ keys, and stored objects of the wrong shape", () => {
    assert.throws(() => objectCodec.encode(new Holder(JSON.parse('{"__proto__": 1}'))), (error: unknown) => error instanceof ManagedObjectError && /__proto__/.test(error.message));
    assert.throws(() => objectCodec.decode(pack(["edge.Box", null])), DataFormatError);
    assert.throws(() => objectCodec.decode(pack(["edge.Box", [1, 2]])), DataFormatError);
  });

  it("leaves other msgpack users' Sets alone", () => {
    const bytes = pack(new Set([1]));
    assert.notDeepEqual([...bytes.subarray(0, 2)], [0xd4, 0x23], "no process-wide extension for Set");
    const decoded = objectCodec.decode(objectCodec.encode(new Holder(new Set([1, 2])))) as Holder;
    assert.deepEqual(decoded.task, new Set([1, 2]));
  });

  it("sees a binding removed after the task started as a conflict, not as unbound", async () => {
    const { kernel } = testKernel();
    await kernel.run("seed", (ctx) => {
      ctx.data.setBinding("x", new Box());
      ctx.data.setBinding("y", new Box());
    });
    const reader = kernel.openTransaction("reader");
    kernel.execute(reader, "reader", (ctx) => ctx.data.getBinding("y"));
    const remover = kernel.openTransaction("remover");
    kernel.execute(remover, "remover", (ctx) => ctx.data.removeBinding("x"));
    await remover.commit();
    assert.throws(() => kernel.execute(reader, "reader", (ctx) => ctx.data.getBinding("x")), TransactionConflictError);
    reader.abort();
    const scanner = kernel.openTransaction("scanner");
    const other = kernel.openTransaction("other");
    kernel.execute(other, "other", (ctx) => ctx.data.removeBinding("y"));
    await other.commit();
    assert.throws(() => kernel.execute(scanner, "scanner", (ctx) => ctx.data.nextBoundName()), TransactionConflictError);
    scanner.abort();
  });

  it("treats an object removed in a task as gone for the rest of it", async () => {
    const { kernel } = testKernel();
    const cause = (body: (ctx: TaskContext) => unknown) =>
      kernel.run("t", body).then(
        () => assert.fail("should fail"),
        (error: unknown) => (error as TaskFailedError).cause,
      );
    await kernel.run("twice", (ctx) => {
      const box = new Box();
      ctx.data.createReference(box);
      ctx.data.removeObject(box);
      ctx.data.removeObject(box); // no crash: a second removal does nothing
    });
    assert.ok(
      (await cause((ctx) => {
        const box = new Box();
        ctx.data.createReference(box);
        ctx.data.removeObject(box);
        ctx.data.setBinding("ghost", box);
      })) instanceof ObjectNotFoundError,
    );
    @managed("edge.SelfBinding")
    class SelfBinding {
      removingObject(ctx: TaskContext): void {
        ctx.data.setBinding("ghost", this);
      }
    }
    assert.ok(
      (await cause((ctx) => {
        const obj = new SelfBinding();
        ctx.data.setBinding("self", obj);
        ctx.data.removeObject(obj);
      })) instanceof ObjectNotFoundError,
      "a hook cannot leave a binding to the object being removed",
    );
  });

  it("refuses binding names that are not well-formed Unicode", async () => {
    const { kernel } = testKernel();
    const error = await kernel.run("lone surrogate", (ctx) => ctx.data.setBinding("\uD800", new Box())).catch((rejection: unknown) => rejection);
    assert.ok(error instanceof TaskFailedError && error.cause instanceof ManagedObjectError);
  });

  it("keeps a new task object the application also binds or schedules twice", async () => {
    const clock = new ManualClock();
    const server = await testServer({ app: App, clock }, import.meta.url);
    const tally = new RunTally();
    await server.run("schedule", (ctx) => {
      const twice = new Counting("twice", tally.path);
      ctx.tasks.scheduleTask(twice, 10);
      ctx.tasks.scheduleTask(twice, 20);
      const bound = new Counting("bound", tally.path);
      ctx.tasks.scheduleTask(bound, 10);
      ctx.data.setBinding("bound task", bound); // bound after scheduling
      const held = new Counting("held", tally.path);
      ctx.tasks.scheduleTask(held, 10);
      ctx.data.setBinding("holder", new Holder(ctx.data.createReference(held)));
      ctx.tasks.scheduleTask(new Counting("owned", tally.path), 10);
    });
    await advance(clock, server, 30, 5);
    assert.deepEqual(tally.counts(), { twice: 2, bound: 1, held: 1, owned: 1 });
    await server.run("still there", (ctx) => {
      assert.equal(ctx.data.getBinding<Counting>("bound task").label, "bound");
      assert.equal(((ctx.data.getBinding<Holder>("holder").task as { get(): Counting }).get()).label, "held");
    });
  });

  it("retires a periodic task whose object the application removed", async () => {
    const clock = new ManualClock();
    const logger = new CapturingLogger();
    const server = await testServer({ app: App, clock, logger }, import.meta.url);
    const tally = new RunTally();
    await server.run("schedule", (ctx) => {
      const task = new Counting("doomed", tally.path);
      ctx.data.setBinding("doomed", task);
      ctx.tasks.schedulePeriodicTask(task, 0, 100);
    });
    await advance(clock, server, 150, 50);
    await server.run("remove it", (ctx) => ctx.data.removeObject(ctx.data.getBinding("doomed")));
    await advance(clock, server, 1000, 50);
    assert.equal(tally.count("doomed"), 2);
    assert.equal(logger.messages("warn").filter((message) => message.includes("object was removed")).length, 1);
    assert.equal(logger.messages("warn").filter((message) => message.includes("failed")).length, 0);
  });

  it("does not lose a one-shot task whose runs keep failing with retryable errors", async () => {
    const clock = new ManualClock();
    (globalThis as unknown as { edgeClock: ManualClock }).edgeClock = clock;
    const server = await testServer({ app: App, clock, txnTimeoutMs: 100, maxTaskAttempts: 2 }, import.meta.url);
    const tally = new RunTally();
    await server.run("schedule", (ctx) => ctx.tasks.scheduleTask(new SlowThenFine("stubborn", tally.path), 0));
    await advance(clock, server, 3000, 100);
    assert.equal(await server.run("done?", (ctx) => ctx.data.getBinding<Box>("done:stubborn").value), 4);
  });
});
