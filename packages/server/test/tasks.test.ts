// Durable tasks on a manual clock: delays, the periodic grid, no overlap, skipped periods,
// cancellation, failures, and application time across restarts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ManagedObjectError,
  ManualClock,
  ObjectNotFoundError,
  Ref,
  SeededRandom,
  TransactionNotActiveError,
  managed,
  type PeriodicTaskHandle,
  type Server,
  type TaskContext,
  type TaskFailedError,
} from "shardless";
import { CapturingLogger, ControlledStore, RunTally, TEST_WORKERS, tempDir, testServer } from "./helpers.ts";

@managed("tasks.App")
class App {
  initialize(): void {}
}

/** A task that appends the application time of each run to the bound "runs" log. */
@managed("tasks.Recorder")
class Recorder {
  constructor(public label = "r") {}
  run(ctx: TaskContext): void {
    ctx.data.getBinding<RunLog>("runs").entries.push(`${this.label}@${ctx.now()}`);
  }
}

@managed("tasks.RunLog")
class RunLog {
  entries: string[] = [];
}

@managed("tasks.HandleHolder")
class HandleHolder {
  constructor(public handle: PeriodicTaskHandle) {}
}

/** Cancels itself on its third run. */
@managed("tasks.SelfCancelling")
class SelfCancelling {
  runs = 0;
  run(ctx: TaskContext): void {
    this.runs++;
    if (this.runs === 3) ctx.data.getBinding<HandleHolder>("handle").handle.cancel();
  }
}

/** Records each run in a tally (outside the data, which a failing run never commits), then fails. */
@managed("tasks.Failing")
class Failing {
  constructor(
    public label: string,
    public tally: string,
  ) {}
  run(): void {
    RunTally.record(this.tally, this.label);
    throw new Error(`failure of ${this.label}`);
  }
}

/** Records each run in a tally: outside the data, so that a run is seen before its commit is. */
@managed("tasks.Counting")
class Counting {
  constructor(
    public label: string,
    public tally: string,
  ) {}
  run(): void {
    RunTally.record(this.tally, this.label);
  }
}

async function setup(server: Server): Promise<void> {
  await server.run("setup", (ctx) => ctx.data.setBinding("runs", new RunLog()));
}

const runs = (server: Server) => server.run("read runs", (ctx) => [...ctx.data.getBinding<RunLog>("runs").entries]);

/**
 * Checks the runs of tasks that fell due together: each one, once, as `expected` lists them in the
 * order they were scheduled. Like Darkstar's TaskManager, tasks promise no order among themselves:
 * on worker threads they run side by side and commit in either order. On the main thread they run
 * one at a time, in the order they were scheduled, and that order is checked too.
 */
function assertRanTogether(ran: readonly string[], expected: readonly string[]): void {
  assert.deepEqual([...ran].sort(), [...expected].sort());
  if (TEST_WORKERS === 0) assert.deepEqual(ran, expected);
}

/** Advances the clock in steps, letting every task that falls due run and commit in between. */
async function advance(clock: ManualClock, server: Server, ms: number, step = ms): Promise<void> {
  await server.whenIdle(); // what is due now runs now
  for (let moved = 0; moved < ms; moved += step) {
    clock.advance(Math.min(step, ms - moved));
    await server.whenIdle();
  }
}

