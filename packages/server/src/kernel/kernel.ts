import { isRetryable, TaskFailedError, TransactionConflictError, TransactionTimeoutError, WorkerLostError } from "../api/errors.js";
import type { TaskContext } from "../api/types.js";
import type { Clock, TimerHandle } from "./clock.js";
import { Committer, NODE_SCHEDULER, type ChainVersions, type CommitRequest, type Scheduler } from "./committer.js";
import type { DataStore } from "./data-store.js";
import type { EffectData, EffectHandler, LogEffect } from "./effects.js";
import type { Logger } from "./logger.js";
import { DEFAULT_OBJECT_CACHE_ENTRIES, ObjectCache } from "./object-cache.js";
import { IGNORING_OBSERVER, type AbortReason, type KernelObserver } from "./observer.js";
import type { Random } from "./random.js";
import { TaskRuntime, type TaskBody, type TaskServiceHooks } from "./task-runtime.js";
import { nameConflict, type Transaction } from "./transaction.js";

export type { TaskServiceHooks } from "./task-runtime.js";

/** One attempt of a task of a defined kind, as handed to a {@link TaskExecutor}: plain data. */
export interface RemoteAttempt {
  readonly kind: string;
  readonly args: unknown;
  readonly name: string;
  readonly type: string;
  readonly logFields: Readonly<Record<string, unknown>> | undefined;
  readonly timeoutMs: number;
  /** The task's logical time. */
  readonly appTimeMs: number;
  /** Tasks with the same affinity prefer the same thread (a session's id, for its tasks). */
  readonly affinity: string | undefined;
  /**
   * The number of an attempt this executor is running (as {@link TaskExecutor.run} returned it)
   * whose writes this attempt is to read as if committed: it runs after that one, on the same
   * thread. Its outcome counts only if that attempt commits (the kernel checks).
   */
  readonly after?: number;
  /**
   * True for a task whose attempt was running on a thread that died: this attempt runs with no
   * other beside it, so that if it ends its thread too, it alone is to blame. Never with `after`.
   */
  readonly alone?: boolean;
}

/** What became of an attempt run elsewhere: a commit request to validate here, or an error. */
export type RemoteOutcome =
  | { readonly ok: true; readonly request: CommitRequest; readonly result: unknown }
  | { readonly ok: false; readonly error: unknown };

/**
 * Runs attempts of defined kinds of task somewhere other than the kernel's thread (worker
 * threads). It must call `done` exactly once per attempt, on the kernel's thread; the kernel then
 * validates and orders the commit request, or handles the error, as for an attempt run here.
 */
export interface TaskExecutor {
  /** Runs `attempt`; returns its number (above 0), which a later attempt may name as its `after`. */
  run(attempt: RemoteAttempt, done: (outcome: RemoteOutcome) => void): number;
}

/**
 * Tasks submitted with the same chain (see {@link RunOptions.chain}) take their places in commit
 * order one after another, in the order they were submitted: a session's messages.
 */
export class TaskChain {
  // A marker: the kernel keeps each chain's last task.
  private readonly chain = true;
}
/** Hears of every validated commit and of durability (the worker pool, keeping its copies current). */
export interface CommitWatcher {
  onValidated(seq: number, request: CommitRequest): void;
  onDurable(seq: number): void;
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
  /** Decoded objects kept between tasks on this thread (see {@link ObjectCache}); 0 keeps none. */
  readonly objectCacheEntries?: number;
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
  /** Tasks with the same affinity prefer the same worker (its cache has their objects). */
  readonly affinity?: string;
  /**
   * Orders this task after the task last submitted with the same chain: it commits only after that
   * one is ordered. On worker threads it may run before then, on that task's writes, on the same
   * worker; it is validated as a link of the chain and runs again if that task does not commit.
   */
  readonly chain?: TaskChain;
}

