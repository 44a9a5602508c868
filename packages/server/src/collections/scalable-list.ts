import { managed } from "../api/managed.js";
import type { Ref } from "../api/ref.js";
import type { DataManager, RemovalListener, TaskContext } from "../api/types.js";
import { checkElement, integerOption, taskContext } from "./context.js";
import { removeCollectionParts, type CollectionPart } from "./reaper.js";

/**
 * One node of the counted B-tree behind {@link ScalableList}, a managed object of its own. A leaf
 * holds a run of elements; an internal node holds Refs to its children and how many elements each
 * child's subtree holds, which is what makes indexing O(depth). The root changes kind in place, so
 * the list's handle never changes.
 */
@managed("shardless.ScalableList.Node")
export class ListNode implements CollectionPart {
  constructor(
    /** The elements of a leaf, in order; null in an internal node. */
    public items: unknown[] | null,
    /** The children of an internal node, in order; null in a leaf. */
    public children: Ref<ListNode>[] | null,
    /** Elements under each child; null in a leaf. */
    public counts: number[] | null,
  ) {}

  ownedParts(): readonly Ref[] {
    return this.children ?? [];
  }
}

/** Options of a {@link ScalableList}. */
export interface ScalableListOptions {
  /** Elements per leaf (one managed object) before it splits in two. 4 to 4096; default 64. */
  readonly maxLeafItems?: number;
  /** Children per internal node before it splits in two. 4 to 1024; default 32. */
  readonly maxChildren?: number;
}

/** A node on the path from the root to an element, with the child slot taken there. */
interface Step {
  readonly node: ListNode;
  /** The child slot taken (internal node) or the element's index (leaf). */
  readonly slot: number;
}

function width(node: ListNode): number {
  return node.items !== null ? node.items.length : node.children!.length;
}

function total(node: ListNode): number {
  return node.items !== null ? node.items.length : node.counts!.reduce((sum, count) => sum + count, 0);
}

/**
 * A list that scales: elements live in the leaves of a counted B-tree whose nodes are managed
 * objects of their own, so a commit rewrites only the nodes it changed. Indexed `get` and `set`
 * read the path from the root to one leaf and write that leaf only: tasks setting elements in
 * different leaves do not conflict. Changing the length (`push`, `insert`, `remove`) updates the
 * element counts on the whole path, the root included, so such tasks conflict with each other and
 * with every concurrent reader by index: they serialise, as in any indexed list. For a queue that
 * many tasks feed and drain at once, use {@link ScalableDeque}.
 *
 * Keep the list through a binding or a Ref, and remove it with `ctx.data.removeObject(list)`,
 * which removes every internal object too. Elements are any storable value or a `Ref`. To walk a
 * long list over several tasks, keep the next index: positions are indices.
 */
@managed("shardless.ScalableList")
export class ScalableList<V = unknown> implements RemovalListener, Iterable<V> {
  /** @internal The root node; the same object for the life of the list. */
  readonly root: Ref<ListNode>;
  /** @internal See {@link ScalableListOptions.maxLeafItems}. */
  readonly maxLeafItems: number;
  /** @internal See {@link ScalableListOptions.maxChildren}. */
  readonly maxChildren: number;

  /**
   * An empty list, created in the running task. Keep it (bind it, or hold a Ref) in the same task.
   * @throws {TransactionNotActiveError} outside a task.
   * @throws {RangeError} for an option out of range.
   */
  constructor(options: ScalableListOptions = {}) {
    const { data } = taskContext("new ScalableList");
    this.maxLeafItems = integerOption("maxLeafItems", options.maxLeafItems, 64, 4, 4096);
    this.maxChildren = integerOption("maxChildren", options.maxChildren, 32, 4, 1024);
    this.root = data.createReference(new ListNode([], null, null));
  }

  /** The number of elements. Reads the root only. */
  size(): number {
    return total(this.root.get());
  }

  /** True when the list has no element. */
  isEmpty(): boolean {
    return this.size() === 0;
  }

