/**
 * The error catalogue. Every error Shardless throws at game code or at an embedding program is a
 * {@link ShardlessError} with a stable `code` (`ERR_<AREA>_<WHAT>`) and a `retryable` flag.
 *
 * Retryable errors abort the current task; the kernel runs the task again from the start with a fresh
 * view of the data. Game code should let them propagate. Non-retryable errors end the task for good.
 */

/** Every code Shardless can put on an error. `docs/errors.md` lists exactly these (a test checks). */
export const ERROR_CODES = [
  "ERR_TXN_CONFLICT",
  "ERR_TXN_TIMEOUT",
  "ERR_TXN_NOT_ACTIVE",
  "ERR_RESOURCE_UNAVAILABLE",
  "ERR_SESSION_MESSAGE_REJECTED",
  "ERR_DATA_NAME_NOT_BOUND",
  "ERR_DATA_NAME_EXISTS",
  "ERR_DATA_OBJECT_NOT_FOUND",
  "ERR_DATA_NOT_STORABLE",
  "ERR_DATA_FORMAT",
  "ERR_DATA_LOCKED",
  "ERR_TASK_ASYNC_HANDLER",
  "ERR_TASK_FAILED",
  "ERR_WORKER_LOST",
  "ERR_CONFIG_INVALID",
  "ERR_APP_LOAD",
] as const;

/** One of the codes in {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Base class of every error Shardless throws. */
export class ShardlessError extends Error {
  /** Stable machine-readable code; see {@link ERROR_CODES}. */
  readonly code: ErrorCode;
  /** True when running the task again may succeed. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options?: { retryable?: boolean; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}

/**
 * What a conflict was on: an object (with the binding name the task reached it by, when it did),
 * a binding, or a range of bindings scanned from a prefix.
 */
export type ConflictSource =
  | { readonly kind: "object"; readonly id: bigint; readonly binding?: string }
  | { readonly kind: "binding"; readonly name: string }
  | { readonly kind: "range"; readonly prefix: string };

/**
 * Another task committed a change to something this task read. Retryable. It carries no stack
 * trace: a conflict is how optimistic concurrency works, not a bug to locate, and under contention
 * there are thousands a second (capturing a stack cost about 10 µs each here, and formatting one,
 * as sending it between threads does, about 35 µs). `on` says what the conflict was on.
 */
export class TransactionConflictError extends ShardlessError {
  /** What the conflict was on, when known (for conflict profiling). */
  readonly on: ConflictSource | undefined;

  constructor(message: string, options?: { cause?: unknown; on?: ConflictSource }) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super("ERR_TXN_CONFLICT", message, { cause: options?.cause, retryable: true });
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.on = options?.on;
  }
}

/** The task ran past its time budget (`txnTimeoutMs`). Retryable. */
export class TransactionTimeoutError extends ShardlessError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_TXN_TIMEOUT", message, { ...options, retryable: true });
  }
}

/** A resource the task needs is not available right now (for example, a store write failed). Retryable. */
export class ResourceUnavailableError extends ShardlessError {
  constructor(message: string, options?: { cause?: unknown }, code: ErrorCode = "ERR_RESOURCE_UNAVAILABLE") {
    super(code, message, { ...options, retryable: true });
  }
}

/**
 * A message to a session was refused because the session's write buffer is full (the client is not
 * reading fast enough) or the session is not connected. Retryable: a later attempt may find room.
 */
export class MessageRejectedError extends ResourceUnavailableError {
  constructor(message: string) {
    super(message, undefined, "ERR_SESSION_MESSAGE_REJECTED");
  }
}

/** A managed object, Ref or manager was used outside the task that produced it. */
export class TransactionNotActiveError extends ShardlessError {
  constructor(message: string) {
    super("ERR_TXN_NOT_ACTIVE", message);
  }
}

/** `getBinding`/`removeBinding` named a binding that does not exist. */
export class NameNotBoundError extends ShardlessError {
  constructor(name: string) {
    super("ERR_DATA_NAME_NOT_BOUND", `no binding named ${JSON.stringify(name)}`);
  }
}

/** Raised where a name must be new but is already bound. */
export class NameExistsError extends ShardlessError {
  constructor(name: string) {
    super("ERR_DATA_NAME_EXISTS", `a binding named ${JSON.stringify(name)} already exists`);
  }
}

/** The object a Ref or binding points at has been removed. */
export class ObjectNotFoundError extends ShardlessError {
  constructor(message: string) {
    super("ERR_DATA_OBJECT_NOT_FOUND", message);
  }
}

/** A value cannot be stored: the message names the field path and what is wrong there. */
export class ManagedObjectError extends ShardlessError {
  constructor(message: string) {
    super("ERR_DATA_NOT_STORABLE", message);
  }
}

/** The data directory holds a format this version cannot read, or a record is corrupt. */
export class DataFormatError extends ShardlessError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_DATA_FORMAT", message, options);
  }
}

/** Another live process holds the data directory. */
export class DataLockedError extends ShardlessError {
  constructor(message: string) {
    super("ERR_DATA_LOCKED", message);
  }
}

/** A handler returned a Promise: tasks are synchronous by design. */
export class AsyncHandlerError extends ShardlessError {
  constructor(handler: string) {
    super(
      "ERR_TASK_ASYNC_HANDLER",
      `${handler} returned a Promise; handlers must be synchronous (do the work inside the task, or schedule another task)`,
    );
  }
}

/** A task failed for good; `cause` holds what it threw on its last attempt. */
export class TaskFailedError extends ShardlessError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_TASK_FAILED", message, options);
  }
}

/**
 * The worker thread running a task's attempt died (its code called `process.exit`, an exception
 * escaped from a callback it scheduled, it ran out of memory). Retryable: a fresh worker takes its
 * place, and the task's next attempt runs there alone, so that a task which kills every worker it
 * runs on is found. Not retryable when the attempt that ended the thread was running alone.
 */
export class WorkerLostError extends ShardlessError {
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super("ERR_WORKER_LOST", message, { cause: options?.cause, retryable: options?.retryable ?? true });
  }
}

/** A configuration value is missing, of the wrong type or out of range; the message names it. */
export class ConfigError extends ShardlessError {
  constructor(message: string) {
    super("ERR_CONFIG_INVALID", message);
  }
}

/** The application module could not be loaded or has no usable default export. */
export class AppLoadError extends ShardlessError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_APP_LOAD", message, options);
  }
}

/** True when `error` is a Shardless error that allows the task to run again. */
export function isRetryable(error: unknown): boolean {
  return error instanceof ShardlessError && error.retryable;
}