/** An attempt run elsewhere that committed, as the tasks chained on it see it. */
interface CommittedAttempt {
  /** Its number on the executor. */
  readonly attempt: number;
  readonly seq: number;
  readonly request: CommitRequest;
  /** What it was itself chained on, while that is later than its start (older links matter to no one). */
  readonly previous: CommittedAttempt | undefined;
  objectIds?: Set<bigint>;
  bindingNames?: Set<string>;
}

interface Job {
  readonly name: string;
  readonly type: string;
  readonly logFields: Readonly<Record<string, unknown>> | undefined;
  /** When the task was submitted (performance.now()), for its latency. */
  readonly submittedAt: number;
  readonly body: (ctx: TaskContext, tx: Transaction) => unknown;
  /** For a task of a defined kind: what a worker needs to run it. */
  readonly kind: string | undefined;
  readonly args: unknown;
  readonly affinity: string | undefined;
  /** True once the task must run on the kernel's thread, where it cannot conflict. */
  runHere: boolean;
  /** True once an attempt of it was lost with its thread: it runs alone there (see {@link RemoteAttempt.alone}). */
  alone: boolean;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly onOrdered: (() => void) | undefined;
  attempts: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly chain: TaskChain | undefined;
  /** The task before it in its chain, until this one is ordered. */
  after: Job | undefined;
  /** True once its place in commit order is fixed (committed, or failed for good). */
  ordered: boolean;
  /** Tasks of its chain waiting for it to be ordered before they run. */
  waiting: Job[] | undefined;
  /** The number of its attempt now on the executor; 0 when none is. */
  remoteAttempt: number;
  /** Its attempt on the executor that committed, for the tasks chained on it. */
  committed: CommittedAttempt | undefined;
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
  /**
   * Attempts run on another thread right after the task before them in their chain, on its writes,
   * before it was validated (see {@link RunOptions.chain}).
   */
  chained: number;
}

/**
 * The contention manager's measure: the share of recent attempts on other threads that conflicted,
 * as an exponentially weighted average over about the last {@link CONFLICT_WINDOW} of them.
 */
const CONFLICT_WINDOW = 64;
/** Above this share of conflicts, tasks run on the kernel's thread (serialised) instead. */
const CONFLICT_LIMIT = 0.25;
/**
 * Below this share, tasks go out to the other threads again. Lower than {@link CONFLICT_LIMIT}: a
 * probe that happens to touch no hot object commits, and a few of those in a row, while most
 * probes still conflict, turned the switch back under lasting contention, sent a turn's tasks
 * out to conflict, and turned it again.
 */
const CALM_LIMIT = 0.1;
/**
 * While tasks run here because of contention, one in this many still goes out, to see if it passed
 * (at first: see {@link MAX_PROBE_EVERY}).
 */
const PROBE_EVERY = 16;
/**
 * The longest interval between probes. Each probe that conflicts doubles the interval up to this,
 * and one that does not halves it, down to {@link PROBE_EVERY}: under lasting contention nearly
 * every probe conflicts (measured: 88-96% of them, Zipf 1.5 transfers with workers), and each costs
 * a run elsewhere, its messages, and a second run here.
 */
const MAX_PROBE_EVERY = 512;
/**
 * While tasks run here, a probe's outcome counts as this many outcomes in the contention measure:
 * about 30 probes in a row that commit turn the switch back. Probes that commit come in runs (a
 * probe that touched no hot object, or crossed no commit of one): at 16, runs of 8 while most
 * probes conflicted turned the switch back 4-9 times in 6 s of Zipf 1.5 transfers, and each time
 * a turn's tasks went out to conflict.
 */
