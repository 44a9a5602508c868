import { isRetryable, ManagedObjectError } from "../api/errors.js";
import { isManagedObject, managed } from "../api/managed.js";
import { PeriodicTaskHandle, Ref } from "../api/ref.js";
import type { Task, TaskContext, TaskManager } from "../api/types.js";
import type { TimerHandle } from "../kernel/clock.js";
import { serviceKey } from "../kernel/data-manager.js";
import type { EffectData } from "../kernel/effects.js";
import type { Kernel, TaskServiceHooks } from "../kernel/kernel.js";
import type { Logger } from "../kernel/logger.js";
import { callSync, type Transaction } from "../kernel/transaction.js";
import type { TaskKinds } from "../sessions/session-tasks.js";
import { MinHeap } from "./min-heap.js";

const TASK_BINDING = "task.";

/** Records between two progress reports while resuming. */
const PROGRESS_EVERY = 10_000;
/** Application time after which a run that exhausted its attempts on retryable errors is tried again. */
const RETRY_LATER_MS = 1000;

/**
 * The stored record of a scheduled task. It is bound under `s.task.<its id>` so that a restart finds
 * every pending task; the binding is removed when the task is done or cancelled.
 */
@managed("shardless.PendingTask")
export class PendingTask {
  constructor(
    /** The task object. */
    public task: Ref,
    /** True when the task object was stored by scheduling it, and so is removed after its last run. */
    public ownsTask: boolean,
    /** Application time of the next run. */
    public dueAppMs: number,
    /** 0 for a one-shot task; otherwise the period of the grid `startAppMs + k·periodMs`. */
    public periodMs: number,
    /** Application time of the first run: the origin of the grid. */
    public startAppMs: number,
  ) {}
}

/**
 * What committed tasks ask of the timers, as data: arm the run due at `dueAppMs`; for `next`, a
 * periodic task's next run, skipping grid points that have passed by the time it is released.
 */
export type TimerEffect = EffectData &
  (
    | { readonly to: "task"; readonly op: "arm"; readonly record: bigint; readonly dueAppMs: number }
    | { readonly to: "task"; readonly op: "next"; readonly record: bigint; readonly dueAppMs: number; readonly startAppMs: number; readonly periodMs: number }
  );

/** Arguments of a run of a scheduled task (plain data: it may go to a worker). */
export interface ScheduledRunArgs {
  readonly record: bigint;
}

/**
 * The transactional half of durable tasks: scheduling, cancelling, and each run. It runs wherever
 * tasks run; the timers are the {@link TaskService}'s, on the main thread.
 *
 * Scheduling writes a {@link PendingTask} in the scheduling transaction and asks for a timer only
 * when that transaction is durable. Each run is one transaction that runs the task and then either
 * removes the record or moves it to the next grid point; the next timer is asked for only with that
 * commit, so runs of one periodic task never overlap.
 */
export class ScheduledTasks {
  /** New tasks scheduled in each open transaction, whose ownership is decided when it commits. */
  private readonly ownershipToDecide = new WeakMap<Transaction, { task: object; record: PendingTask; taskId: bigint }[]>();

  /** Defines the kinds of task of scheduled runs in `kinds`. */
  defineTasks(kinds: TaskKinds): void {
    kinds.defineTask("task.run", (ctx, tx, args) => this.runOnce(ctx, tx, (args as ScheduledRunArgs).record));
    kinds.defineTask("task.advance", (_ctx, tx, args) => this.advance(tx, (args as ScheduledRunArgs).record));
  }

  /** The game-facing TaskManager of `tx`. */
  taskManagerFor(tx: Transaction): TaskManager {
    return new TransactionTaskManager(this, tx);
  }

  /** Cancels the periodic task with record id `handleId` in `tx`; nothing if already gone. */
  cancelPeriodicTask(tx: Transaction, handleId: bigint): void {
    const key = recordKey(handleId);
    if (!tx.isBound(key)) return;
    const record = tx.getBound(key, key, false) as PendingTask;
    this.retire(tx, key, record);
  }

