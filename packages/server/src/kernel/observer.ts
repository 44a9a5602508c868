import type { ConflictSource } from "../api/errors.js";

/**
 * Why an attempt of a task did not commit: `chain` is an attempt that ran on the writes of the task
 * before it in its chain, which did not commit (see `RunOptions.chain`).
 */
export type AbortReason = "conflict" | "timeout" | "error" | "chain";

/** One group commit, as the committer saw it. */
export interface BatchStats {
  /** Tasks whose commits the batch holds. */
  readonly tasks: number;
  /** Objects and bindings written (0 for a batch that only releases effects). */
  readonly writes: number;
  /** Time from the batch's flush to its durability, in milliseconds. */
  readonly durableMs: number;
}

/**
 * What the kernel reports as it runs tasks, for metrics. Calls are synchronous and on the hot path:
 * an observer counts, it does not do I/O. Every method is optional to implement (the default
 * observer ignores everything).
 */
export interface KernelObserver {
  /** An attempt of a task of `type` begins. */
  attemptStarted(type: string): void;
  /**
   * An attempt aborted; `retried` tells whether the task will be attempted again, and `on` what a
   * conflict was on, when known.
   */
  attemptAborted(type: string, reason: AbortReason, retried: boolean, on?: ConflictSource): void;
  /** A task's commit became durable, `latencyMs` after it was submitted, in `attempts` attempts. */
  taskCommitted(type: string, latencyMs: number, attempts: number): void;
  /** A task failed for good. */
  taskFailed(type: string): void;
  /** A group commit became durable. */
  batchDurable(stats: BatchStats): void;
}

/** The observer of a kernel nobody watches. */
export const IGNORING_OBSERVER: KernelObserver = Object.freeze({
  attemptStarted: () => undefined,
  attemptAborted: () => undefined,
  taskCommitted: () => undefined,
  taskFailed: () => undefined,
  batchDurable: () => undefined,
});
