import { withActiveTransaction } from "../api/active-transaction.js";
import { isRetryable, TaskFailedError, TransactionConflictError, TransactionTimeoutError } from "../api/errors.js";
import type { ChannelManager } from "../api/channel.js";
import type { DataManager, TaskContext, TaskLog, TaskManager } from "../api/types.js";
import type { Clock, TimerHandle } from "./clock.js";
import { Committer, NODE_SCHEDULER, type Scheduler } from "./committer.js";
import { TransactionDataManager } from "./data-manager.js";
import type { DataStore } from "./data-store.js";
import type { Logger } from "./logger.js";
import { IGNORING_OBSERVER, type AbortReason, type KernelObserver } from "./observer.js";
import type { Random } from "./random.js";
import { callSync, Transaction, type TransactionHooks } from "./transaction.js";

/** What the kernel needs from the services above it, installed by the composition root. */
export interface TaskServiceHooks {
  /** The game-facing TaskManager of `tx`. */
  taskManagerFor(tx: Transaction): TaskManager;
  /** The game-facing ChannelManager of `tx`. */
  channelManagerFor(tx: Transaction): ChannelManager;
  /** Cancels a periodic task inside `tx`. */
  cancelPeriodicTask(tx: Transaction, handleId: bigint): void;
}

/** Options of {@link Kernel}. */
export interface KernelOptions {
  readonly store: DataStore;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** A task's time budget, checked at every data access and at commit. */
  readonly txnTimeoutMs: number;
  /** Attempts before a task that keeps failing with retryable errors is given up. */
  readonly maxTaskAttempts: number;
  /** Upper bound of the randomised backoff between attempts. */
  readonly retryBackoffMaxMs: number;
  /** How often application time is saved while nothing else commits. */
  readonly appTimeCheckpointMs: number;
  /** Called if the store fails: the server must stop. */
  readonly onFatal: (error: unknown) => void;
  /** Told of every attempt, commit and batch (for metrics); none by default. */
  readonly observer?: KernelObserver;
  /**
   * Where the task pump and the committer's flush are deferred to, and how a turn's length is
   * measured; Node's event loop ({@link NODE_SCHEDULER}) by default. A simulation supplies its own.
   */
  readonly scheduler?: Scheduler;
}

/** Per-run options of {@link Kernel.run}. */
export interface RunOptions {
  /** Time budget; defaults to the kernel's `txnTimeoutMs`. `Infinity` for none. */
  readonly timeoutMs?: number;
  /** Overrides the kernel's `maxTaskAttempts`. */
  readonly maxAttempts?: number;
  /**
   * Called once, synchronously, as soon as the task's place in commit order is fixed: right after
   * the attempt that commits has been validated (its writes are visible to later tasks, and its
   * effects will be released after those of every earlier commit), or when it fails for good.
   * A task submitted from here is ordered after this one without waiting for its durability.
   */
  readonly onOrdered?: () => void;
  /**
   * What kind of task this is, for metrics: a small fixed set of values (a name with a player's
   * name in it would make a metric per player). Defaults to "run".
   */
  readonly type?: string;
  /** Fields added to every line the task logs (with `ctx.log`), such as the session it serves. */
  readonly logFields?: Readonly<Record<string, unknown>>;
}

interface Job {
  readonly name: string;
  readonly type: string;
  readonly logFields: Readonly<Record<string, unknown>> | undefined;
  /** When the task was submitted (performance.now()), for its latency. */
  readonly submittedAt: number;
  readonly body: (ctx: TaskContext, tx: Transaction) => unknown;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly onOrdered: (() => void) | undefined;
  attempts: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** What the kernel has done since it started. */
export interface KernelCounters {
  /** Tasks whose commit became durable. */
  committed: number;
  /** Attempts that aborted with a conflict, and were retried or given up. */
  conflicts: number;
  /** Attempts that ran past their time budget. */
  timeouts: number;
  /** Tasks that failed for good. */
  failed: number;
}

/** How long one turn of the event loop may spend running tasks before letting I/O in. */
const TURN_BUDGET_MS = 10;
const RETRY_BACKOFF_BASE_MS = 1;

/**
 * Runs tasks as transactions, one at a time on this thread, retrying those that fail with a
 * retryable error after a randomised exponential backoff. Commits flow to the {@link Committer},
 * which makes them durable in groups and then releases their effects.
 */
export class Kernel {
  readonly committer: Committer;
  readonly counters: KernelCounters = { committed: 0, conflicts: 0, timeouts: 0, failed: 0 };
  private readonly queue: Job[] = [];
  private pumpScheduled = false;
  private inFlightJobs = 0;
  private readonly appTimeBase: number;
  private readonly clockAtBoot: number;
  private checkpointTimer: TimerHandle | undefined;
  private taskService: TaskServiceHooks | undefined;
  private readonly services = new Map<string, unknown>();
  /** What every transaction asks of the kernel; one object, not one per transaction. */
  private readonly transactionHooks: TransactionHooks = {
    cancelPeriodicTask: (tx, id) => this.hooks().cancelPeriodicTask(tx, id),
    service: <T>(name: string): T => {
      if (!this.services.has(name)) throw new Error(`no service named ${name} on this server`);
      return this.services.get(name) as T;
    },
  };
  private closed = false;
  private lastTransactionId = 0;
  private readonly observer: KernelObserver;
  private readonly scheduler: Scheduler;