  /**
   * The element at `index` (0-based).
   * @throws {RangeError} unless 0 ≤ index < size.
   */
  get(index: number): V {
    const path = this.find(index, false, "get");
    const leaf = path[path.length - 1]!;
    return leaf.node.items![leaf.slot] as V;
  }

  /**
   * Replaces the element at `index` and returns the previous one. Writes one leaf.
   * @throws {RangeError} unless 0 ≤ index < size.
   * @throws {ManagedObjectError} if `value` is a managed object (store a Ref).
   */
  set(index: number, value: V): V {
    checkElement(value, "ScalableList.set");
    const path = this.find(index, false, "set");
    const leaf = path[path.length - 1]!;
    const previous = leaf.node.items![leaf.slot] as V;
    leaf.node.items![leaf.slot] = value;
    return previous;
  }

  /** Appends `value`; returns the new size. */
  push(value: V): number {
    this.insert(this.size(), value);
    return this.size();
  }

  /**
   * Inserts `value` before the element at `index` (at the end when `index` is the size).
   * @throws {RangeError} unless 0 ≤ index ≤ size.
   * @throws {ManagedObjectError} if `value` is a managed object (store a Ref).
   */
  insert(index: number, value: V): void {
    checkElement(value, "ScalableList.insert");
    const { data } = taskContext("ScalableList.insert");
    const path = this.find(index, true, "insert");
    for (let level = 0; level < path.length - 1; level++) path[level]!.node.counts![path[level]!.slot]!++;
    const leaf = path[path.length - 1]!;
    leaf.node.items!.splice(leaf.slot, 0, value);
    // Split upwards while a node is over its bound; each split adds a child to its parent.
    for (let level = path.length - 1; level >= 0; level--) {
      const { node } = path[level]!;
      if (width(node) <= this.boundOf(node)) break;
      if (level === 0) this.splitRoot(data, node);
      else this.splitChild(data, path[level - 1]!, node);
    }
  }

  /**
   * Removes the element at `index` and returns it. Leaves and nodes left small merge with a
   * neighbour; empty ones are removed.
   * @throws {RangeError} unless 0 ≤ index < size.
   */
  remove(index: number): V {
    const { data } = taskContext("ScalableList.remove");
    const path = this.find(index, false, "remove");
    for (let level = 0; level < path.length - 1; level++) path[level]!.node.counts![path[level]!.slot]!--;
    const leaf = path[path.length - 1]!;
    const [value] = leaf.node.items!.splice(leaf.slot, 1);
    for (let level = path.length - 1; level >= 1; level--) {
      if (!this.rebalance(data, path[level - 1]!, path[level]!.node)) break;
    }
    this.shrinkRoot(data);
    return value as V;
  }

  /** The elements in order, within the running task. Reads every node. */
  *values(): IterableIterator<V> {
    yield* this.walk(this.root);
  }

  [Symbol.iterator](): IterableIterator<V> {
    return this.values();
  }

  /** Calls `callback` for each element, in order. */
  forEach(callback: (value: V, index: number, list: this) => void): void {
    let index = 0;
    for (const value of this.values()) callback(value, index++, this);
  }

  /**
   * Removes every element. Writes the root (conflicting with every concurrent user); the old nodes
   * are removed now if there are few, otherwise by a durable background task.
   */
  clear(): void {
    const ctx = taskContext("ScalableList.clear");
    const root = this.root.getForUpdate();
    const detached = root.children ?? [];
    root.items = [];
    root.children = null;
    root.counts = null;
    removeCollectionParts(ctx, detached);
  }

  /** Called by `ctx.data.removeObject(list)`: removes every node of the list too. */
  removingObject(ctx: TaskContext): void {
    removeCollectionParts(ctx, [this.root]);
  }

  private *walk(ref: Ref<ListNode>): Generator<V> {
    const node = ref.get();
    if (node.items !== null) {
      yield* node.items.slice() as V[];
      return;
    }
    for (const child of node.children!.slice()) yield* this.walk(child);
  }

