import { managed } from "../api/managed.js";
import { taskContext } from "./context.js";
import { HashCollection, type ScalableHashOptions } from "./hash-collection.js";
import { trieDelete, trieGet, trieSet } from "./hash-trie.js";
import { checkKey, type ScalableKey } from "./keys.js";
import { ScalableIterator } from "./scalable-iterator.js";

/** Options of a {@link ScalableSet}. */
export type ScalableSetOptions = ScalableHashOptions;

/**
 * A set that scales: the same hash trie as {@link ScalableMap} (buckets that are managed objects of
 * their own, split when large, merged when small), holding members only. Adding or removing a
 * member rewrites only its bucket, so tasks changing different members rarely conflict.
 *
 * Keep the set through a binding or a Ref, and remove it with `ctx.data.removeObject(set)`, which
 * removes every internal object too. Members are {@link ScalableKey}s, iterated in hash order.
 */
@managed("shardless.ScalableSet")
export class ScalableSet<K extends ScalableKey = ScalableKey> extends HashCollection implements Iterable<K> {
  /**
   * An empty set, created in the running task (see {@link ScalableHashOptions} for the options).
   * @throws {TransactionNotActiveError} outside a task.
   * @throws {RangeError} for an option out of range.
   */
  constructor(options: ScalableSetOptions = {}) {
    super("new ScalableSet", options);
  }

  /**
   * Adds `member` (writing its bucket only if it was absent).
   * @throws {ManagedObjectError} if `member` is not a valid key.
   */
  add(member: K): this {
    const checked = checkKey(member, "ScalableSet.add");
    // An unchanged bucket is not rewritten: adding a present member conflicts with nobody.
    if (!trieGet(this.root, checked).found) trieSet(taskContext("ScalableSet.add").data, this.root, this, checked, true);
    return this;
  }

  /** True when `member` is in the set. */
  has(member: K): boolean {
    return trieGet(this.root, checkKey(member, "ScalableSet.has")).found;
  }

  /** Removes `member`; returns true when it was present. */
  delete(member: K): boolean {
    const checked = checkKey(member, "ScalableSet.delete");
    return trieDelete(taskContext("ScalableSet.delete").data, this.root, this, checked);
  }

  /**
   * An iterator over the members that can be kept in a managed object and continued in a later
   * task; see {@link ScalableIterator}.
   */
  iterator(): ScalableIterator<K> {
    return new ScalableIterator<K>(this.root, "keys");
  }

  /** The members, in hash order, within the running task. */
  values(): IterableIterator<K> {
    return this.iterator();
  }

  /** The members (as `Set.keys()` does). */
  keys(): IterableIterator<K> {
    return this.iterator();
  }

  [Symbol.iterator](): IterableIterator<K> {
    return this.iterator();
  }

  /** Calls `callback` for each member, in hash order. */
  forEach(callback: (member: K, set: this) => void): void {
    for (const member of this.iterator()) callback(member, this);
  }
}
