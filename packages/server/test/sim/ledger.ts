// The effects checker: every effect of a committed task exactly once, in commit order, none from an
// aborted attempt or a task that did not become durable, and none after the store failed.

/** Where checkers report what they found; the run goes on so that one report holds them all. */
export class Violations {
  readonly list: string[] = [];
  /** Describes the moment of a report (the loop iteration, the simulated time). */
  where: () => string = () => "";

  add(message: string): void {
    if (this.list.length < 1000) this.list.push(`${this.where()} ${message}`);
  }
}

/** Where workload effects are delivered: the ledger, or a deliberately faulty double of it. */
export interface EffectSink {
  /** Effect number `effect` of attempt `attempt` of tracked task `task` was released. */
  deliver(task: number, attempt: number, effect: number): void;
  /** A run of the scheduled task `label`, started at application time `appMs`, was released. */
  runReleased(label: string, appMs: number): void;
}

interface Tracked {
  readonly id: number;
  readonly label: string;
  /** Effects every attempt adds. */
  readonly effects: number;
  attempts: number;
  /** Position in commit order, once an attempt has been validated. */
  order: number | undefined;
  failed: boolean;
  outcome: "pending" | "resolved" | "rejected";
  delivered: number;
}

/**
 * Tracks workload tasks from submission to outcome and checks the stream of released effects
 * against the commit order it was told of. Every tracked task adds at least one effect, so the
 * stream must be exactly the committed tasks' effects, task after task in commit order.
 */
export class Ledger implements EffectSink {
  private readonly tasks = new Map<number, Tracked>();
  private readonly committedOrder: Tracked[] = [];
  /** Index in `committedOrder` of the task whose effects are due next. */
  private cursor = 0;
  private storeFailed = false;
  /** Effects released. */
  released = 0;

  constructor(
    private readonly violations: Violations,
    /** Told of each scheduled-task run released (the ledger checks only that none comes after a store failure). */
    private readonly onRun: (label: string, appMs: number) => void,
    /** Told of each workload effect accepted in order (for per-session checks and the trace). */
    private readonly onEffect: (task: number, effect: number) => void,
  ) {}

  /** Starts tracking a task that adds `effects` (at least 1) effects per attempt; returns its id. */
  track(label: string, effects: number): number {
    if (effects < 1) throw new Error("a tracked task adds at least one effect");
    const id = this.tasks.size + 1;
    this.tasks.set(id, { id, label, effects, attempts: 0, order: undefined, failed: false, outcome: "pending", delivered: 0 });
    return id;
  }

  /** An attempt of `id` begins; returns its number (1-based). */
  attempt(id: number): number {
    const task = this.get(id);
    if (task.order !== undefined || task.failed) this.violations.add(`${task.label}: attempt ${task.attempts + 1} began after the task was ${task.failed ? "given up" : "committed"}`);
    return ++task.attempts;
  }

  /** The latest attempt of `id` was validated: its place in commit order is the next one. */
  committed(id: number): void {
    const task = this.get(id);
    if (task.order !== undefined || task.failed) this.violations.add(`${task.label}: ordered twice`);
    task.order = this.committedOrder.length;
    this.committedOrder.push(task);
  }

  /** `id` failed for good: none of its attempts committed. */
  gaveUp(id: number): void {
    const task = this.get(id);
    if (task.order !== undefined) this.violations.add(`${task.label}: given up after it committed`);
    task.failed = true;
  }

  /** Position of `id` in commit order, or undefined. */
  orderOf(id: number): number | undefined {
    return this.get(id).order;
  }

  deliver(id: number, attempt: number, effect: number): void {
    this.released++;
    const task = this.get(id);
    if (this.storeFailed) this.violations.add(`${task.label}: effect ${effect} released after the store failed`);
    if (task.outcome !== "pending") this.violations.add(`${task.label}: effect ${effect} released after the task was ${task.outcome}`);
    if (task.order === undefined) {
      this.violations.add(`${task.label}: effect ${effect} of attempt ${attempt} released, but no attempt committed`);
      return;
    }
    if (attempt !== task.attempts) this.violations.add(`${task.label}: effect of aborted attempt ${attempt} released (attempt ${task.attempts} committed)`);
    const due = this.committedOrder[this.cursor];
    if (due !== task) {
      const what = due === undefined ? "no effect was due" : `effect ${due.delivered} of ${due.label} (commit #${due.order}) was due`;
      this.violations.add(`${task.label} (commit #${task.order}): effect ${effect} released out of commit order or twice; ${what}`);
      return;
    }
    if (effect !== task.delivered) {
      this.violations.add(`${task.label}: effect ${effect} released when effect ${task.delivered} was due`);
      return;
    }
    task.delivered++;
    if (task.delivered === task.effects) this.cursor++;
    this.onEffect(id, effect);
  }

  runReleased(label: string, appMs: number): void {
    this.released++;
    if (this.storeFailed) this.violations.add(`run of ${label} at ${appMs} released after the store failed`);
    this.onRun(label, appMs);
  }

  /** The task's promise settled: resolved (durable) or rejected. */
  settled(id: number, resolved: boolean): void {
    const task = this.get(id);
    if (task.outcome !== "pending") this.violations.add(`${task.label}: settled twice`);
    task.outcome = resolved ? "resolved" : "rejected";
    if (resolved && (task.order === undefined || task.delivered !== task.effects)) {
      this.violations.add(`${task.label}: resolved with ${task.delivered} of ${task.effects} effects released${task.order === undefined ? " and no commit" : ""}`);
    }
    if (!resolved && task.delivered > 0) this.violations.add(`${task.label}: rejected after ${task.delivered} of its effects were released`);
  }

  /** The store failed: from now on no effect may be released. */
  markStoreFailed(): void {
    this.storeFailed = true;
  }

  /** Tasks not yet settled. */
  get unsettled(): number {
    let count = 0;
    for (const task of this.tasks.values()) if (task.outcome === "pending") count++;
    return count;
  }

  /** Tasks tracked, committed, and given up. */
  get counts(): { tracked: number; committed: number; gaveUp: number } {
    let gaveUp = 0;
    for (const task of this.tasks.values()) if (task.failed) gaveUp++;
    return { tracked: this.tasks.size, committed: this.committedOrder.length, gaveUp };
  }

  /**
   * End-of-run checks. With a healthy store every committed task's effects were released and every
   * task settled; after a store failure the durable tasks are exactly a prefix of commit order.
   */
  finish(healthy: boolean): void {
    for (const task of this.tasks.values()) {
      if (task.outcome === "pending") this.violations.add(`${task.label}: never settled (attempts ${task.attempts}, ${task.order === undefined ? "not committed" : `commit #${task.order}`})`);
    }
    if (healthy && this.cursor !== this.committedOrder.length) {
      const next = this.committedOrder[this.cursor]!;
      this.violations.add(`effects of ${this.committedOrder.length - this.cursor} committed task(s) never released, from ${next.label} (commit #${next.order})`);
    }
    for (const [index, task] of this.committedOrder.entries()) {
      const released = index < this.cursor;
      if (task.outcome === "resolved" && !released) this.violations.add(`${task.label}: resolved but its effects were not all released`);
      if (task.outcome === "rejected" && released) this.violations.add(`${task.label}: rejected though its effects were released`);
    }
  }

  private get(id: number): Tracked {
    const task = this.tasks.get(id);
    if (task === undefined) throw new Error(`untracked task ${id}`);
    return task;
  }
}
