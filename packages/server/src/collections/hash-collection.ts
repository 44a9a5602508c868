import type { Ref } from "../api/ref.js";
import type { RemovalListener, TaskContext } from "../api/types.js";
import { integerOption, taskContext } from "./context.js";
import { newTrieRoot, trieClear, trieIsEmpty, trieSize, type MapNode, type TrieBounds } from "./hash-trie.js";
import { removeCollectionParts } from "./reaper.js";

/** Options of a `ScalableMap` or `ScalableSet`, fixed when it is created. */
export interface ScalableHashOptions {
  /**
   * A bucket (one managed object) holding more entries than this splits into 16. Larger buckets
   * mean fewer objects and shallower trees, but every write rewrites a whole bucket. 8 to 4096;
   * default 128.
   */
  readonly maxBucketEntries?: number;
  /**
   * How many concurrent writers of distinct keys the collection should serve from the start: the
   * trie is pre-split into at least this many buckets (rounded up to 1, 16 or 256), which stay even
   * when the collection is empty. 1 makes a small collection cost two objects; without pre-splitting
   * every writer conflicts until the first bucket fills and splits. 1 to 256; default 16.
   */
  readonly minConcurrency?: number;
}

/**
 * What `ScalableMap` and `ScalableSet` share: a handle (this managed object) that names the root of
 * a hash trie and never changes after creation, so reading it conflicts with nothing.
 */
export abstract class HashCollection implements RemovalListener, TrieBounds {
  /** @internal The root node of the trie; the same object for the life of the collection. */
  readonly root: Ref<MapNode>;
  /** @internal See {@link ScalableHashOptions.maxBucketEntries}. */
  readonly maxLeafEntries: number;
  /** @internal Levels of the trie that are always internal (pre-split). */
  readonly minDepth: number;

  /**
   * Creates an empty collection and its first internal objects in the running task. Keep it (bind
   * it, or hold a Ref to it) in the same task; an unkept collection's objects would stay stored.
   * @throws {TransactionNotActiveError} outside a task.
   * @throws {RangeError} for an option out of range.
   */
  constructor(what: string, options: ScalableHashOptions) {
    const ctx = taskContext(what);
    this.maxLeafEntries = integerOption("maxBucketEntries", options.maxBucketEntries, 128, 8, 4096);
    const minConcurrency = integerOption("minConcurrency", options.minConcurrency, 16, 1, 256);
    this.minDepth = minConcurrency === 1 ? 0 : minConcurrency <= 16 ? 1 : 2;
    this.root = ctx.data.createReference(newTrieRoot(ctx.data, this));
  }

  /**
   * The number of entries. It is counted, not stored: this reads every node of the trie (one object
   * read per node: 4,370 for 100,000 entries with the default options), and the task conflicts with
   * any writer that commits to the collection before it does. A stored count would be one object that every insert and removal writes, making
   * all writers conflict with each other: the very thing this collection exists to avoid. Keep your
   * own counter if you need a cheap size and can afford that.
   */
  size(): number {
    return trieSize(this.root);
  }

  /** True when the collection has no entry; reads buckets only until it finds a non-empty one. */
  isEmpty(): boolean {
    return trieIsEmpty(this.root);
  }

  /**
   * Removes every entry. The root is rewritten (so this conflicts with every concurrent user of the
   * collection); the old buckets are removed now if there are few, otherwise by a durable background
   * task, in slices.
   */
  clear(): void {
    const ctx = taskContext("clear");
    removeCollectionParts(ctx, trieClear(ctx.data, this.root, this));
  }

  /**
   * Called by `ctx.data.removeObject(collection)`: removes every internal object with it (the
   * buckets of a large collection are removed by a durable background task, in slices; they are
   * unreachable from the moment this task commits).
   */
  removingObject(ctx: TaskContext): void {
    removeCollectionParts(ctx, [this.root]);
  }
}
