/**
 * The storage SPI. A data store keeps encoded managed objects by id, name bindings, and a small
 * metadata record; the kernel validates transactions itself and hands the store whole batches of
 * already-validated commits, which the store applies atomically.
 *
 * Reads are synchronous (tasks are synchronous) and see every batch whose `commit` has resolved.
 */

/** The stored form of one managed object. */
export interface ObjectRecord {
  /** The object's encoding (see the kernel's codec). */
  readonly bytes: Uint8Array;
  /** The commit sequence number of the transaction that last wrote it. */
  readonly version: number;
}

/** The stored form of one name binding. */
export interface BindingRecord {
  /** The id of the bound object. */
  readonly id: bigint;
  /** The commit sequence number of the transaction that last wrote the binding. */
  readonly version: number;
}

/** A write of one object: `bytes: null` removes it. */
export interface ObjectWrite {
  readonly id: bigint;
  readonly bytes: Uint8Array | null;
  readonly version: number;
}

/** A write of one binding: `id: null` removes it. */
export interface BindingWrite {
  readonly name: string;
  readonly id: bigint | null;
  readonly version: number;
}

/** Counters that must survive restarts. */
export interface StoreMeta {
  /** The next object id to hand out: ids below it may have been used and are never reused. */
  readonly nextObjectId: bigint;
  /** The highest commit sequence number stored. */
  readonly lastCommitSeq: number;
  /** Application time (ms) at the last commit: it resumes from here after a restart. */
  readonly appTimeMs: number;
}

/** Many transactions' changes, applied all together or not at all. */
export interface CommitBatch {
  readonly objects: readonly ObjectWrite[];
  readonly bindings: readonly BindingWrite[];
  readonly meta: StoreMeta;
}

/** Storage behind a server. One server owns a store at a time. */
export interface DataStore {
  /** A short name of the implementation, for logs and metrics. */
  readonly kind: string;
  /** The metadata of the last commit, or undefined for a store that has never been committed to. */
  readMeta(): StoreMeta | undefined;
  /** The object with `id`, or undefined if there is none. */
  getObject(id: bigint): ObjectRecord | undefined;
  /**
   * The version of object `id`, or undefined if there is none: optional, for a store that can say
   * it without reading the object's bytes (the decoded-object cache then needs no bytes).
   */
  getObjectVersion?(id: bigint): number | undefined;
  /** The binding of the full binding key `name`, or undefined. */
  getBinding(name: string): BindingRecord | undefined;
  /**
   * The first binding key greater than `after` (or the first of all when undefined) that starts with
   * `prefix`, in UTF-8 byte order; undefined when there is none.
   */
  nextBindingName(after: string | undefined, prefix: string): string | undefined;
  /**
   * Applies `batch` atomically. Resolves once it is as durable as the store's durability mode
   * promises and visible to reads; rejects if nothing of it was applied. The batch's byte arrays
   * must not change afterwards: a store may keep them, or read them later from another thread.
   */
  commit(batch: CommitBatch): Promise<void>;
  /** Bytes the store occupies (on disk, for a persistent store), for metrics; optional. */
  sizeBytes?(): number;
  /** Flushes and releases the store. Further calls fail. */
  close(): Promise<void>;
}

/** The on-disk format this code writes and reads. */
export const STORE_FORMAT_VERSION = 1;

/** Longest binding key a store must accept, in UTF-8 bytes (LMDB's key limit, with room to spare). */
export const MAX_BINDING_KEY_BYTES = 480;

/**
 * Compares two well-formed strings by the bytes of their UTF-8 encodings, without encoding them.
 * UTF-8 byte order is code-point order; UTF-16 code-unit order agrees with it except that a
 * surrogate (part of a character above U+FFFF) must sort after every other code unit.
 */
export function compareUtf8(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xSurrogate = x >= 0xd800 && x <= 0xdfff;
    const ySurrogate = y >= 0xd800 && y <= 0xdfff;
    if (xSurrogate !== ySurrogate) return xSurrogate ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
