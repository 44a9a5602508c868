import { managed } from "../api/managed.js";
import type { Ref } from "../api/ref.js";
import type { RemovalListener, TaskContext } from "../api/types.js";
import { checkElement, integerOption, taskContext } from "./context.js";
import { removeCollectionParts, type CollectionPart } from "./reaper.js";

/**
 * A run of consecutive elements of a {@link ScalableDeque}, a managed object of its own, in a doubly
 * linked chain. The head segment's `prev` and the tail segment's `next` are null.
 */
@managed("shardless.ScalableDeque.Segment")
export class DequeSegment implements CollectionPart {
  constructor(
    /** The elements, front first. Empty only when this is the deque's only segment. */
    public items: unknown[],
    /** The segment towards the front, or null for the head segment. */
    public prev: Ref<DequeSegment> | null,
    /** The segment towards the back, or null for the tail segment. */
    public next: Ref<DequeSegment> | null,
  ) {}

  ownedParts(): readonly Ref[] {
    return this.next === null ? [] : [this.next];
  }
}

/**
 * The state of one end of a {@link ScalableDeque}. Each end has its own, so that operations at the
 * front never write what operations at the back write.
 */
@managed("shardless.ScalableDeque.End")
export class DequeEnd implements CollectionPart {
  constructor(
    /** The segment at this end. */
    public segment: Ref<DequeSegment>,
    /**
     * Elements added at this end minus elements removed at this end (negative when this end removed
     * elements the other end added): the two ends' counts sum to the size.
     */
    public count: number,
  ) {}

  ownedParts(): readonly Ref[] {
    return [];
  }
}

/** Options of a {@link ScalableDeque}. */
export interface ScalableDequeOptions {
  /**
   * Elements per segment (one managed object). The two ends touch different segments whenever the
   * deque holds more than twice this many elements. 4 to 4096; default 32.
   */
  readonly segmentCapacity?: number;
}

/**
 * A double-ended queue that scales: elements live in a chain of segments, each a managed object,
 * and each end keeps its state in its own managed object. An operation at one end reads and writes
 * that end's state and segment only, so tasks working at the front do not conflict with tasks
 * working at the back once the deque holds more than two segments' worth of elements
 * (`2 × segmentCapacity`); tasks at the same end conflict with each other, as they must.
 *
 * Keep the deque through a binding or a Ref, and remove it with `ctx.data.removeObject(deque)`,
 * which removes every segment too. Elements are any storable value or a `Ref` (a managed object
 * itself is refused). `popFront`/`popBack`/`peek*` return undefined when the deque is empty; store
 * no `undefined` elements if you rely on that, or check {@link isEmpty} first.
 */
@managed("shardless.ScalableDeque")
export class ScalableDeque<V = unknown> implements RemovalListener, Iterable<V> {
  /** @internal The front end's state. */
  readonly head: Ref<DequeEnd>;
  /** @internal The back end's state. */
  readonly tail: Ref<DequeEnd>;
  /** @internal See {@link ScalableDequeOptions.segmentCapacity}. */
  readonly segmentCapacity: number;

  /**
   * An empty deque, created in the running task. Keep it (bind it, or hold a Ref) in the same task.
   * @throws {TransactionNotActiveError} outside a task.
   * @throws {RangeError} for an option out of range.
   */
  constructor(options: ScalableDequeOptions = {}) {
    const { data } = taskContext("new ScalableDeque");
    this.segmentCapacity = integerOption("segmentCapacity", options.segmentCapacity, 32, 4, 4096);
    const segment = data.createReference(new DequeSegment([], null, null));
    this.head = data.createReference(new DequeEnd(segment, 0));
    this.tail = data.createReference(new DequeEnd(segment, 0));
  }

  /** Adds `value` at the back. Writes the back end's state and segment (and a new segment when full). */
  pushBack(value: V): void {
    checkElement(value, "ScalableDeque.pushBack");
    const end = this.tail.get();
    const segment = end.segment.get();
    if (segment.items.length < this.segmentCapacity) {
      segment.items.push(value);
    } else {
      const added = taskContext("ScalableDeque.pushBack").data.createReference(new DequeSegment([value], end.segment, null));
      segment.next = added;
      end.segment = added;
    }
    end.count++;
  }

