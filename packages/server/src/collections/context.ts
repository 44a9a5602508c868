import { isManagedObject } from "../api/managed.js";
import { ManagedObjectError } from "../api/errors.js";
import type { TaskContext } from "../api/types.js";
import { currentTransaction } from "../kernel/transaction.js";

/**
 * The context of the task running now. Collections are used like ordinary collections, without a
 * context argument, so they find the running task here, as `Ref.get()` does.
 * @throws {TransactionNotActiveError} outside a task.
 */
export function taskContext(what: string): TaskContext {
  return currentTransaction(what).context;
}

/**
 * Refuses a managed object given as an element: the collection stores elements inside its own
 * managed objects, where another managed object may only be held through a Ref. Checking here
 * names the call; the codec would otherwise refuse it only at commit, naming an internal field.
 * @throws {ManagedObjectError}
 */
export function checkElement(value: unknown, what: string): void {
  if (isManagedObject(value)) {
    throw new ManagedObjectError(`${what}: ${value.constructor.name} is a managed object; store a Ref to it (ctx.data.createReference(obj))`);
  }
}

/**
 * Checks an option that must be an integer within [min, max].
 * @throws {RangeError} naming the option.
 */
export function integerOption(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const chosen = value ?? fallback;
  if (!Number.isInteger(chosen) || chosen < min || chosen > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${String(chosen)}`);
  }
  return chosen;
}