const PROBE_WEIGHT = 4;

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
  readonly counters: KernelCounters = { committed: 0, conflicts: 0, timeouts: 0, failed: 0, chained: 0 };
  /** Where transactions of this thread are opened. */
  readonly runtime: TaskRuntime;
  private readonly queue: Job[] = [];
  private pumpScheduled = false;
  private inFlightJobs = 0;
  private readonly appTimeBase: number;
  private readonly clockAtBoot: number;
  private checkpointTimer: TimerHandle | undefined;
  private readonly effectHandlers = new Map<string, EffectHandler>();
  private executor: TaskExecutor | undefined;
  /** Who hears of validated and durable commits besides the committer (the worker pool). */
  private committerHooks: CommitWatcher | undefined;
  /** Share of recent attempts on other threads that conflicted (see {@link CONFLICT_WINDOW}). */
  private remoteConflictRate = 0;
  /** True while tasks run here because of contention (see {@link contended}). */
  private contending = false;
  private sinceProbe = 0;
  /** Tasks run here per probe now (see {@link MAX_PROBE_EVERY}). */
  private probeEvery = PROBE_EVERY;
  private closed = false;
  private readonly observer: KernelObserver;
  private readonly scheduler: Scheduler;
  /** Each chain's last task, while it is not yet ordered. */
  private readonly chainEnds = new WeakMap<TaskChain, Job>();

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
      applyEffect: (effect) => this.applyEffect(effect),
      onValidated: (seq, request) => this.committerHooks?.onValidated(seq, request),
      onDurable: (seq) => this.committerHooks?.onDurable(seq),
    });
    this.runtime = new TaskRuntime(this.committer, options.clock, 0, new ObjectCache(options.objectCacheEntries ?? DEFAULT_OBJECT_CACHE_ENTRIES));
    this.installEffectHandler("log", (effect) => {
      const line = effect as LogEffect;
      options.logger[line.level](line.message, line.fields);
    });
    this.appTimeBase = options.store.readMeta()?.appTimeMs ?? 0;
    this.clockAtBoot = options.clock.now();
    this.armCheckpoint();
  }

  /** Installs the task service; must happen before the first task runs. */
  installTaskService(service: TaskServiceHooks): void {
    this.runtime.installTaskService(service);
  }

  /** Makes `service` reachable from transactions as `tx.service(name)`. */
  installService(name: string, service: unknown): void {
    this.runtime.installService(name, service);
  }

  /** Makes `handler` release every effect addressed `to`. */
  installEffectHandler(to: string, handler: EffectHandler): void {
    if (this.effectHandlers.has(to)) throw new Error(`effect handler ${to} installed twice`);
    this.effectHandlers.set(to, handler);
  }

  /** Defines a kind of task that {@link submit} can run on any thread. */
  defineTask(kind: string, body: TaskBody): void {
    this.runtime.defineTask(kind, body);
  }

  /**
   * Makes `hooks` hear of every validated commit and of durability (so that copies of the state
   * on other threads stay current).
   */
  watchCommits(hooks: CommitWatcher): void {
    this.committerHooks = hooks;
  }

  /** Lets `executor` run tasks of defined kinds from now on (worker threads). */
  installExecutor(executor: TaskExecutor): void {
    this.executor = executor;
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
   * Queues `body` to run as a task on this thread, retrying it on retryable failures.
   * @returns the value `body` returned on the attempt that committed, once that commit is durable.
   * @throws {TaskFailedError} (rejects) when it fails for good; `cause` is the last error.
   */
  run<T>(name: string, body: (ctx: TaskContext, tx: Transaction) => T, options: RunOptions = {}): Promise<T> {
    return this.enqueue(name, body, undefined, undefined, options) as Promise<T>;
  }

  /**
   * Queues a task of the defined kind `kind` (see {@link defineTask}) with `args`, retrying it on
   * retryable failures. It may run on a worker thread; `args` and the result are copied as data.
   * @returns what the task returned on the attempt that committed, once that commit is durable.
   * @throws {TaskFailedError} (rejects) when it fails for good; `cause` is the last error.
   */
  submit(name: string, kind: string, args: unknown, options: RunOptions = {}): Promise<unknown> {
    const body = this.runtime.body(kind);
    return this.enqueue(name, (ctx, tx) => body(ctx, tx, args), kind, args, options);
  }

  private enqueue(name: string, body: (ctx: TaskContext, tx: Transaction) => unknown, kind: string | undefined, args: unknown, options: RunOptions): Promise<unknown> {
    if (this.closed) return Promise.reject(new TaskFailedError(`task ${name} submitted after shutdown`));
    return new Promise<unknown>((resolve, reject) => {
      const job: Job = {
        name,
        body,
        kind,
        args,
        affinity: options.affinity,
        runHere: kind === undefined,
        alone: false,
        timeoutMs: options.timeoutMs ?? this.options.txnTimeoutMs,
        maxAttempts: options.maxAttempts ?? this.options.maxTaskAttempts,
        onOrdered: options.onOrdered,
        type: options.type ?? "run",
        logFields: options.logFields,
        submittedAt: performance.now(),
        attempts: 0,
        resolve,
        reject,
        chain: options.chain,
        after: undefined,
        ordered: false,
        waiting: undefined,
        remoteAttempt: 0,
        committed: undefined,
      };
      this.inFlightJobs++;
      if (options.chain !== undefined) {
        job.after = this.chainEnds.get(options.chain);
        this.chainEnds.set(options.chain, job);
      }
      this.dispatch(job);
    });
  }

  /** Hands `job` to another thread at once, or queues it to run here. */
  private dispatch(job: Job): void {
    if (this.executor !== undefined && !job.runHere) {
      if (this.contended()) {
        job.runHere = true;
      } else {
        // Another thread runs it: handing it over costs this thread next to nothing, so it
        // need not wait for the next turn's pump.
        this.attempt(job);
        return;
      }
    }
    this.queue.push(job);
    this.schedulePump();
  }

  /**
   * Opens a transaction directly, outside the task queue, for embedding code and tests that need
   * to interleave transactions. The caller must `commit()` or `abort()` it.
   */
  openTransaction(name: string, timeoutMs: number = this.options.txnTimeoutMs, type = "run", logFields?: Readonly<Record<string, unknown>>): Transaction {
    return this.runtime.open({ name, timeoutMs, appTimeMs: this.appTimeMs(), type, logFields });
  }

  /** Runs `body` with `tx` active, as a handler call (synchronous only). */
  execute<T>(tx: Transaction, name: string, body: (ctx: TaskContext, tx: Transaction) => T): T {
    return this.runtime.execute(tx, name, body);
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

  private applyEffect(effect: EffectData): void {
    const handler = this.effectHandlers.get(effect.to);
    if (handler === undefined) throw new Error(`no handler for effects to ${effect.to}`);
    handler(effect);
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
    const before = job.after;
    const executor = this.executor;
    // A task whose predecessor in its chain is not yet ordered runs only on the executor, right
    // after its predecessor's attempt there; otherwise it waits for its predecessor.
    const chainedOn = before !== undefined && !before.ordered && executor !== undefined && !job.runHere && !job.alone && before.remoteAttempt > 0 ? before : undefined;
    if (before !== undefined && !before.ordered && chainedOn === undefined) {
      (before.waiting ??= []).push(job);
      return;
    }
    job.attempts++;
    this.observer.attemptStarted(job.type);
    if (executor !== undefined && !job.runHere) {
      if (chainedOn !== undefined) this.counters.chained++;
      this.attemptElsewhere(executor, job, chainedOn);
      return;
    }
    const tx = this.openTransaction(job.name, job.timeoutMs, job.type, job.logFields);
    let result: unknown;
    let request: CommitRequest;
    try {
      result = this.execute(tx, job.name, job.body);
      request = tx.prepareCommit();
    } catch (error) {
      tx.abort();
      this.attemptFailed(job, error);
      return;
    }
    this.commitAttempt(job, request, result, tx);
  }

  /**
   * Hands an attempt of `job` to the executor; `chainedOn` is the task before it in its chain, whose
   * attempt there it runs after, on its writes.
   */
  private attemptElsewhere(executor: TaskExecutor, job: Job, chainedOn: Job | undefined): void {
    const after = chainedOn?.remoteAttempt;
    const attempt: RemoteAttempt = { kind: job.kind!, args: job.args, name: job.name, type: job.type, logFields: job.logFields, timeoutMs: job.timeoutMs, appTimeMs: this.appTimeMs(), affinity: job.affinity, after, alone: job.alone };
    let answered = false;
    const number = executor.run(attempt, (outcome) => {
      answered = true;
      job.remoteAttempt = 0;
      if (!outcome.ok && outcome.error instanceof WorkerLostError && outcome.error.retryable) job.alone = true;
      let chain: ChainVersions | undefined;
      if (chainedOn !== undefined) {
        const committed = chainedOn.committed;
        if (committed === undefined || committed.attempt !== after) {
          // It ran on writes that were never committed: whatever it did is void.
          this.chainBroken(job);
          return;
        }
        if (outcome.ok) chain = chainVersions(committed, outcome.request.startSeq);
      }
      if (outcome.ok) {
        this.commitAttempt(job, outcome.request, outcome.result, undefined, { attempt: number, chain, chainedOn: chainedOn?.committed });
        return;
      }
      this.noteRemoteOutcome(outcome.error);
      this.attemptFailed(job, outcome.error);
    });
    if (answered) return;
    job.remoteAttempt = number;
    // Tasks of its chain that waited for it may now run right after it, on its writes.
    const waiting = job.waiting;
    job.waiting = undefined;
    if (waiting !== undefined) for (const next of waiting) this.attempt(next);
  }

  /**
   * An attempt ran on the writes of its predecessor's attempt, which did not commit. It does not
   * count as an attempt, nor as contention: it runs again once its predecessor is ordered.
   */
  private chainBroken(job: Job): void {
    job.attempts--;
    this.counters.conflicts++;
    this.observer.attemptAborted(job.type, "chain", true, undefined);
    this.attempt(job);
  }

  /**
   * Validates and orders an attempt's commit request, made here (`tx`) or on another thread
   * (`remote`: its number there, and its chain); on success the task's place in commit order is
   * fixed, and it settles when the commit is durable.
   */
  private commitAttempt(
    job: Job,
    request: CommitRequest,
    result: unknown,
    tx: Transaction | undefined,
    remote?: { readonly attempt: number; readonly chain: ChainVersions | undefined; readonly chainedOn: CommittedAttempt | undefined },
  ): void {
    let durable: Promise<void>;
    try {
      durable = this.committer.commit(request, remote?.chain);
    } catch (error) {
      tx?.abort();
      if (tx === undefined) this.noteRemoteOutcome(error);
      this.attemptFailed(job, this.namedConflict(error, request));
      return;
    }
    if (tx === undefined) this.noteRemoteOutcome(undefined);
    tx?.markCommitted(this.committer.lastCommitSeq);
    // Only a task on a chain can have tasks run on its writes.
    if (remote !== undefined && job.chain !== undefined) {
      const seq = this.committer.lastCommitSeq;
      const previous = remote.chainedOn !== undefined && remote.chainedOn.seq > request.startSeq ? remote.chainedOn : undefined;
      job.committed = { attempt: remote.attempt, seq, request, previous };
    }
    this.markOrdered(job);
    durable.then(
      () => {
        this.counters.committed++;
        this.observer.taskCommitted(job.type, performance.now() - job.submittedAt, job.attempts);
        this.settle(job, () => job.resolve(result));
      },
      (error: unknown) => this.settle(job, () => job.reject(new TaskFailedError(`task ${job.name} could not be made durable`, { cause: error }))),
    );
  }

  /**
   * The contention manager's switch. When many recent attempts on other threads conflicted (hot
   * objects), tasks run here, one at a time against the latest commits, where they cannot
   * conflict: contention then costs what it costs with no workers, instead of each task running
   * twice. One task in {@link probeEvery} still goes out, so that the switch turns back once the
   * contention passes.
   */
  private contended(): boolean {
    if (!this.contending) return false;
    if (++this.sinceProbe < this.probeEvery) return true;
    this.sinceProbe = 0;
    return false;
  }

  /**
   * Counts an outcome of an attempt run on another thread in the contention measure. While tasks
   * run here, an outcome from elsewhere is a probe, which weighs {@link PROBE_WEIGHT} outcomes:
   * the switch turns back within about 30 probes once contention has passed.
   */
  private noteRemoteOutcome(error: unknown): void {
    const conflicted = error instanceof TransactionConflictError ? 1 : 0;
    const weight = this.contending ? PROBE_WEIGHT : 1;
    this.remoteConflictRate += ((conflicted - this.remoteConflictRate) * weight) / CONFLICT_WINDOW;
    if (conflicted === 0) this.probeEvery = Math.max(PROBE_EVERY, this.probeEvery / 2);
    else if (this.contending) this.probeEvery = Math.min(MAX_PROBE_EVERY, 2 * this.probeEvery);
    if (this.remoteConflictRate > CONFLICT_LIMIT) this.contending = true;
    else if (this.remoteConflictRate < CALM_LIMIT) this.contending = false;
  }

  /** A conflict found at validation, with the binding the task reached the object by, when known. */
  private namedConflict(error: unknown, request: CommitRequest): unknown {
    if (!(error instanceof TransactionConflictError) || error.on?.kind !== "object") return error;
    const written = new Map(request.bindingWrites.map((write) => [write.name, write.id]));
    return new TransactionConflictError(error.message, { on: nameConflict(error.on, request.bindingReads, (key) => (written.has(key) ? written.get(key) : this.committer.readBinding(key)?.id)) });
  }

  private attemptFailed(job: Job, error: unknown): void {
    if (error instanceof TransactionConflictError) this.counters.conflicts++;
    else if (error instanceof TransactionTimeoutError) this.counters.timeouts++;
    const retried = isRetryable(error) && job.attempts < job.maxAttempts;
    this.observer.attemptAborted(job.type, abortReason(error), retried, error instanceof TransactionConflictError ? error.on : undefined);
    if (retried) {
      // The contention manager: a task that conflicted on another thread runs its next attempt
      // here, where tasks run one at a time against the latest commits and cannot conflict. It
      // neither aborts the others again nor starves.
      if (error instanceof TransactionConflictError && !job.runHere) {
        job.runHere = true;
        this.queue.push(job);
        this.schedulePump();
        return;
      }
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
    this.markOrdered(job);
    this.settle(job, () => job.reject(failure));
  }

  /** `job`'s place in commit order is fixed: the tasks of its chain waiting for it go on. */
  private markOrdered(job: Job): void {
    job.ordered = true;
    job.after = undefined;
    if (job.chain !== undefined && this.chainEnds.get(job.chain) === job) this.chainEnds.delete(job.chain);
    job.onOrdered?.();
    const waiting = job.waiting;
    job.waiting = undefined;
    if (waiting !== undefined) for (const next of waiting) this.dispatch(next);
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

/**
 * The versions a task chained on `committed` may have read beyond its start `startSeq`: for each
 * key, the sequence of the latest link of the chain that wrote it.
 */
function chainVersions(committed: CommittedAttempt, startSeq: number): ChainVersions {
  const find = <K>(key: K, written: (link: CommittedAttempt) => Set<K>): number | undefined => {
    for (let link: CommittedAttempt | undefined = committed; link !== undefined && link.seq > startSeq; link = link.previous) {
      if (written(link).has(key)) return link.seq;
    }
    return undefined;
  };
  return {
    objectSeq: (id) => find(id, (link) => (link.objectIds ??= new Set(link.request.objectWrites.map((write) => write.id)))),
    bindingSeq: (name) => find(name, (link) => (link.bindingNames ??= new Set(link.request.bindingWrites.map((write) => write.name)))),
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function abortReason(error: unknown): AbortReason {
  if (error instanceof TransactionConflictError) return "conflict";
  return error instanceof TransactionTimeoutError ? "timeout" : "error";
}
