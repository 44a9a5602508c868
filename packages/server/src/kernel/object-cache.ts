/**
 * The version a worker reports for what a task reads from the writes of the tasks before it in its
 * chain, not yet committed: such an instance is never cached (the writes may never commit).
 */
export const UNCOMMITTED_VERSION = -1;

/** A decoded instance the cache holds, with the version and bytes it was decoded from. */
export interface HeldObject {
  readonly version: number;
  readonly object: object;
  readonly bytes: Uint8Array;
}

/** Instances a thread keeps unless configured otherwise (`objectCacheEntries`). */
export const DEFAULT_OBJECT_CACHE_ENTRIES = 10_000;

/**
 * Decoded managed objects kept between the tasks of one thread, by id and version, so that a task
 * that reads an object a recent task read (a session's record, its listener, a room's state) takes
 * the instance instead of decoding its bytes again.
 *
 * An instance is lent to one transaction at a time: {@link take} removes it, and only a
 * transaction that read the object and left it exactly as decoded gives it back ({@link put}), with
 * the version it was loaded at. So a hit is always an instance equal to a fresh decode of the
 * bytes the store holds at that version: an object a task wrote, marked for update, or may have
 * changed before it aborted is decoded afresh next time. The least recently returned instance goes
 * first once the cache is full.
 */
export class ObjectCache {
  /** By id, in the order instances were returned (oldest first): a Map keeps insertion order. */
  private readonly held = new Map<bigint, HeldObject>();
  /** Loads served from the cache, and loads that decoded (counted only while the cache is on). */
  hits = 0;
  misses = 0;

  /** @param capacity instances held at most; 0 holds none. */
  constructor(readonly capacity: number) {}

  /** How many instances it holds. */
  get size(): number {
    return this.held.size;
  }

  /**
   * The version of the instance of object `id` held, if one is (nothing is taken or counted): a
   * thread that can learn an object's version without reading its bytes checks this first.
   */
  versionHeld(id: bigint): number | undefined {
    return this.held.get(id)?.version;
  }

  /**
   * The instance of object `id` at `version` and the bytes it was decoded from, removed from the
   * cache (the caller now owns the instance); or undefined if none is held at that version. One
   * held at another version is dropped: it is stale.
   */
  take(id: bigint, version: number): HeldObject | undefined {
    if (this.capacity === 0 || version === UNCOMMITTED_VERSION) return undefined;
    const entry = this.held.get(id);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    this.held.delete(id);
    if (entry.version !== version) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    return entry;
  }

  /**
   * Gives back `object`, the instance of object `id` as decoded from `bytes`, its stored bytes at
   * `version`, and not changed since. The least recently given back instance leaves if the cache
   * is full. An instance of writes not yet committed ({@link UNCOMMITTED_VERSION}) is not kept.
   */
  put(id: bigint, version: number, object: object, bytes: Uint8Array): void {
    if (this.capacity === 0 || version === UNCOMMITTED_VERSION) return;
    this.held.delete(id);
    this.held.set(id, { version, object, bytes });
    if (this.held.size > this.capacity) this.held.delete(this.held.keys().next().value!);
  }

  /** Forgets every instance. */
  clear(): void {
    this.held.clear();
  }
}
