// Conflict profiling: what a conflict was on (object with the binding name the task used, binding,
// range), ranked over a sliding window, and served at /conflicts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SystemClock, TransactionConflictError, managed, type AppListener } from "shardless";
import { ConflictProfile } from "../src/metrics/conflict-profile.ts";
import { testKernel, testServer } from "./helpers.ts";

@managed("conflicts.Counter")
class Counter {
  value = 0;
}

@managed("conflicts.App")
class App implements AppListener {
  initialize(): void {}
}

/** Two transactions that both write what both read: the second's commit conflicts. */
async function conflictOf(write: (first: boolean) => (ctx: Parameters<Parameters<ReturnType<typeof testKernel>["kernel"]["run"]>[1]>[0]) => void): Promise<TransactionConflictError> {
  const { kernel } = testKernel();
  await kernel.run("seed", (ctx) => {
    ctx.data.setBinding("hot", new Counter());
    ctx.data.setBinding("list.1", new Counter());
  });
  const first = kernel.openTransaction("first");
  const second = kernel.openTransaction("second");
  kernel.execute(first, "first", write(true));
  kernel.execute(second, "second", write(false));
  const durable = first.commit();
  const error = (() => {
    try {
      void second.commit();
    } catch (caught) {
      return caught;
    }
    return assert.fail("the second commit should conflict");
  })();
  await durable;
  assert.ok(error instanceof TransactionConflictError);
  return error;
}

describe("conflict profiling", () => {
  it("says which object a conflict was on, by the binding name the task reached it with", async () => {
    const error = await conflictOf(() => (ctx) => ctx.data.getBinding<Counter>("hot").value++);
    assert.equal(error.on?.kind, "object");
    assert.equal(error.on.kind === "object" ? error.on.binding : undefined, "a.hot");
  });

  it("says which binding, or which scanned range, a conflict was on", async () => {
    // Both look the name up (absent), then bind it: the second's lookup is stale.
    const binding = await conflictOf(() => (ctx) => {
      assert.throws(() => ctx.data.getBinding("new"));
      ctx.data.setBinding("new", new Counter());
    });
    assert.deepEqual(binding.on, { kind: "binding", name: "a.new" });
    const range = await conflictOf((first) => (ctx) => {
      ctx.data.nextBoundName("list.");
      ctx.data.setBinding(first ? "list.0" : "other", new Counter()); // list.0 falls in the scanned range
    });
    assert.equal(range.on?.kind, "range");
  });

  it("ranks sources by aborts over a sliding window, with task types and class tags", () => {
    let now = 0;
    const profile = new ConflictProfile(60_000, 6, () => now);
    for (let i = 0; i < 5; i++) profile.record({ kind: "object", id: 7n, binding: "a.hot" }, "session-message");
    profile.record({ kind: "object", id: 7n }, "scheduled-task");
    profile.record({ kind: "binding", name: "a.lobby" }, "login");
    profile.record({ kind: "range", prefix: "s.task." }, "run");
    const report = profile.report(2, (id) => (id === 7n ? "game.Hot" : undefined));
    assert.equal(report.totalAborts, 8);
    assert.deepEqual(report.hot[0], { kind: "object", id: "7", binding: "hot", classTag: "game.Hot", aborts: 6, taskTypes: { "session-message": 5, "scheduled-task": 1 } });
    assert.equal(report.hot.length, 2);
    now = 55_000;
    profile.record({ kind: "binding", name: "a.lobby" }, "login");
    now = 71_000; // the first bucket (0-10 s) has left the window
    const later = profile.report(10, () => undefined);
    assert.deepEqual(
      later.hot.map((spot) => [spot.binding ?? spot.prefix, spot.aborts]),
      [["lobby", 1]],
    );
  });

  it("serves the profile at /conflicts", async () => {
    const server = await testServer({ app: App, clock: new SystemClock(), httpPort: 0, host: "127.0.0.1" }, import.meta.url);
    let attempts = 0;
    await server.run("contended", () => {
      // Conflicts need tasks running side by side (workers); thrown here, the kernel treats it the same.
      if (attempts++ < 2) throw new TransactionConflictError("simulated", { on: { kind: "binding", name: "a.scoreboard" } });
    });
    const report = (await (await fetch(`http://127.0.0.1:${server.httpPort!}/conflicts`)).json()) as { totalAborts: number; hot: { binding: string; aborts: number; taskTypes: Record<string, number> }[] };
    assert.equal(report.totalAborts, 2);
    assert.deepEqual(report.hot[0], { kind: "binding", binding: "scoreboard", aborts: 2, taskTypes: { run: 2 } });
  });
});