  /**
   * The task object is the scheduler's to remove after its last run only if, when `tx` commits,
   * nothing else names it: no binding, no Ref from another object (a second scheduling of it
   * included). Otherwise the application owns it, as it owns every object. Decided for all of a
   * transaction's new tasks in one pass over what it holds: a task that schedules thousands must
   * not scan everything once for each.
   */
  private decideOwnershipAtCommit(tx: Transaction, task: object, record: PendingTask, taskId: bigint): void {
    let pending = this.ownershipToDecide.get(tx);
    if (pending === undefined) {
      const decisions: { task: object; record: PendingTask; taskId: bigint }[] = [];
      this.ownershipToDecide.set(tx, decisions);
      pending = decisions;
      tx.beforeCommit(() => {
        const named = tx.referencers();
        for (const each of decisions) {
          if (!tx.isLive(each.record)) continue;
          const by = named.get(each.taskId) ?? new Set<object>();
          each.record.ownsTask = [...by].every((holder) => holder === each.task || holder === each.record);
        }
      });
    }
    pending.push({ task, record, taskId });
  }

  /** Stores a pending task for `task` in `tx`; returns the record's id. */
  schedule(tx: Transaction, task: Task, delayMs: number, periodMs: number): bigint {
    tx.check("TaskManager");
    if (typeof task !== "object" || task === null || typeof (task as Partial<Task>).run !== "function") {
      throw new ManagedObjectError("a scheduled task must be a managed object with a run(ctx) method");
    }
    if (!isManagedObject(task)) throw new ManagedObjectError(`task ${(task as object).constructor.name} is not a managed object (decorate its class with @managed)`);
    if (!(typeof delayMs === "number" && Number.isFinite(delayMs) && delayMs >= 0)) {
      throw new RangeError(`delayMs must be a finite number >= 0, got ${String(delayMs)}`);
    }
    const wasStored = tx.isKnown(task);
    const due = tx.appTimeMs + delayMs;
    const taskId = tx.idOf(task);
    const record = new PendingTask(new Ref(taskId), false, due, periodMs, due);
    const recordId = tx.idOf(record);
    if (!wasStored) this.decideOwnershipAtCommit(tx, task, record, taskId);
    tx.bind(recordKey(recordId), record);
    const arm: TimerEffect = { to: "task", op: "arm", record: recordId, dueAppMs: due };
    tx.addEffect(arm);
    return recordId;
  }

  private runOnce(ctx: TaskContext, tx: Transaction, recordId: bigint): void {
    const key = recordKey(recordId);
    if (!tx.isBound(key)) return; // cancelled
    const record = tx.getBound(key, key, false) as PendingTask;
    // A timer armed for an earlier due time than the record now holds is stale: the run it stood
    // for has happened, and the record's current due time has its own timer.
    if (record.dueAppMs > tx.appTimeMs) return;
    const task = tx.tryGetObject(record.task.id) as Partial<Task> | undefined;
    if (task === undefined) {
      // The application removed the task object instead of cancelling: nothing left to run.
      ctx.log.warn("a scheduled task's object was removed; the task is cancelled", { record: recordId });
      this.retire(tx, key, record);
      return;
    }
    if (typeof task.run !== "function") throw new ManagedObjectError(`scheduled object ${task.constructor?.name ?? "?"} has no run(ctx) method`);
    callSync(`${task.constructor?.name ?? "Task"}.run`, () => task.run!(ctx));
    this.advance(tx, recordId);
  }

