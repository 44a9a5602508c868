import { managed } from "../api/managed.js";
import { checkElement, taskContext } from "./context.js";
import { HashCollection, type ScalableHashOptions } from "./hash-collection.js";
import { trieDelete, trieGet, trieSet } from "./hash-trie.js";
import { checkKey, type ScalableKey } from "./keys.js";
import { ScalableIterator } from "./scalable-iterator.js";

/** Options of a {@link ScalableMap}. */
export type ScalableMapOptions = ScalableHashOptions;

/**
 * A map that scales: its entries live in buckets that are managed objects of their own, in a hash
 * trie (16 children per node) that splits a bucket when it outgrows `maxBucketEntries` and merges
 * 16 sibling buckets back when they shrink. A write rewrites only the bucket of its key, so writers
 * of different keys rarely conflict, and a commit never rewrites the whole map.
 *
 * Use it inside tasks like a `Map`. The map itself is a managed object: keep it through a binding or
 * a Ref (`ctx.data.createReference(map)`), and remove it with `ctx.data.removeObject(map)`, which
 * removes every internal object too. Keys are {@link ScalableKey}s; values are any storable value,
 * or a `Ref` to a managed object (a managed object itself is refused). A value object read with
 * {@link get} is live: changing it in place is saved at commit, as with a field of a managed object.
 *
 * Iteration follows the order of the keys' hashes, not insertion order. See `docs/collections.md`.
 */
@managed("shardless.ScalableMap")
export class ScalableMap<K extends ScalableKey = ScalableKey, V = unknown> extends HashCollection implements Iterable<[K, V]> {
  /**
   * An empty map, created in the running task (see {@link ScalableHashOptions} for the options).
   * @throws {TransactionNotActiveError} outside a task.
   * @throws {RangeError} for an option out of range.
   */
  constructor(options: ScalableMapOptions = {}) {
    super("new ScalableMap", options);
  }

  /**
   * The value of `key`, or undefined. Reads the trie path to the key's bucket.
   * @throws {ManagedObjectError} if `key` is not a valid key.
   */
  get(key: K): V | undefined {
    return trieGet(this.root, checkKey(key, "ScalableMap.get")).value as V | undefined;
  }

  /** True when `key` is present. */
  has(key: K): boolean {
    return trieGet(this.root, checkKey(key, "ScalableMap.has")).found;
  }

  /**
   * Sets `key` to `value`. Writes the key's bucket (and, when it splits, 16 new buckets).
   * @throws {ManagedObjectError} for an invalid key, or a value that is a managed object (store a
   *   Ref); other unstorable values are refused at commit, with the path of the field.
   */
  set(key: K, value: V): this {
    const checked = checkKey(key, "ScalableMap.set");
    checkElement(value, "ScalableMap.set");
    trieSet(taskContext("ScalableMap.set").data, this.root, this, checked, value);
    return this;
  }

  /**
   * Removes `key`; returns true when it was present. Writes the key's bucket; a bucket left nearly
   * empty reads its siblings to see whether they merge.
   */
  delete(key: K): boolean {
    const checked = checkKey(key, "ScalableMap.delete");
    return trieDelete(taskContext("ScalableMap.delete").data, this.root, this, checked);
  }

  /**
   * An iterator over `[key, value]` entries that can be kept in a managed object and continued in a
   * later task; see {@link ScalableIterator} for its behaviour under concurrent changes.
   */
  iterator(): ScalableIterator<[K, V]> {
    return new ScalableIterator<[K, V]>(this.root, "entries");
  }

  /** The entries, in hash order, within the running task. */
  entries(): IterableIterator<[K, V]> {
    return this.iterator();
  }

  /** The keys, in hash order, within the running task. */
  keys(): IterableIterator<K> {
    return new ScalableIterator<K>(this.root, "keys");
  }

  /** The values, in the hash order of their keys, within the running task. */
  values(): IterableIterator<V> {
    return new ScalableIterator<V>(this.root, "values");
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.iterator();
  }

  /** Calls `callback` for each entry, in hash order. */
  forEach(callback: (value: V, key: K, map: this) => void): void {
    for (const [key, value] of this.iterator()) callback(value, key, this);
  }
}
