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

/** Slots of the table of recently offered written objects (see {@link ObjectCache.admitsWritten}). */
const RECENTLY_OFFERED_SLOTS = 1024;

/** A place not filled again within this many loads per place of capacity is dropped. */
const AGE_LIMIT_PER_PLACE = 4;

/** Instances a thread keeps unless configured otherwise (`objectCacheEntries`). */
export const DEFAULT_OBJECT_CACHE_ENTRIES = 10_000;

/** A place in the cache for one object: its instance while held, in the order places were last filled. */
interface Slot {
  readonly id: bigint;
  /** The instance and what it was decoded from; object is undefined while the instance is lent. */
  version: number;
  object: object | undefined;
  bytes: Uint8Array | undefined;
  /** The cache's count of loads when the place was last filled. */
  filledAt: number;
  /** Neighbours in the order of last filling: older, newer. */
  older: Slot | undefined;
  newer: Slot | undefined;
}

/**
 * Decoded managed objects kept between the tasks of one thread, by id and version, so that a task
 * that reads an object a recent task read (a session's record, its listener, a room's state) takes
 * the instance instead of decoding its bytes again.
 *
 * An instance is lent to one transaction at a time: {@link take} empties its place, and only a
 * transaction that left the instance exactly as decoding its bytes would make it gives it back
 * ({@link put}), with the version those bytes have. So a hit is always an instance equal to a fresh
 * decode of the bytes the store holds at that version: an object a task may have changed before it
 * aborted, or changed in a way its encoding would not show, is decoded afresh next time.
 *
 * At most `capacity` places are kept; the one filled least recently goes first, and any place not
 * filled again within the last {@link AGE_LIMIT_PER_PLACE} × capacity loads goes too: where loads
 * are spread over many more objects than the cache holds, no instance would be taken before it left,
 * and a large cache of them would only make every lookup slower and keep instances alive for the
 * collector's old generation to sweep. Places stay in the
 * map while their instance is lent, and are reordered through links of their own: a Map whose hot
 * keys were deleted and set again would keep every deleted entry in their hash chains until it is
 * rebuilt, and a lookup of such a key would walk thousands of them (30 µs per delete and set of one
 * hot key in a 10,000-entry Map, measured on Node 20).
 */
export class ObjectCache {
  private readonly places = new Map<bigint, Slot>();
  /** The place filled least recently, and the one filled last. */
  private oldest: Slot | undefined;
  private newest: Slot | undefined;
  private filled = 0;
  /** Ids of written instances offered lately, one per slot (see {@link admitsWritten}). */
  private readonly recentlyOffered = new Float64Array(RECENTLY_OFFERED_SLOTS).fill(-1);
  /** Loads served from the cache, and loads that decoded (counted only while the cache is on). */
  hits = 0;
  misses = 0;

  /** @param capacity instances held at most; 0 holds none. */
  constructor(readonly capacity: number) {}

  /** How many instances it holds (not counting those lent out). */
  get size(): number {
    return this.filled;
  }

  /**
   * The version of the instance of object `id` held, if one is (nothing is taken or counted): a
   * thread that can learn an object's version without reading its bytes checks this first.
   */
  versionHeld(id: bigint): number | undefined {
    const place = this.places.get(id);
    return place?.object === undefined ? undefined : place.version;
  }

  /**
   * The instance of object `id` at `version` and the bytes it was decoded from, taken out of the
   * cache (the caller now owns the instance); or undefined if none is held at that version. One
   * held at another version is dropped: it is stale.
   */
  take(id: bigint, version: number): HeldObject | undefined {
    if (this.capacity === 0 || version === UNCOMMITTED_VERSION) return undefined;
    const place = this.places.get(id);
    const object = place?.object;
    if (object === undefined) {
      this.misses++;
      return undefined;
    }
    const held = place!.version === version ? { version, object, bytes: place!.bytes! } : undefined;
    place!.object = undefined;
    place!.bytes = undefined;
    this.filled--;
    if (held === undefined) this.misses++;
    else this.hits++;
    return held;
  }

  /**
   * Gives back `object`, the instance of object `id` as decoded from `bytes`, its stored bytes at
   * `version`, and not changed since. The place filled least recently goes if the cache is full.
   * An instance of writes not yet committed ({@link UNCOMMITTED_VERSION}) is not kept.
   */
  put(id: bigint, version: number, object: object, bytes: Uint8Array): void {
    if (this.capacity === 0 || version === UNCOMMITTED_VERSION) return;
    const now = this.hits + this.misses;
    let place = this.places.get(id);
    if (place === undefined) {
      place = { id, version, object: undefined, bytes: undefined, filledAt: now, older: undefined, newer: undefined };
      this.places.set(id, place);
      if (this.places.size > this.capacity) this.drop(this.oldest!);
    } else {
      this.unlink(place);
    }
    if (place.object === undefined) this.filled++;
    place.version = version;
    place.object = object;
    place.bytes = bytes;
    place.filledAt = now;
    this.linkNewest(place);
    const ageLimit = now - AGE_LIMIT_PER_PLACE * this.capacity;
    while (this.oldest!.filledAt < ageLimit) this.drop(this.oldest!);
  }

  /** Counts a load that found no instance held (one that {@link take} did not see). */
  missed(): void {
    if (this.capacity > 0) this.misses++;
  }

  /**
   * Whether to keep the instance of object `id` that a task wrote, and did not take from the cache:
   * yes if the object was offered not long ago (its id is still in its slot of a small table of ids
   * recently offered). An object written again and again gets in on its second write, and stays
   * while tasks take it from here; where writes are spread over many more objects than that table
   * holds (uniform transfers over 100,000 accounts), few get in, and the cache is not churned by
   * instances no task takes, which would also promote them to the collector's old generation.
   */
  admitsWritten(id: bigint): boolean {
    // Exact below 2^53 (every id of partitions below 32); above, a collision only admits early.
    const key = Number(id);
    const slot = key % RECENTLY_OFFERED_SLOTS;
    if (this.recentlyOffered[slot] === key) return true;
    this.recentlyOffered[slot] = key;
    return false;
  }

  /** Forgets every instance. */
  clear(): void {
    this.places.clear();
    this.oldest = this.newest = undefined;
    this.filled = 0;
  }

  private drop(place: Slot): void {
    this.unlink(place);
    this.places.delete(place.id);
    if (place.object !== undefined) this.filled--;
  }

  private unlink(place: Slot): void {
    if (place.older === undefined) this.oldest = place.newer;
    else place.older.newer = place.newer;
    if (place.newer === undefined) this.newest = place.older;
    else place.newer.older = place.older;
    place.older = place.newer = undefined;
  }

  private linkNewest(place: Slot): void {
    place.older = this.newest;
    if (this.newest === undefined) this.oldest = place;
    else this.newest.newer = place;
    this.newest = place;
  }
}