  constructor(private readonly options: KernelOptions) {
    this.observer = options.observer ?? IGNORING_OBSERVER;
    this.scheduler = options.scheduler ?? NODE_SCHEDULER;
    this.committer = new Committer(options.store, {
      scheduler: this.scheduler,
      onBatchDurable: (stats) => this.observer.batchDurable(stats),
      appTimeMs: () => this.appTimeMs(),
      onStoreFailure: (error) => {
        options.logger.error("data store write failed; stopping", { error });
        options.onFatal(error);
      },
      onEffectError: (error) => options.logger.error("an effect failed after commit", { error }),
    });
    this.appTimeBase = options.store.readMeta()?.appTimeMs ?? 0;
    this.clockAtBoot = options.clock.now();
    this.armCheckpoint();
  }

  /** Installs the task service; must happen before the first task runs. */
  installTaskService(service: TaskServiceHooks): void {
    this.taskService = service;
  }

  /** Makes `service` reachable from transactions as `tx.service(name)`. */
  installService(name: string, service: unknown): void {
    if (this.services.has(name)) throw new Error(`service ${name} installed twice`);
    this.services.set(name, service);
  }

  /** The clock the kernel runs on. */
  get clock(): Clock {
    return this.options.clock;
  }

  /** Application time in ms: it advances while the server runs and resumes where it stopped. */
  appTimeMs(): number {
    return this.appTimeBase + (this.options.clock.now() - this.clockAtBoot);
  }

  /**
   * Queues `body` to run as a task, retrying it on retryable failures.
   * @returns the value `body` returned on the attempt that committed, once that commit is durable.
   * @throws {TaskFailedError} (rejects) when it fails for good; `cause` is the last error.
   */
  run<T>(name: string, body: (ctx: TaskContext, tx: Transaction) => T, options: RunOptions = {}): Promise<T> {
    if (this.closed) return Promise.reject(new TaskFailedError(`task ${name} submitted after shutdown`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        name,
        body,
        timeoutMs: options.timeoutMs ?? this.options.txnTimeoutMs,
        maxAttempts: options.maxAttempts ?? this.options.maxTaskAttempts,
        onOrdered: options.onOrdered,
        type: options.type ?? "run",
        logFields: options.logFields,
        submittedAt: performance.now(),
        attempts: 0,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      this.inFlightJobs++;
      this.schedulePump();
    });
  }

  /**
   * Opens a transaction directly, outside the task queue, for embedding code and tests that need
   * to interleave transactions. The caller must `commit()` or `abort()` it.
   */
  openTransaction(name: string, timeoutMs: number = this.options.txnTimeoutMs, type = "run", logFields?: Readonly<Record<string, unknown>>): Transaction {
    const services = this.hooks(); // before begin(): a transaction that never ends would stop pruning
    const tx = new Transaction(this.committer, this.options.clock, this.transactionHooks, { timeoutMs, appTimeMs: this.appTimeMs(), name });
    // Every attempt is a transaction of its own: its id tells a retry's lines from the first's.
    tx.context = new TransactionContext(tx, services, this.options.logger, ++this.lastTransactionId, type, logFields);
    return tx;
  }

  /** Runs `body` with `tx` active, as a handler call (synchronous only). */
  execute<T>(tx: Transaction, name: string, body: (ctx: TaskContext, tx: Transaction) => T): T {
    return withActiveTransaction(tx, () => callSync(name, () => body(tx.context, tx)));
  }

  /** Resolves when no task is queued, running or waiting to retry and every commit is durable. */
  async whenIdle(): Promise<void> {
    for (;;) {
      if (this.inFlightJobs === 0 && this.committer.idle) return;
      await this.committer.whenIdle();
      await new Promise<void>((resolve) => this.scheduler.immediate(resolve));
    }
  }

  /** Stops accepting tasks and waits for those accepted to finish. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.checkpointTimer !== undefined) this.options.clock.clearTimer(this.checkpointTimer);
    await this.whenIdle();
    this.committer.checkpoint(); // save application time as of shutdown
    await this.committer.whenIdle();
  }

  /** Tasks submitted and not yet settled: queued, waiting to retry, or waiting for durability. */
  get tasksInFlight(): number {
    return this.inFlightJobs;
  }

  private hooks(): TaskServiceHooks {
    if (this.taskService === undefined) throw new Error("task service not installed");
    return this.taskService;
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    this.scheduler.immediate(() => this.pump());
  }

