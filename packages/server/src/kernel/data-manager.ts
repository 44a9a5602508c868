import { ManagedObjectError } from "../api/errors.js";
import { Ref } from "../api/ref.js";
import type { DataManager } from "../api/types.js";
import { MAX_BINDING_KEY_BYTES } from "./data-store.js";
import type { Transaction } from "./transaction.js";

/** Binding keys of the application start with this; services use {@link SERVICE_BINDING_PREFIX}. */
export const APP_BINDING_PREFIX = "a.";
/** Binding keys of Shardless's own services. */
export const SERVICE_BINDING_PREFIX = "s.";

/** The game-facing {@link DataManager} of one transaction: application bindings only. */
export class TransactionDataManager implements DataManager {
  constructor(private readonly tx: Transaction) {}

  getBinding<T extends object = object>(name: string): T {
    return this.tx.getBound(appKey(name), name, false) as T;
  }

  getBindingForUpdate<T extends object = object>(name: string): T {
    return this.tx.getBound(appKey(name), name, true) as T;
  }

  setBinding(name: string, obj: object): void {
    this.tx.bind(appKey(name), obj);
  }

  removeBinding(name: string): void {
    this.tx.unbind(appKey(name), name);
  }

  nextBoundName(name?: string): string | undefined {
    const after = name === undefined ? undefined : appKey(name);
    const key = this.tx.nextBoundKey(after, APP_BINDING_PREFIX);
    return key?.slice(APP_BINDING_PREFIX.length);
  }

  removeObject(obj: object): void {
    this.tx.remove(obj);
  }

  markForUpdate(obj: object): void {
    this.tx.markForUpdate(obj);
  }

  createReference<T extends object>(obj: T): Ref<T> {
    return new Ref<T>(this.tx.idOf(obj));
  }

  getObjectId(obj: object): bigint {
    return this.tx.idOf(obj);
  }
}

/**
 * The full key of application binding `name`.
 * @throws {ManagedObjectError} if `name` is not a string or is too long to store.
 */
export function appKey(name: string): string {
  return bindingKey(APP_BINDING_PREFIX, name);
}

/** The full key of service binding `name`. */
export function serviceKey(name: string): string {
  return bindingKey(SERVICE_BINDING_PREFIX, name);
}

function bindingKey(prefix: string, name: string): string {
  if (typeof name !== "string") throw new ManagedObjectError(`binding names are strings, not ${typeof name}`);
  // A lone surrogate has no UTF-8 form: two such names would become the same stored key.
  if (!(name as string & { isWellFormed(): boolean }).isWellFormed()) throw new ManagedObjectError("binding names must be well-formed Unicode (no lone surrogates)");
  const key = prefix + name;
  if (Buffer.byteLength(key, "utf8") > MAX_BINDING_KEY_BYTES) {
    throw new ManagedObjectError(`binding name is longer than ${MAX_BINDING_KEY_BYTES - prefix.length} UTF-8 bytes`);
  }
  return key;
}
