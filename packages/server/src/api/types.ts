import type { ChannelManager } from "./channel.js";
import type { PeriodicTaskHandle, Ref } from "./ref.js";
import type { ClientSession, ClientSessionListener } from "./session.js";

/**
 * Everything a handler can reach while its task runs. Valid only during that task: keeping it and
 * using it later throws `TransactionNotActiveError`.
 */
export interface TaskContext {
  /** Persistent objects and name bindings. */
  readonly data: DataManager;
  /** Durable one-shot and periodic tasks. */
  readonly tasks: TaskManager;
  /** Channels: named groups of sessions. */
  readonly channels: ChannelManager;
  /** Log lines written only if the task commits, so a retried task never logs twice. */
  readonly log: TaskLog;
  /**
   * The task's logical time in milliseconds: application time, which advances while the server
   * runs and stands still while it is down. Constant for the whole task.
   */
  now(): number;
}

/** Logging from inside a task: buffered, written once when the task commits, dropped if it aborts. */
export interface TaskLog {
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void;
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

/**
 * Managed objects and the names bound to them. Names are any strings; they are ordered by the bytes
 * of their UTF-8 encoding. Every method may throw the retryable `TransactionConflictError` or
 * `TransactionTimeoutError`; let them propagate and the task runs again.
 */
export interface DataManager {
  /**
   * The object bound to `name`.
   * @throws {NameNotBoundError} if nothing is bound to `name`.
   * @throws {ObjectNotFoundError} if the bound object has been removed.
   */
  getBinding<T extends object = object>(name: string): T;
  /** As {@link getBinding}, and marks the object for update. */
  getBindingForUpdate<T extends object = object>(name: string): T;
  /**
   * Binds `name` to the managed object `obj`, replacing any previous binding (the previously bound
   * object is not removed). A new object is stored by this call.
   * @throws {ManagedObjectError} if `obj` is not a managed object.
   */
  setBinding(name: string, obj: object): void;
  /**
   * Removes the binding `name` (the object stays).
   * @throws {NameNotBoundError} if nothing is bound to `name`.
   */
  removeBinding(name: string): void;
  /**
   * The first bound name after `name` in UTF-8 byte order, or the first name of all when `name` is
   * omitted; undefined past the last. `name` need not be bound.
   */
  nextBoundName(name?: string): string | undefined;
  /**
   * Removes `obj` from the store at commit, calling its `removingObject(ctx)` first if it has one.
   * Bindings and Refs to it dangle afterwards (reading them throws `ObjectNotFoundError`).
   * Removing an object twice in one task does nothing the second time; removing one that was never
   * stored only drops it. If another task removes it concurrently, this task conflicts and retries.
   */
  removeObject(obj: object): void;
  /** Declares that `obj` will be modified: it is written at commit even if its encoding is unchanged. */
  markForUpdate(obj: object): void;
  /**
   * A Ref to the managed object `obj`, storing `obj` if it is new.
   * @throws {ManagedObjectError} if `obj` is not a managed object.
   */
  createReference<T extends object>(obj: T): Ref<T>;
  /** The id of `obj` (storing it if new): the same id its Refs carry. */
  getObjectId(obj: object): bigint;
}

/** A unit of work run later as its own transaction. Tasks must be managed objects. */
export interface Task {
  run(ctx: TaskContext): void;
}

/**
 * Durable tasks. Scheduled tasks are stored with the data: they survive crashes and restarts, and
 * they are scheduled only if the scheduling task commits. Delays count application time.
 */
export interface TaskManager {
  /**
   * Runs `task` (a managed object) after `delayMs` (≥ 0) as a separate transaction. A task object
   * that was not yet stored is stored now and removed after its run.
   */
  scheduleTask(task: Task, delayMs?: number): void;
  /**
   * Runs `task` first after `delayMs`, then every `periodMs` (> 0) on the grid
   * `start + k·periodMs`. Runs never overlap; periods missed while the server was busy are skipped.
   */
  schedulePeriodicTask(task: Task, delayMs: number, periodMs: number): PeriodicTaskHandle;
  /** False when the task should end soon because its time budget is mostly spent. */
  shouldContinue(): boolean;
}

/** Optional hook of a managed object, called by `removeObject` before the object is removed. */
export interface RemovalListener {
  removingObject(ctx: TaskContext): void;
}

/**
 * The application: a managed class, one instance per data store, created and stored when the data
 * store is first used. Its default-exported class is what `shardless start` loads.
 */
export interface AppListener {
  /**
   * Runs once in the life of a data store, in the first transaction, with no time limit.
   * `props` are the application properties from configuration.
   */
  initialize(ctx: TaskContext, props: Readonly<Record<string, string>>): void;
  /**
   * A client has logged in (after authentication). Return the managed object that will handle its
   * messages, or null to refuse the login. Without this method, every login is refused.
   */
  loggedIn?(ctx: TaskContext, session: ClientSession): ClientSessionListener | null;
}
