import { managed } from "../api/managed.js";
import type { Ref } from "../api/ref.js";
import type { Task, TaskContext } from "../api/types.js";

/** An internal object of a collection: it names the internal objects to remove along with it. */
export interface CollectionPart {
  /** Refs to the internal objects this one owns (children, the next segment). */
  ownedParts(): readonly Ref[];
}

/**
 * How many internal objects the removing task itself removes before handing the rest to a
 * {@link Reaper}: a small collection disappears in the same commit, a large one cannot be removed
 * within one task's time budget.
 */
const INLINE_REMOVALS = 64;
/** Objects a Reaper removes per run at most, so that each run's commit stays small. */
const REMOVALS_PER_RUN = 2048;

/**
 * A durable task that removes detached internal objects of a collection (after `clear()` or the
 * removal of the collection) in slices, rescheduling itself until none is left. Being a scheduled
 * task, it survives restarts: a removal that was committed is always finished.
 */
@managed("shardless.collections.Reaper")
export class Reaper implements Task {
  constructor(
    /** Roots of the subtrees still to remove. */
    public pending: Ref[],
  ) {}

  run(ctx: TaskContext): void {
    const left = removeParts(ctx, this.pending, REMOVALS_PER_RUN);
    if (left.length > 0) ctx.tasks.scheduleTask(new Reaper(left));
  }
}

/**
 * Removes the objects `roots` name and everything they own: up to {@link INLINE_REMOVALS} now, the
 * rest by a scheduled {@link Reaper}. The objects must already be unreachable from the collection.
 */
export function removeParts(ctx: TaskContext, roots: readonly Ref[], limit = INLINE_REMOVALS): Ref[] {
  // Depth first: the stack holds at most (depth × fan-out) refs even for a huge tree, so the
  // Reaper that carries it stays a small object.
  const stack = [...roots];
  let removed = 0;
  while (stack.length > 0 && removed < limit && (removed === 0 || ctx.tasks.shouldContinue())) {
    const part = stack.pop()!.get() as Partial<CollectionPart>;
    if (typeof part.ownedParts === "function") stack.push(...part.ownedParts());
    ctx.data.removeObject(part);
    removed++;
  }
  return stack;
}

/** Removes `roots` and everything they own, now or (for what does not fit in this task) later. */
export function removeCollectionParts(ctx: TaskContext, roots: readonly Ref[]): void {
  const left = removeParts(ctx, roots);
  if (left.length > 0) ctx.tasks.scheduleTask(new Reaper(left));
}
