// Contention: tasks inserting distinct keys into one ScalableMap conflict far less than the same
// tasks on a Map inside one managed object.
//
// The kernel runs queued tasks one after another on one thread, so tasks queued with `run` never
// overlap. Overlap is made here the way worker threads will make it: in each wave, `writers`
// transactions open on the same snapshot, each runs its task, then they commit one after the other;
// the committer refuses (TransactionConflictError) each one that read something an earlier one in
// the wave wrote, and that task goes round again in the next wave. Counts, not timings, are compared.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ScalableMap, ScalableSet, type TaskContext } from "shardless";
import { Holder, overlapping } from "./contention.ts";
import { testKernel } from "./helpers.ts";

const KEYS = 1200;
const WRITERS = 8;

describe("contention on scalable collections", () => {
  it("aborts at least 5x less often inserting distinct keys into a ScalableMap than into a Map in one object", async (t) => {
    const { kernel } = testKernel();
    await kernel.run("create", (ctx) => {
      ctx.data.setBinding("scalable", new ScalableMap<string, number>());
      ctx.data.setBinding("plain", new Holder());
    });
    const keys = Array.from({ length: KEYS }, (_, i) => `player-${i}`);
    const scalable = await overlapping(kernel, keys.map((key, i) => (ctx: TaskContext) => void ctx.data.getBinding<ScalableMap<string, number>>("scalable").set(key, i)), WRITERS);
    const plain = await overlapping(kernel, keys.map((key, i) => (ctx: TaskContext) => void ctx.data.getBinding<Holder>("plain").entries.set(key, i)), WRITERS);
    t.diagnostic(`${KEYS} inserts, ${WRITERS} overlapping writers: ScalableMap ${scalable.conflicts} conflicts in ${scalable.waves} waves; Map in one object ${plain.conflicts} conflicts in ${plain.waves} waves`);
    assert.equal(scalable.commits, KEYS);
    assert.equal(plain.commits, KEYS);
    // The plain map lets one writer per wave through: 7 of every 8 attempts conflict.
    assert.ok(plain.conflicts >= KEYS * (WRITERS - 2), `the plain Map serialises its writers (${plain.conflicts} conflicts)`);
    assert.ok(plain.conflicts >= 5 * scalable.conflicts, `ScalableMap ${scalable.conflicts} vs plain ${plain.conflicts}`);
    const sizes = await kernel.run("check", (ctx) => [ctx.data.getBinding<ScalableMap>("scalable").size(), ctx.data.getBinding<Holder>("plain").entries.size]);
    assert.deepEqual(sizes, [KEYS, KEYS]);
  });

  it("pre-split for 256 writers, a ScalableSet conflicts on a few percent of inserts at most", async (t) => {
    const { kernel } = testKernel();
    await kernel.run("create", (ctx) => ctx.data.setBinding("set", new ScalableSet<number>({ minConcurrency: 256 })));
    const tasks = Array.from({ length: KEYS }, (_, i) => (ctx: TaskContext) => void ctx.data.getBinding<ScalableSet<number>>("set").add(i));
    const result = await overlapping(kernel, tasks, WRITERS);
    t.diagnostic(`${KEYS} adds, ${WRITERS} overlapping writers, 256 buckets: ${result.conflicts} conflicts`);
    // Two of 8 writers land in the same one of 256 buckets about 10% of waves: ~0.14 conflicts per wave.
    assert.ok(result.conflicts <= KEYS * 0.05, `${result.conflicts} conflicts`);
    assert.equal(await kernel.run("size", (ctx) => ctx.data.getBinding<ScalableSet>("set").size()), KEYS);
  });
});