describe("scheduled tasks", () => {
  it("run once, after their delay, and only if the scheduling task committed", async () => {
    const clock = new ManualClock();
    const server = await testServer({ app: App, clock }, import.meta.url);
    await setup(server);
    await server.run("schedule", (ctx) => ctx.tasks.scheduleTask(new Recorder("once"), 500));
    await server
      .run("schedule then fail", (ctx) => {
        ctx.tasks.scheduleTask(new Recorder("aborted"), 10);
        throw new Error("abort");
      })
      .catch(() => undefined);
    await advance(clock, server, 499);
    assert.deepEqual(await runs(server), []);
    await advance(clock, server, 1);
    assert.deepEqual(await runs(server), ["once@500"]);
    await advance(clock, server, 10_000, 1000);
    assert.deepEqual(await runs(server), ["once@500"]);
  });

  it("run immediate tasks in the order they were scheduled", async () => {
    const clock = new ManualClock();
    const server = await testServer({ app: App, clock }, import.meta.url);
    await setup(server);
    await server.run("schedule", (ctx) => {
      for (const label of ["a", "b", "c"]) ctx.tasks.scheduleTask(new Recorder(label));
    });
    await advance(clock, server, 1);
    assertRanTogether(await runs(server), ["a@0", "b@0", "c@0"]);
  });

  it("run periodic tasks on their original grid, without drift, whatever the step of time", async () => {
    const clock = new ManualClock();
    const server = await testServer({ app: App, clock }, import.meta.url);
    await setup(server);
    await server.run("schedule", (ctx) => ctx.tasks.schedulePeriodicTask(new Recorder("p"), 50, 100));
    const random = new SeededRandom(7);
    let elapsed = 0;
    while (elapsed < 2000) {
      const step = 1 + Math.floor(random.next() * 37);
      await advance(clock, server, step);
      elapsed += step;
    }
    const times = (await runs(server)).map((entry) => Number(entry.split("@")[1]));
    assert.equal(times.length, Math.floor((elapsed - 50) / 100) + 1, "one run per period, none missed, none doubled");
    times.forEach((time, k) => {
      const gridPoint = 50 + 100 * k;
      assert.ok(time >= gridPoint && time < gridPoint + 37, `run ${k} at ${time} belongs to grid point ${gridPoint}`);
    });
  });

  it("never overlap a periodic task's runs, and skip the periods missed meanwhile", async () => {
    const clock = new ManualClock();
    const store = new ControlledStore();
    const server = await testServer({ app: App, clock, store }, import.meta.url);
    const tally = new RunTally();
    await server.run("schedule", (ctx) => ctx.tasks.schedulePeriodicTask(new Counting("slow", tally.path), 100, 100));
    store.held = true; // from now on, commits wait until the test lets them through
    clock.advance(100);
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    // The first run has run, and its commit waits at the store (a worker's commit request takes a
    // few turns to reach it).
    while (tally.count("slow") !== 1 || store.waiting.length === 0) await turn();
    // The first run's commit is not durable: its next run is not armed, however far time moves.
    for (let t = 0; t < 35; t++) {
      clock.advance(10);
      await turn();
    }
    assert.equal(tally.count("slow"), 1, "no second run while the first is not finished");
    store.held = false;
    store.release();
    await server.whenIdle();
    // now = 450: the runs due at 200, 300 and 400 are skipped; the next is at 500.
    await advance(clock, server, 49);
    assert.equal(tally.count("slow"), 1);
    await advance(clock, server, 1);
    assert.equal(tally.count("slow"), 2);
  });

  it("cancel through a stored handle, from another task or from the task itself", async () => {
    const clock = new ManualClock();
    const server = await testServer({ app: App, clock }, import.meta.url);
    await setup(server);
    await server.run("schedule", (ctx) => {
      ctx.data.setBinding("recorder handle", new HandleHolder(ctx.tasks.schedulePeriodicTask(new Recorder("c"), 0, 100)));
      const self = new SelfCancelling();
      ctx.data.setBinding("self", self);
      ctx.data.setBinding("handle", new HandleHolder(ctx.tasks.schedulePeriodicTask(self, 0, 100)));
    });
    await advance(clock, server, 250, 50);
    await server.run("cancel", (ctx) => {
      const holder = ctx.data.getBinding<HandleHolder>("recorder handle");
      holder.handle.cancel();
      holder.handle.cancel(); // twice is harmless
    });
    await advance(clock, server, 1000, 50);
    assert.deepEqual(await runs(server), ["c@0", "c@100", "c@200"]);
    assert.equal(await server.run("self", (ctx) => ctx.data.getBinding<SelfCancelling>("self").runs), 3);
    await server.run("cancel a finished task", (ctx) => ctx.data.getBinding<HandleHolder>("handle").handle.cancel());
  });

  it("remove a task object they stored, and keep one the application stored", async () => {
    const clock = new ManualClock();
    const server = await testServer({ app: App, clock }, import.meta.url);
    await setup(server);
    const [ownedId, keptId] = await server.run("schedule", (ctx) => {
      const owned = new Recorder("owned");
      const kept = new Recorder("kept");
      ctx.data.setBinding("kept", kept);
      ctx.tasks.scheduleTask(kept, 10);
      ctx.tasks.scheduleTask(owned, 10);
      return [ctx.data.getObjectId(owned), ctx.data.getObjectId(kept)];
    });
    await advance(clock, server, 20, 10);
    assertRanTogether(await runs(server), ["kept@10", "owned@10"]);
    const exists = (id: bigint) => server.run("exists", () => refExists(id));
    assert.equal(await exists(ownedId), false);
    assert.equal(await exists(keptId), true);
  });

  it("drop a one-shot task that fails for good, and keep running a periodic one", async () => {
    const clock = new ManualClock();
    const logger = new CapturingLogger();
    const server = await testServer({ app: App, clock, logger }, import.meta.url);
    const tally = new RunTally();
    await server.run("schedule", (ctx) => {
      ctx.tasks.scheduleTask(new Failing("one-shot", tally.path), 0);
      ctx.tasks.schedulePeriodicTask(new Failing("periodic", tally.path), 0, 100);
    });
    await advance(clock, server, 1000, 50);
    assert.equal(tally.count("one-shot"), 1, "a failing task is not retried");
    assert.equal(tally.count("periodic"), 11, "runs at 0, 100, ..., 1000");
    assert.ok(logger.messages("warn").includes("scheduled task failed; moving on to its next run"));
  });

  it("refuse tasks that are not managed objects and bad delays", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    const cause = (body: (ctx: TaskContext) => unknown) =>
      server.run("bad", body).then(
        () => assert.fail("should fail"),
        (error: unknown) => (error as TaskFailedError).cause,
      );
    assert.ok((await cause((ctx) => ctx.tasks.scheduleTask({ run() {} }))) instanceof ManagedObjectError);
    assert.ok((await cause((ctx) => ctx.tasks.scheduleTask(new Recorder(), -1))) instanceof RangeError);
    assert.ok((await cause((ctx) => ctx.tasks.schedulePeriodicTask(new Recorder(), 0, 0))) instanceof RangeError);
    assert.ok((await cause((ctx) => ctx.tasks.scheduleTask(new Recorder(), Number.NaN))) instanceof RangeError);
  });

  it("refuse TaskManager calls and handle cancels outside a task", async () => {
    const server = await testServer({ app: App }, import.meta.url);
    const { tasks, handle } = await server.run("keep", (ctx) => ({
      tasks: ctx.tasks,
      handle: ctx.tasks.schedulePeriodicTask(new Recorder(), 1000, 1000),
    }));
    assert.throws(() => tasks.scheduleTask(new Recorder()), TransactionNotActiveError);
    assert.throws(() => tasks.schedulePeriodicTask(new Recorder(), 0, 10), TransactionNotActiveError);
    assert.throws(() => tasks.shouldContinue(), TransactionNotActiveError);
    assert.throws(() => handle.cancel(), TransactionNotActiveError);
  });

  it("say shouldContinue() = false once half of the time budget is spent", async () => {
    const clock = new ManualClock();
    const server = await testServer({ app: App, clock, txnTimeoutMs: 100 }, import.meta.url);
    const [early, late] = await server.run("budget", (ctx) => {
      const before = ctx.tasks.shouldContinue();
      clock.advance(60);
      return [before, ctx.tasks.shouldContinue()];
    });
    assert.deepEqual([early, late], [true, false]);
  });
});

