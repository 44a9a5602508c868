import { activeTransaction } from "./active-transaction.js";

/**
 * A persistent reference to a managed object, and the only way one managed object may hold another.
 *
 * A Ref is a value: it stores the target's 64-bit id and can be kept in fields, arrays and maps of
 * managed objects. Two Refs with equal `id`s denote the same object. Refs are made with
 * `ctx.data.createReference(obj)`.
 */
export class Ref<T extends object = object> {
  /** The target's object id: 64 bits, never reused; the top 16 bits are its partition. */
  readonly id: bigint;

  /** @internal Refs come from `DataManager.createReference`; constructing one by hand skips checks. */
  constructor(id: bigint) {
    this.id = id;
  }

  /**
   * The target, loaded into the current task. Within one task every call returns the same JS object.
   * @throws {ObjectNotFoundError} if the target has been removed.
   * @throws {TransactionNotActiveError} outside a task.
   */
  get(): T {
    return activeTransaction("Ref.get").getObject(this.id, false) as T;
  }

  /**
   * As {@link get}, and declares that the task will modify the target: it is written at commit even
   * if its encoding did not change, so concurrent readers of it conflict early.
   */
  getForUpdate(): T {
    return activeTransaction("Ref.getForUpdate").getObject(this.id, true) as T;
  }

  /** True when `other` refers to the same object. */
  equals(other: Ref | null | undefined): boolean {
    return other instanceof Ref && other.id === this.id;
  }

  toString(): string {
    return `Ref(${this.id})`;
  }
}

/**
 * A handle on a periodic task, returned by `schedulePeriodicTask`. It is a storable value: keep it
 * in a managed object's field and call {@link cancel} from a later task.
 */
export class PeriodicTaskHandle {
  /** Identifies the scheduled task record. */
  readonly id: bigint;

  /** @internal Made by `TaskManager.schedulePeriodicTask`. */
  constructor(id: bigint) {
    this.id = id;
  }

  /**
   * Stops future runs, effective if the current task commits. Cancelling twice, or cancelling a
   * task that has already been cancelled, does nothing. A run already under way finishes.
   * @throws {TransactionNotActiveError} outside a task.
   */
  cancel(): void {
    activeTransaction("PeriodicTaskHandle.cancel").cancelPeriodicTask(this.id);
  }
}