  /** Adds `value` at the front. Writes the front end's state and segment (and a new segment when full). */
  pushFront(value: V): void {
    checkElement(value, "ScalableDeque.pushFront");
    const end = this.head.get();
    const segment = end.segment.get();
    if (segment.items.length < this.segmentCapacity) {
      segment.items.unshift(value);
    } else {
      const added = taskContext("ScalableDeque.pushFront").data.createReference(new DequeSegment([value], null, end.segment));
      segment.prev = added;
      end.segment = added;
    }
    end.count++;
  }

  /**
   * Removes and returns the front element, or undefined when the deque is empty. A segment emptied
   * by this is removed, and its neighbour becomes the head segment (and is written).
   */
  popFront(): V | undefined {
    const end = this.head.get();
    const segment = end.segment.get();
    // Only the sole segment can be empty (emptied segments are unlinked at once), so an empty head
    // segment means an empty deque, found without reading the other end.
    if (segment.items.length === 0) return undefined;
    const value = segment.items.shift() as V;
    end.count--;
    if (segment.items.length === 0 && segment.next !== null) {
      const { data } = taskContext("ScalableDeque.popFront");
      segment.next.get().prev = null;
      end.segment = segment.next;
      data.removeObject(segment);
    }
    return value;
  }

  /**
   * Removes and returns the back element, or undefined when the deque is empty. A segment emptied by
   * this is removed, and its neighbour becomes the tail segment (and is written).
   */
  popBack(): V | undefined {
    const end = this.tail.get();
    const segment = end.segment.get();
    if (segment.items.length === 0) return undefined;
    const value = segment.items.pop() as V;
    end.count--;
    if (segment.items.length === 0 && segment.prev !== null) {
      const { data } = taskContext("ScalableDeque.popBack");
      segment.prev.get().next = null;
      end.segment = segment.prev;
      data.removeObject(segment);
    }
    return value;
  }

  /** The front element without removing it, or undefined when empty. Reads the front end only. */
  peekFront(): V | undefined {
    const items = this.head.get().segment.get().items;
    return items[0] as V | undefined;
  }

  /** The back element without removing it, or undefined when empty. Reads the back end only. */
  peekBack(): V | undefined {
    const items = this.tail.get().segment.get().items;
    return items[items.length - 1] as V | undefined;
  }

  /** True when the deque has no element. Reads the front end only. */
  isEmpty(): boolean {
    return this.head.get().segment.get().items.length === 0;
  }

  /**
   * The number of elements: the sum of the two ends' counts. Cheap (two reads), but it reads both
   * ends, so the task conflicts with concurrent writers at either end.
   */
  size(): number {
    return this.head.get().count + this.tail.get().count;
  }

  /**
   * The elements from front to back, within the running task. Reads every segment. Each segment is
   * read as it is when the iteration reaches it: do not change the deque while iterating.
   */
  *values(): IterableIterator<V> {
    let ref: Ref<DequeSegment> | null = this.head.get().segment;
    while (ref !== null) {
      const segment: DequeSegment = ref.get();
      yield* segment.items.slice() as V[];
      ref = segment.next;
    }
  }

  [Symbol.iterator](): IterableIterator<V> {
    return this.values();
  }

  /** Calls `callback` for each element, from front to back. */
  forEach(callback: (value: V, deque: this) => void): void {
    for (const value of this.values()) callback(value, this);
  }

  /**
   * Removes every element. Writes both ends (so it conflicts with every concurrent user); the old
   * segments are removed now if there are few, otherwise by a durable background task.
   */
  clear(): void {
    const ctx = taskContext("ScalableDeque.clear");
    const head = this.head.get();
    const tail = this.tail.get();
    const old = head.segment;
    const fresh = ctx.data.createReference(new DequeSegment([], null, null));
    head.segment = fresh;
    tail.segment = fresh;
    head.count = 0;
    tail.count = 0;
    removeCollectionParts(ctx, [old]);
  }

  /** Called by `ctx.data.removeObject(deque)`: removes both ends' states and every segment. */
  removingObject(ctx: TaskContext): void {
    removeCollectionParts(ctx, [this.head.get().segment, this.head, this.tail]);
  }
}
