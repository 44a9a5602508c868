// The contention manager's switch, below the server: when most attempts on other threads conflict,
// tasks run on the kernel's thread instead (where they cannot conflict), a few still go out to see
// whether the contention passed, and the kernel turns back once it has.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TransactionConflictError } from "../src/api/errors.ts";
import { managed } from "../src/api/managed.ts";
import { ManualClock } from "../src/kernel/clock.ts";
import { Kernel, type RemoteAttempt, type RemoteOutcome, type TaskExecutor } from "../src/kernel/kernel.ts";
import { silentLogger } from "../src/kernel/logger.ts";
import { SeededRandom } from "../src/kernel/random.ts";
import { MemoryDataStore } from "../src/data/memory-data-store.ts";
import { installTaskServices } from "../src/tasks/task-service.ts";

@managed("contention.Counter")
class Counter {
  n = 0;
}

/**
 * An executor standing for worker threads whose every attempt conflicts while `conflicting`, or,
 * if `conflictWhen` is set, those whose run number (from 1) it holds for.
 */
class ScriptedExecutor implements TaskExecutor {
  conflicting = true;
  conflictWhen: ((run: number) => boolean) | undefined;
  runs = 0;

  constructor(private readonly kernel: () => Kernel) {}

  run(attempt: RemoteAttempt, done: (outcome: RemoteOutcome) => void): number {
    assert.equal(attempt.after, undefined, "no task here is chained");
    const number = ++this.runs;
    if (this.conflictWhen?.(number) ?? this.conflicting) {
      setImmediate(() => done({ ok: false, error: new TransactionConflictError("a hot object changed", { on: { kind: "object", id: 1n } }) }));
      return number;
    }
    // Runs the attempt as a worker would, to its commit request, here.
    const tx = this.kernel().openTransaction(attempt.name);
    const result = this.kernel().execute(tx, attempt.name, (ctx, t) => this.kernel().runtime.body(attempt.kind)(ctx, t, attempt.args));
    const request = tx.prepareCommit();
    tx.markCommitted();
    setImmediate(() => done({ ok: true, request, result }));
    return number;
  }
}

function kernelWithExecutor(): { kernel: Kernel; executor: ScriptedExecutor } {
  const kernel = new Kernel({
    store: new MemoryDataStore(),
    clock: new ManualClock(),
    random: new SeededRandom(7),
    logger: silentLogger,
    txnTimeoutMs: 100,
    maxTaskAttempts: 10,
    retryBackoffMaxMs: 0.001,
    appTimeCheckpointMs: 3_600_000,
    onFatal: () => undefined,
  });
  installTaskServices(kernel, silentLogger, () => assert.fail("no channels here"));
  kernel.defineTask("test.count", (ctx) => {
    const counter = ctx.data.getBindingForUpdate<{ n: number }>("counter");
    counter.n++;
  });
  const executor = new ScriptedExecutor(() => kernel);
  kernel.installExecutor(executor);
  return { kernel, executor };
}

describe("contention manager", () => {
  it("runs tasks here while attempts elsewhere keep conflicting, probes, and sends them out again once it passes", async () => {
    const { kernel, executor } = kernelWithExecutor();
    await kernel.run("setup", (ctx) => ctx.data.setBinding("counter", new Counter()));
    const submit = async (count: number) => {
      for (let n = 0; n < count; n++) await kernel.submit("count", "test.count", undefined);
    };
    // Every attempt elsewhere conflicts: each is retried here, and soon tasks are not sent at all.
    await submit(200);
    const sentFirst = executor.runs;
    assert.ok(sentFirst < 200 / 4, `while contended, most tasks ran here (${sentFirst} of 200 were sent out)`);
    await submit(600);
    const probes = executor.runs - sentFirst;
    assert.ok(probes >= 1, "but some still went out, to see whether the contention passed");
    assert.ok(probes <= 600 / 64, `and fewer as they kept conflicting (${probes} of the next 600)`);
    // The contention passes: the probes commit, come more often, and tasks go out again.
    executor.conflicting = false;
    await submit(2_000);
    executor.runs = 0;
    await submit(400);
    assert.ok(executor.runs > 300, `after it passed, tasks went out again (${executor.runs} of 400)`);
    const total = await kernel.run("read", (ctx) => ctx.data.getBinding<{ n: number }>("counter").n);
    assert.equal(total, 3_200, "every task committed exactly once");
    await kernel.close();
  });

  it("keeps running tasks here when runs of probes commit while most conflict", async () => {
    const { kernel, executor } = kernelWithExecutor();
    await kernel.run("setup", (ctx) => ctx.data.setBinding("counter", new Counter()));
    // Attempts elsewhere commit in runs of 8 and conflict in runs of 20, as probes that touch no
    // hot object do under lasting contention.
    executor.conflictWhen = (run) => run % 28 >= 8;
    for (let n = 0; n < 3_000; n++) await kernel.submit("count", "test.count", undefined);
    assert.ok(executor.runs < 3_000 / 20, `the switch stayed on: ${executor.runs} of 3,000 tasks went out`);
    const total = await kernel.run("read", (ctx) => ctx.data.getBinding<{ n: number }>("counter").n);
    assert.equal(total, 3_000, "every task committed exactly once");
    await kernel.close();
  });
});