describe("application time and restarts", () => {
  it("does not count downtime in delays", async () => {
    const dataDir = tempDir();
    const clock1 = new ManualClock(0);
    const first = await testServer({ app: App, clock: clock1, durability: "sync", dataDir }, import.meta.url);
    await setup(first);
    await advance(clock1, first, 5000, 1000);
    await first.run("schedule", (ctx) => ctx.tasks.scheduleTask(new Recorder("late"), 10_000));
    await first.close();
    // A different clock origin, and any amount of real time, later:
    const clock2 = new ManualClock(987_654);
    const third = await testServer({ app: App, clock: clock2, durability: "sync", dataDir }, import.meta.url);
    assert.equal(third.resumedTasks, 1);
    assert.ok(third.appTimeMs() >= 5000 && third.appTimeMs() < 5001, "application time resumes where it stopped");
    await advance(clock2, third, 9_999, 1000);
    assert.deepEqual(await runs(third), []);
    await advance(clock2, third, 1);
    assert.deepEqual(await runs(third), ["late@15000"]);
  });

  it("resumes periodic tasks on their grid after a restart", async () => {
    const dataDir = tempDir();
    const clock1 = new ManualClock();
    const first = await testServer({ app: App, clock: clock1, durability: "sync", dataDir }, import.meta.url);
    await setup(first);
    await first.run("schedule", (ctx) => ctx.tasks.schedulePeriodicTask(new Recorder("g"), 0, 100));
    await advance(clock1, first, 250, 10);
    await first.close();
    const clock2 = new ManualClock(42);
    const second = await testServer({ app: App, clock: clock2, durability: "sync", dataDir }, import.meta.url);
    assert.equal(second.initialized, false, "initialize ran only once");
    await advance(clock2, second, 200, 10);
    assert.deepEqual(await runs(second), ["g@0", "g@100", "g@200", "g@300", "g@400"]);
  });
});

/** True when an object with `id` exists: a Ref built from a raw id is the way to probe. */
function refExists(id: bigint): boolean {
  try {
    new Ref(id).get();
    return true;
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return false;
    throw error;
  }
}
