import { withActiveTransaction } from "../api/active-transaction.js";
import type { ChannelManager } from "../api/channel.js";
import type { DataManager, TaskContext, TaskLog, TaskManager } from "../api/types.js";
import type { Clock } from "./clock.js";
import type { TransactionSource } from "./committer.js";
import { TransactionDataManager } from "./data-manager.js";
import type { LogEffect } from "./effects.js";
import type { ObjectCache } from "./object-cache.js";
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

/**
 * The body of a kind of task that any thread can run: given its arguments (plain data, copied
 * between threads), it does the task's work in `tx`. Its return value must be plain data too.
 */
export type TaskBody = (ctx: TaskContext, tx: Transaction, args: unknown) => unknown;

/** How one transaction is opened. */
export interface OpenOptions {
  readonly name: string;
  readonly timeoutMs: number;
  /** The task's logical time. */
  readonly appTimeMs: number;
  readonly type: string;
  readonly logFields: Readonly<Record<string, unknown>> | undefined;
}

/**
 * Where transactions are opened and game code is run, on one thread: the services installed there,
 * the kinds of task it knows, and the source its transactions read from (the committer on the main
 * thread, a copy of its state on a worker).
 */
export class TaskRuntime {
  private taskService: TaskServiceHooks | undefined;
  private readonly services = new Map<string, unknown>();
  private readonly kinds = new Map<string, TaskBody>();
  private lastTransactionId: number;
  /** What every transaction asks of the runtime; one object, not one per transaction. */
  private readonly transactionHooks: TransactionHooks;

  constructor(
    private readonly source: TransactionSource,
    private readonly clock: Clock,
    /** Transaction ids of this thread start after this (threads number theirs apart). */
    firstTransactionId = 0,
    /** Decoded objects kept between this thread's tasks; none if undefined. */
    readonly objects?: ObjectCache,
  ) {
    this.lastTransactionId = firstTransactionId;
    this.transactionHooks = {
      cancelPeriodicTask: (tx, id) => this.hooks().cancelPeriodicTask(tx, id),
      service: <T>(name: string): T => {
        if (!this.services.has(name)) throw new Error(`no service named ${name} on this server`);
        return this.services.get(name) as T;
      },
      objects,
    };
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

  /** Defines a kind of task that can run on any thread (see {@link TaskBody}). */
  defineTask(kind: string, body: TaskBody): void {
    if (this.kinds.has(kind)) throw new Error(`task kind ${kind} defined twice`);
    this.kinds.set(kind, body);
  }

  /** The body of task kind `kind`. */
  body(kind: string): TaskBody {
    const body = this.kinds.get(kind);
    if (body === undefined) throw new Error(`no task kind ${kind} on this thread`);
    return body;
  }

  /** Opens a transaction; the caller must commit or abort it. */
  open(options: OpenOptions): Transaction {
    const services = this.hooks(); // before begin(): a transaction that never ends would stop pruning
    const tx = new Transaction(this.source, this.clock, this.transactionHooks, options);
    // Every attempt is a transaction of its own: its id tells a retry's lines from the first's.
    tx.context = new TransactionContext(tx, services, ++this.lastTransactionId, options.type, options.logFields);
    return tx;
  }

  /** Runs `body` with `tx` active, as a handler call (synchronous only). */
  execute<T>(tx: Transaction, name: string, body: (ctx: TaskContext, tx: Transaction) => T): T {
    return withActiveTransaction(tx, () => callSync(name, () => body(tx.context, tx)));
  }

  private hooks(): TaskServiceHooks {
    if (this.taskService === undefined) throw new Error("task service not installed");
    return this.taskService;
  }
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
    this.taskLog ??= new BufferedTaskLog(this.tx, { task: this.tx.name, type: this.type, txn: this.transactionId, ...this.logFields });
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

  private write(level: LogEffect["level"], message: string, fields: Readonly<Record<string, unknown>> | undefined): void {
    const effect: LogEffect = { to: "log", level, message, fields: { ...this.context, ...fields } };
    this.tx.addEffect(effect);
  }
}
