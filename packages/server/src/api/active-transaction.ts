import { TransactionNotActiveError } from "./errors.js";

/**
 * What API values that outlive a single call (a {@link Ref}, a periodic task handle) need from the
 * transaction that is running. The kernel implements it.
 */
export interface ActiveTransaction {
  /** The object with `id`, loaded into this transaction; marked for update when `forUpdate`. */
  getObject(id: bigint, forUpdate: boolean): object;
  /** Cancels the periodic task whose handle has `handleId`, effective if this transaction commits. */
  cancelPeriodicTask(handleId: bigint): void;
  /** The id of the managed object `obj` in this transaction (assigning one if it is new). */
  idOf(obj: object): bigint;
  /** A service of the server running this transaction, by name (e.g. `"sessions"`). */
  service<T>(name: string): T;
}

// The transaction running on this thread. A task runs synchronously from start to end, so at any
// instant at most one transaction (per thread) is executing game code: this slot is an execution
// context, like a call stack, not shared server state. Two servers in one process take turns in it.
let running: ActiveTransaction | undefined;

/**
 * The transaction executing game code right now.
 * @param what names the operation, for the error message.
 * @throws {TransactionNotActiveError} outside a task.
 */
export function activeTransaction(what: string): ActiveTransaction {
  if (running === undefined) {
    throw new TransactionNotActiveError(`${what} called outside a task: managed data is only reachable inside a task`);
  }
  return running;
}

/** Runs `body` with `transaction` as the active one, restoring the previous one afterwards. */
export function withActiveTransaction<T>(transaction: ActiveTransaction, body: () => T): T {
  const previous = running;
  running = transaction;
  try {
    return body();
  } finally {
    running = previous;
  }
}