  /** After a run (or a failed run): the next grid point for a periodic task, removal otherwise. */
  private advance(tx: Transaction, recordId: bigint): void {
    const key = recordKey(recordId);
    if (!tx.isBound(key)) return; // the task cancelled itself
    const record = tx.getBound(key, key, false) as PendingTask;
    if (record.periodMs === 0) {
      this.retire(tx, key, record);
      return;
    }
    const next = nextGridPoint(record, tx.appTimeMs);
    record.dueAppMs = next;
    // The commit may become durable periods later (a slow store, a busy server): grid points
    // that have passed by then are skipped, not run late.
    const arm: TimerEffect = { to: "task", op: "next", record: recordId, dueAppMs: next, startAppMs: record.startAppMs, periodMs: record.periodMs };
    tx.addEffect(arm);
  }

  private retire(tx: Transaction, key: string, record: PendingTask): void {
    tx.unbind(key, key);
    tx.remove(record);
    if (record.ownsTask) {
      const task = tx.tryGetObject(record.task.id);
      if (task !== undefined) tx.remove(task);
    }
  }
}

/**
 * The timers of durable tasks, on the main thread: every pending task is armed at start-up and
 * when a commit asks for it, and each due run is submitted as a task (which may run on a worker).
 */
export class TaskService {
  private readonly due = new MinHeap<bigint>();
  /** The due time each record is armed for, so that arming the same run twice is harmless. */
  private readonly armed = new Map<bigint, number>();
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private stopped = false;

  constructor(
    private readonly kernel: Kernel,
    private readonly logger: Logger,
  ) {}

  /** Releases one timer effect of a committed task. */
  applyEffect(data: EffectData): void {
    const effect = data as TimerEffect;
    if (effect.op === "arm") this.arm(effect.record, effect.dueAppMs);
    else this.arm(effect.record, Math.max(effect.dueAppMs, gridPointAtOrAfter(effect.startAppMs, effect.periodMs, this.kernel.appTimeMs())));
  }

  /**
   * Finds every pending task in the store and arms its timer. Call once at start-up. `onProgress`
   * hears the count found so far, every {@link PROGRESS_EVERY} records and at the end.
   */
  async resume(onProgress: (found: number) => void = () => undefined): Promise<number> {
    const pending = await this.kernel.run(
      "resume scheduled tasks",
      (_ctx, tx) => {
        const found: [bigint, number][] = [];
        const prefix = serviceKey(TASK_BINDING);
        for (let key = tx.nextBoundKey(undefined, prefix); key !== undefined; key = tx.nextBoundKey(key, prefix)) {
          const record = tx.getBound(key, key, false) as PendingTask;
          found.push([BigInt(key.slice(prefix.length)), record.dueAppMs]);
          if (found.length % PROGRESS_EVERY === 0) onProgress(found.length);
        }
        return found;
      },
      { timeoutMs: Infinity },
    );
    onProgress(pending.length);
    for (const [id, dueAppMs] of pending) this.arm(id, dueAppMs);
    return pending.length;
  }

  /** Disarms every timer; pending tasks stay stored and resume at the next start. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.kernel.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  private arm(recordId: bigint, dueAppMs: number): void {
    if (this.stopped || this.armed.get(recordId) === dueAppMs) return;
    if (dueAppMs <= this.kernel.appTimeMs()) {
      this.start(recordId); // due already: no timer hop
      return;
    }
    this.armed.set(recordId, dueAppMs);
    this.due.push(dueAppMs, recordId);
    this.rearm();
  }

  private rearm(): void {
    const next = this.due.peekKey();
    if (next === undefined || next >= this.timerAt) return;
    if (this.timer !== undefined) this.kernel.clock.clearTimer(this.timer);
    this.timerAt = next;
    this.timer = this.kernel.clock.setTimer(next - this.kernel.appTimeMs(), () => this.fire());
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.kernel.appTimeMs();
    while ((this.due.peekKey() ?? Infinity) <= now) {
      const recordId = this.due.pop()!;
      this.armed.delete(recordId);
      this.start(recordId);
    }
    this.rearm();
  }

  private start(recordId: bigint): void {
    const args: ScheduledRunArgs = { record: recordId };
    this.kernel.submit(`task ${recordId}`, "task.run", args, { type: "scheduled-task" }).catch((error: unknown) => {
      if (isRetryable((error as { cause?: unknown }).cause)) {
        // Conflicts or timeouts on every attempt: a passing condition, so the run is not lost.
        this.logger.warn("scheduled task kept failing with retryable errors; trying again later", { record: recordId, error });
        this.arm(recordId, this.kernel.appTimeMs() + RETRY_LATER_MS);
        return;
      }
      this.logger.warn("scheduled task failed; moving on to its next run", { record: recordId, error });
      this.kernel.submit(`task ${recordId} after failure`, "task.advance", args, { type: "scheduled-task" }).catch((cleanupError: unknown) =>
        this.logger.error("could not reschedule a failed task", { record: recordId, error: cleanupError }),
      );
    });
  }
}

/** The game-facing TaskManager of one transaction. */
class TransactionTaskManager implements TaskManager {
  constructor(
    private readonly service: ScheduledTasks,
    private readonly tx: Transaction,
  ) {}