  private pump(): void {
    this.pumpScheduled = false;
    const turnStart = this.scheduler.now();
    while (this.queue.length > 0 && this.scheduler.now() - turnStart < TURN_BUDGET_MS) {
      this.attempt(this.queue.shift()!);
    }
    if (this.queue.length > 0) this.schedulePump();
  }

  private attempt(job: Job): void {
    job.attempts++;
    this.observer.attemptStarted(job.type);
    const tx = this.openTransaction(job.name, job.timeoutMs, job.type, job.logFields);
    let result: unknown;
    let durable: Promise<void>;
    try {
      result = this.execute(tx, job.name, job.body);
      durable = tx.commit();
    } catch (error) {
      tx.abort();
      this.attemptFailed(job, error);
      return;
    }
    job.onOrdered?.();
    durable.then(
      () => {
        this.counters.committed++;
        this.observer.taskCommitted(job.type, performance.now() - job.submittedAt, job.attempts);
        this.settle(job, () => job.resolve(result));
      },
      (error: unknown) => this.settle(job, () => job.reject(new TaskFailedError(`task ${job.name} could not be made durable`, { cause: error }))),
    );
  }

  private attemptFailed(job: Job, error: unknown): void {
    if (error instanceof TransactionConflictError) this.counters.conflicts++;
    else if (error instanceof TransactionTimeoutError) this.counters.timeouts++;
    const retried = isRetryable(error) && job.attempts < job.maxAttempts;
    this.observer.attemptAborted(job.type, abortReason(error), retried, error instanceof TransactionConflictError ? error.on : undefined);
    if (retried) {
      const ceiling = Math.min(this.options.retryBackoffMaxMs, RETRY_BACKOFF_BASE_MS * 2 ** (job.attempts - 1));
      const delay = this.options.random.next() * ceiling;
      if (delay < 1) {
        // Node's timers have millisecond resolution: a shorter backoff is just "after the others".
        this.queue.push(job);
        this.schedulePump();
        return;
      }
      this.options.clock.setTimer(delay, () => {
        this.queue.push(job);
        this.schedulePump();
      });
      return;
    }
    const failure = new TaskFailedError(`task ${job.name} failed after ${job.attempts} attempt(s): ${describe(error)}`, { cause: error });
    this.counters.failed++;
    this.observer.taskFailed(job.type);
    this.options.logger.warn("task failed", { task: job.name, type: job.type, ...job.logFields, attempts: job.attempts, error });
    job.onOrdered?.();
    this.settle(job, () => job.reject(failure));
  }

  private settle(job: Job, action: () => void): void {
    this.inFlightJobs--;
    action();
  }

  private armCheckpoint(): void {
    this.checkpointTimer = this.options.clock.setTimer(this.options.appTimeCheckpointMs, () => {
      this.committer.checkpoint();
      if (!this.closed) this.armCheckpoint();
    });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * The TaskContext of one transaction. Its parts are made on first use: most tasks touch only
 * `data`, and every object made here is made once per task.
 */
class TransactionContext implements TaskContext {
  private dataManager: DataManager | undefined;
  private taskManager: TaskManager | undefined;
  private channelManager: ChannelManager | undefined;
  private taskLog: TaskLog | undefined;

  constructor(
    private readonly tx: Transaction,
    private readonly services: TaskServiceHooks,
    private readonly logger: Logger,
    /** What every line the task logs carries, besides its name: transaction id, type, session. */
    private readonly transactionId: number,
    private readonly type: string,
    private readonly logFields: Readonly<Record<string, unknown>> | undefined,
  ) {}

  get data(): DataManager {
    return (this.dataManager ??= new TransactionDataManager(this.tx));
  }

  get tasks(): TaskManager {
    return (this.taskManager ??= this.services.taskManagerFor(this.tx));
  }

  get channels(): ChannelManager {
    return (this.channelManager ??= this.services.channelManagerFor(this.tx));
  }

  get log(): TaskLog {
    // Built on first use: most tasks never log, and this is the task path.
    this.taskLog ??= new BufferedTaskLog(this.tx, this.logger, { task: this.tx.name, type: this.type, txn: this.transactionId, ...this.logFields });
    return this.taskLog;
  }

  now(): number {
    return this.tx.appTimeMs;
  }
}

/** Log lines held in the transaction's effects: written once, if it commits. */
class BufferedTaskLog implements TaskLog {
  constructor(
    private readonly tx: Transaction,
    private readonly logger: Logger,
    private readonly context: Readonly<Record<string, unknown>>,
  ) {}

  debug(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.write("debug", message, fields);
  }

  info(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.write("info", message, fields);
  }

  warn(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.write("warn", message, fields);
  }

  error(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.write("error", message, fields);
  }

  private write(level: keyof TaskLog, message: string, fields: Readonly<Record<string, unknown>> | undefined): void {
    this.tx.addEffect(() => this.logger[level](message, { ...this.context, ...fields }));
  }
}

function abortReason(error: unknown): AbortReason {
  if (error instanceof TransactionConflictError) return "conflict";
  return error instanceof TransactionTimeoutError ? "timeout" : "error";
}
