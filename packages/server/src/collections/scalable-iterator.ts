import { managed } from "../api/managed.js";
import type { Ref } from "../api/ref.js";
import { locate, MAX_HASH, type MapNode } from "./hash-trie.js";
import { canonicalKey, hashCanonical, type ScalableKey } from "./keys.js";

/** What a {@link ScalableIterator} yields for each entry. */
export type IteratorMode = "entries" | "keys" | "values";

/** One entry of a leaf, with its place in the iteration order. */
interface Placed {
  readonly hash: number;
  readonly canonical: string;
  readonly key: ScalableKey;
}

/** The sorted entries of the leaf a cursor is in: a per-task cache, never stored. */
interface LeafView {
  readonly leaf: MapNode;
  readonly entries: Map<ScalableKey, unknown>;
  readonly placed: readonly Placed[];
  index: number;
}

// A symbol-keyed, non-enumerable property: the codec stores own enumerable string-keyed fields
// only, so the cache never reaches the store, and a decoded iterator starts without one.
const VIEW = Symbol("shardless.ScalableIterator.view");

function comparePlaced(a: Placed, b: Placed): number {
  if (a.hash !== b.hash) return a.hash - b.hash;
  return a.canonical < b.canonical ? -1 : a.canonical > b.canonical ? 1 : 0;
}

/**
 * An iterator over a `ScalableMap` or `ScalableSet` that is itself a managed object, so it can be
 * kept (through a Ref or a binding) and continued in a later task: a task can walk a million
 * entries in slices, stopping when `ctx.tasks.shouldContinue()` turns false.
 *
 * Entries come in the order of their keys' hashes (ties broken by the keys), an order that does not
 * depend on the trie's shape. The iterator remembers only the position of the last entry it
 * returned, so it works across any changes made in between, including splits, merges and `clear()`:
 * - no entry is returned twice (positions only increase; a key always has the same position);
 * - an entry present for the whole walk and not removed is returned exactly once;
 * - an entry added or removed during the walk may or may not be returned (it is returned when it
 *   is present as the iterator passes its position); a value changed during the walk is returned
 *   as it is when the iterator reaches it.
 *
 * Each step reads the nodes on the path to the current leaf, so a task that walks conflicts with
 * concurrent writers of the leaves it read in that task, and is retried. A kept iterator must be
 * removed like any managed object when it is no longer needed; an iterator that was never
 * referenced is never stored. Using it after its collection was removed throws
 * `ObjectNotFoundError`.
 */
@managed("shardless.ScalableMap.Iterator")
export class ScalableIterator<T> implements IterableIterator<T> {
  /** Hash of the last entry returned (or where to resume from, when `canonical` is null). */
  hash = 0;
  /** Canonical form of the last key returned; null when every key at `hash` is still to come. */
  canonical: string | null = null;
  /** True once the walk has passed the last hash. */
  finished = false;

  /** @internal Made by `ScalableMap.iterator()` / `ScalableSet.iterator()`. */
  constructor(
    /** The root node of the collection walked. */
    public root: Ref<MapNode>,
    /** What each step yields. */
    public mode: IteratorMode,
  ) {}

  /**
   * The next entry, key or value (by mode), or `{ done: true }` at the end.
   * @throws {ObjectNotFoundError} if the collection was removed.
   */
  next(): IteratorResult<T, undefined> {
    while (!this.finished) {
      const { leaf, end } = locate(this.root, this.hash);
      const view = this.viewOf(leaf);
      for (; view.index < view.placed.length; view.index++) {
        const placed = view.placed[view.index]!;
        if (!this.isAhead(placed) || !view.entries.has(placed.key)) continue;
        view.index++;
        this.hash = placed.hash;
        this.canonical = placed.canonical;
        return { done: false, value: this.yielded(placed.key, view.entries.get(placed.key)) };
      }
      if (end === MAX_HASH) {
        this.finished = true;
      } else {
        this.hash = end + 1;
        this.canonical = null;
      }
    }
    return { done: true, value: undefined };
  }

  /** True once the iterator has returned everything (it stays at the end thereafter). */
  get done(): boolean {
    return this.finished;
  }

  [Symbol.iterator](): this {
    return this;
  }

  private isAhead(placed: Placed): boolean {
    if (placed.hash !== this.hash) return placed.hash > this.hash;
    return this.canonical === null || placed.canonical > this.canonical;
  }

  private yielded(key: ScalableKey, value: unknown): T {
    if (this.mode === "keys") return key as T;
    if (this.mode === "values") return value as T;
    return [key, value] as T;
  }

  /** The sorted entries of `leaf`, reused while this task stays in the same, unchanged leaf. */
  private viewOf(leaf: MapNode): LeafView {
    const cached = (this as unknown as Record<symbol, LeafView | undefined>)[VIEW];
    // The same leaf object with the same entries Map: it is still a leaf (a split or a merge
    // replaces the Map), so the sorted order is still good; keys removed since are skipped by the
    // has() check, keys added since may be missed (allowed: added during the walk).
    if (cached !== undefined && cached.leaf === leaf && cached.entries === leaf.entries) return cached;
    const entries = leaf.entries!;
    const placed: Placed[] = [];
    for (const key of entries.keys()) {
      const canonical = canonicalKey(key);
      placed.push({ hash: hashCanonical(canonical), canonical, key });
    }
    placed.sort(comparePlaced);
    const view: LeafView = { leaf, entries, placed, index: 0 };
    Object.defineProperty(this, VIEW, { value: view, enumerable: false, writable: true, configurable: true });
    return view;
  }
}