  scheduleTask(task: Task, delayMs = 0): void {
    this.service.schedule(this.tx, task, delayMs, 0);
  }

  schedulePeriodicTask(task: Task, delayMs: number, periodMs: number): PeriodicTaskHandle {
    if (!(typeof periodMs === "number" && Number.isFinite(periodMs) && periodMs > 0)) {
      throw new RangeError(`periodMs must be a finite number > 0, got ${String(periodMs)}`);
    }
    return new PeriodicTaskHandle(this.service.schedule(this.tx, task, delayMs, periodMs));
  }

  shouldContinue(): boolean {
    this.tx.check("TaskManager.shouldContinue");
    return this.tx.budgetLeft() > 0.5;
  }
}

function recordKey(recordId: bigint): string {
  return serviceKey(TASK_BINDING + recordId.toString());
}

/** The first point of the grid `start + k·period` (k ≥ 0) at or after `atAppMs`. */
export function gridPointAtOrAfter(startAppMs: number, periodMs: number, atAppMs: number): number {
  if (atAppMs <= startAppMs) return startAppMs;
  return startAppMs + Math.ceil((atAppMs - startAppMs) / periodMs) * periodMs;
}

/**
 * The first point of the grid `start + k·period` after both `now` and the current due time:
 * periods missed while the server was busy are skipped, never run in a burst.
 */
export function nextGridPoint(record: Pick<PendingTask, "startAppMs" | "periodMs" | "dueAppMs">, nowAppMs: number): number {
  const reference = Math.max(nowAppMs, record.dueAppMs);
  const periods = Math.floor((reference - record.startAppMs) / record.periodMs) + 1;
  return record.startAppMs + periods * record.periodMs;
}

/**
 * Gives `kernel` durable tasks: the timers, the transactional half with its kinds of task, and the
 * task service hooks of its transactions (`channelManagerFor` gives them their channels).
 */
export function installTaskServices(kernel: Kernel, logger: Logger, channelManagerFor: TaskServiceHooks["channelManagerFor"]): { tasks: TaskService; scheduled: ScheduledTasks } {
  const scheduled = new ScheduledTasks();
  const tasks = new TaskService(kernel, logger);
  kernel.installTaskService(scheduledTaskHooks(scheduled, channelManagerFor));
  kernel.installEffectHandler("task", (effect) => tasks.applyEffect(effect));
  scheduled.defineTasks(kernel);
  return { tasks, scheduled };
}

/** The task service hooks of transactions, for a thread with `scheduled` (see {@link installTaskServices}). */
export function scheduledTaskHooks(scheduled: ScheduledTasks, channelManagerFor: TaskServiceHooks["channelManagerFor"]): TaskServiceHooks {
  return {
    taskManagerFor: (tx) => scheduled.taskManagerFor(tx),
    channelManagerFor,
    cancelPeriodicTask: (tx, id) => scheduled.cancelPeriodicTask(tx, id),
  };
}
