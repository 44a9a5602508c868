// Overlapping writers, made by hand: the kernel runs queued tasks one after another on one thread,
// so tasks queued with `run` never overlap. In each wave, `writers` transactions open on the same
// snapshot, each runs its task, then they commit one after the other; the committer refuses
// (TransactionConflictError) each one that read something an earlier one in the wave wrote, and
// that task goes round again in the next wave. Used by the contention test and the benchmarks.
import { ScalableMap, TransactionConflictError, managed, type TaskContext } from "shardless";
import { bareKernel } from "./kernel-helpers.ts";

type Kernel = ReturnType<typeof bareKernel>["kernel"];

/** A plain Map inside one managed object: what a ScalableMap is compared with. */
@managed("collections-contention.Holder")
export class Holder {
  entries = new Map<string, number>();
}

/**
 * Runs every task of `tasks` to a commit in waves of `writers` overlapping transactions; returns
 * how many commit attempts the committer refused as conflicts.
 */
export async function overlapping(kernel: Kernel, tasks: readonly ((ctx: TaskContext) => void)[], writers: number): Promise<{ commits: number; conflicts: number; waves: number }> {
  const pending = [...tasks];
  let conflicts = 0;
  let commits = 0;
  let waves = 0;
  while (pending.length > 0) {
    waves++;
    const wave = pending.splice(0, writers);
    const opened = wave.map((task, index) => ({ task, tx: kernel.openTransaction(`writer ${index}`) }));
    for (const { task, tx } of opened) kernel.execute(tx, "insert", (ctx) => task(ctx));
    const durable: Promise<void>[] = [];
    for (const { task, tx } of opened) {
      try {
        durable.push(tx.commit());
        commits++;
      } catch (error) {
        if (!(error instanceof TransactionConflictError)) throw error;
        conflicts++;
        pending.push(task); // retried in a later wave, like the kernel's retry
      }
    }
    await Promise.all(durable);
  }
  return { commits, conflicts, waves };
}

/** Conflicts and waves of `keys` inserts of distinct keys by `writers` overlapping writers. */
export interface ContentionFigures {
  readonly writers: number;
  readonly keys: number;
  readonly plain: { conflicts: number; waves: number };
  readonly scalable: { conflicts: number; waves: number };
}

/** Inserts `keys` distinct keys into a Map in one object and into a ScalableMap (default options). */
export async function measureMapContention(writers: number, keys: number): Promise<ContentionFigures> {
  const { kernel } = bareKernel();
  await kernel.run("create", (ctx) => {
    ctx.data.setBinding("scalable", new ScalableMap<string, number>());
    ctx.data.setBinding("plain", new Holder());
  });
  const names = Array.from({ length: keys }, (_, i) => `player-${i}`);
  const scalable = await overlapping(kernel, names.map((key, i) => (ctx: TaskContext) => void ctx.data.getBinding<ScalableMap<string, number>>("scalable").set(key, i)), writers);
  const plain = await overlapping(kernel, names.map((key, i) => (ctx: TaskContext) => void ctx.data.getBinding<Holder>("plain").entries.set(key, i)), writers);
  await kernel.close();
  return { writers, keys, plain: { conflicts: plain.conflicts, waves: plain.waves }, scalable: { conflicts: scalable.conflicts, waves: scalable.waves } };
}