  private boundOf(node: ListNode): number {
    return node.items !== null ? this.maxLeafItems : this.maxChildren;
  }

  /** The path from the root to the element at `index` (or the insertion point, when `inserting`). */
  private find(index: number, inserting: boolean, what: string): Step[] {
    const root = this.root.get();
    const size = total(root);
    const limit = inserting ? size : size - 1;
    if (!Number.isInteger(index) || index < 0 || index > limit) {
      throw new RangeError(`ScalableList.${what}: index ${String(index)} is outside 0..${limit} (size ${size})`);
    }
    const path: Step[] = [];
    let node = root;
    let rest = index;
    while (node.items === null) {
      const counts = node.counts!;
      let slot = 0;
      // An insertion at a boundary goes to the end of the left child (the last child for an append).
      while (slot < counts.length - 1 && (inserting ? rest > counts[slot]! : rest >= counts[slot]!)) rest -= counts[slot++]!;
      path.push({ node, slot });
      node = node.children![slot]!.get();
    }
    path.push({ node, slot: rest });
    return path;
  }

  /** Moves the second half of `node`'s content into a new node; returns it (not yet referenced). */
  private splitOff(node: ListNode): ListNode {
    const half = Math.floor(width(node) / 2);
    if (node.items !== null) return new ListNode(node.items.splice(half), null, null);
    return new ListNode(null, node.children!.splice(half), node.counts!.splice(half));
  }

  private splitChild(data: DataManager, parent: Step, node: ListNode): void {
    const right = this.splitOff(node);
    const { node: owner, slot } = parent;
    owner.children!.splice(slot + 1, 0, data.createReference(right));
    owner.counts!.splice(slot, 1, total(node), total(right));
  }

  /** The root keeps its identity: its content moves into two new children. */
  private splitRoot(data: DataManager, root: ListNode): void {
    const right = this.splitOff(root);
    const left = new ListNode(root.items, root.children, root.counts);
    root.items = null;
    root.children = [data.createReference(left), data.createReference(right)];
    root.counts = [total(left), total(right)];
  }

  /**
   * After a removal under `parent`'s child `node`: drops `node` if empty, or merges it with a
   * neighbour if both are small. Returns true when `parent` lost a child (and may need the same).
   */
  private rebalance(data: DataManager, parent: Step, node: ListNode): boolean {
    const { node: owner, slot } = parent;
    if (width(node) === 0) {
      owner.children!.splice(slot, 1);
      owner.counts!.splice(slot, 1);
      data.removeObject(node);
      return true;
    }
    const bound = this.boundOf(node);
    // Merge below a quarter, and only into at most three quarters, so that a merged node does not
    // split again at once (hysteresis).
    if (width(node) >= Math.ceil(bound / 4) || owner.children!.length < 2) return false;
    const leftSlot = slot > 0 ? slot - 1 : slot;
    const left = leftSlot === slot ? node : owner.children![leftSlot]!.get();
    const right = leftSlot === slot ? owner.children![slot + 1]!.get() : node;
    if (width(left) + width(right) > Math.floor((bound * 3) / 4)) return false;
    if (left.items !== null) left.items.push(...right.items!);
    else {
      left.children!.push(...right.children!);
      left.counts!.push(...right.counts!);
    }
    owner.counts!.splice(leftSlot, 2, owner.counts![leftSlot]! + owner.counts![leftSlot + 1]!);
    owner.children!.splice(leftSlot + 1, 1);
    data.removeObject(right);
    return true;
  }

  /** An internal root with one child takes over the child's content; with none it becomes a leaf. */
  private shrinkRoot(data: DataManager): void {
    const root = this.root.get();
    while (root.children !== null && root.children.length <= 1) {
      if (root.children.length === 0) {
        root.items = [];
        root.children = null;
        root.counts = null;
        return;
      }
      const child = root.children[0]!.get();
      root.items = child.items;
      root.children = child.children;
      root.counts = child.counts;
      data.removeObject(child);
    }
  }
}
