import { mkdirSync } from "node:fs";
import { open, type Database, type RootDatabase } from "lmdb";
import { DataFormatError } from "../api/errors.js";
import { DirectoryLock } from "./directory-lock.js";
import { RecentRecords } from "./recent-records.js";
import {
  MAX_BINDING_KEY_BYTES,
  STORE_FORMAT_VERSION,
  type BindingRecord,
  type CommitBatch,
  type DataStore,
  type ObjectRecord,
  type StoreMeta,
} from "../kernel/data-store.js";

/** How far a commit must get before `commit` resolves. */
export type LmdbDurability = "sync" | "relaxed";

/** Options of {@link LmdbDataStore.open}. */
export interface LmdbDataStoreOptions {
  /** Directory of the store; created if missing. */
  readonly path: string;
  /**
   * `sync` (default): a commit resolves after LMDB has fsynced it, so it survives power loss.
   * `relaxed`: no fsync; a commit survives a crash of the process but not of the machine.
   */
  readonly durability?: LmdbDurability;
  /**
   * Memory in bytes for records recently read or written, served without LMDB's read path
   * (default 16 MiB; 0 keeps none). Exact: every commit replaces what it wrote.
   */
  readonly recentRecordBytes?: number;
}

const META_KEY = "meta";

/**
 * Memory for records recently read or written, on the store that commits (not on a worker's reader,
 * which does not see the commits). A task's reads of hot objects (a session record, a player, a
 * channel) then skip LMDB's read path, about 2-4 us a record here.
 */
export const DEFAULT_RECENT_RECORD_BYTES = 16 * 1024 * 1024;
/** What an entry costs besides its bytes (the map entry, the record, the key). */
const ENTRY_OVERHEAD_BYTES = 96;

/** The metadata record as stored: JSON, with the bigint as a decimal string. */
interface StoredMeta {
  readonly format: number;
  readonly nextObjectId: string;
  readonly lastCommitSeq: number;
  readonly appTimeMs: number;
}

/**
 * The embedded default store: LMDB in one directory. Objects and bindings live in two named
 * databases keyed by raw bytes (8-byte big-endian ids; UTF-8 names, so iteration is in byte order),
 * each record carrying its version. A batch is one LMDB write transaction.
 */
export class LmdbDataStore implements DataStore {
  readonly kind = "lmdb";

  /** Recently read or written objects and bindings, exact: see {@link DEFAULT_RECENT_RECORD_BYTES}; none on a reader. */
  private readonly recentObjects: RecentRecords<bigint, ObjectRecord> | undefined;
  private readonly recentBindings: RecentRecords<string, BindingRecord> | undefined;

  private constructor(
    private readonly root: RootDatabase,
    private readonly objects: Database<Buffer, Buffer>,
    private readonly bindings: Database<Buffer, Buffer>,
    private readonly metaDb: Database<string, string>,
    private readonly durability: LmdbDurability,
    /** The directory lock; none for a reader (see {@link openReader}). */
    private readonly lock: DirectoryLock | undefined,
    recentRecordBytes: number,
  ) {
    if (lock === undefined) return;
    this.recentObjects = new RecentRecords(recentRecordBytes / 2, (record) => record.bytes.byteLength + ENTRY_OVERHEAD_BYTES);
    this.recentBindings = new RecentRecords(recentRecordBytes / 2, () => 2 * ENTRY_OVERHEAD_BYTES);
  }

  /**
   * Opens (creating if needed) the store in `options.path`, takes its directory lock and checks its
   * format version.
   * @throws {DataLockedError} if another live process has the directory open.
   * @throws {DataFormatError} if the directory holds another format.
   */
  static open(options: LmdbDataStoreOptions): LmdbDataStore {
    mkdirSync(options.path, { recursive: true });
    const lock = DirectoryLock.acquire(options.path);
    try {
      const recentRecordBytes = options.recentRecordBytes ?? DEFAULT_RECENT_RECORD_BYTES;
      if (!Number.isInteger(recentRecordBytes) || recentRecordBytes < 0) throw new RangeError(`recentRecordBytes must be a whole number ≥ 0, got ${recentRecordBytes}`);
      return LmdbDataStore.openWith(options.path, options.durability ?? "sync", lock, recentRecordBytes);
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  /**
   * Opens the store in `path` for reading alongside the process that holds it open (a worker
   * thread of that process): no lock is taken and nothing may be committed through it. Reads see
   * each commit from the event-loop turn after it, or after {@link resetReadTxn}.
   */
  static openReader(path: string, durability: LmdbDurability): LmdbDataStore {
    return LmdbDataStore.openWith(path, durability, undefined, 0);
  }

  private static openWith(path: string, durability: LmdbDurability, lock: DirectoryLock | undefined, recentRecordBytes: number): LmdbDataStore {
    let root: RootDatabase | undefined;
    try {
      root = open({
        path,
        noSync: durability === "relaxed",
        // Effects are released only after `commit` resolves, so we want the promise to mean
        // "durable"; we also await `flushed` below to make that explicit.
        overlappingSync: false,
        maxDbs: 8,
      });
      const objects = root.openDB<Buffer, Buffer>({ name: "objects", keyEncoding: "binary", encoding: "binary", useVersions: true });
      const bindings = root.openDB<Buffer, Buffer>({ name: "bindings", keyEncoding: "binary", encoding: "binary", useVersions: true });
      const metaDb = root.openDB<string, string>({ name: "meta", encoding: "string" });
      const store = new LmdbDataStore(root, objects, bindings, metaDb, durability, lock, recentRecordBytes);
      store.readMeta(); // checks the format version now rather than at the first commit
      return store;
    } catch (error) {
      void root?.close();
      throw error;
    }
  }

  /** The directory this store lives in. */
  get path(): string {
    return (this.root as unknown as { path: string }).path;
  }

  /** The durability this store commits with. */
  get durabilityMode(): LmdbDurability {
    return this.durability;
  }

  /** Makes the next reads on this thread see every commit made so far (by any thread). */
  resetReadTxn(): void {
    this.root.resetReadTxn();
  }

  readMeta(): StoreMeta | undefined {
    const text = this.metaDb.get(META_KEY);
    if (text === undefined) return undefined;
    let stored: StoredMeta;
    try {
      stored = JSON.parse(text) as StoredMeta;
    } catch (cause) {
      throw new DataFormatError("the store's metadata record is not valid JSON", { cause });
    }
    if (stored.format !== STORE_FORMAT_VERSION) {
      throw new DataFormatError(
        `the data directory has format version ${String(stored.format)}; this version of Shardless reads version ${STORE_FORMAT_VERSION}`,
      );
    }
    return { nextObjectId: BigInt(stored.nextObjectId), lastCommitSeq: stored.lastCommitSeq, appTimeMs: stored.appTimeMs };
  }

  getObject(id: bigint): ObjectRecord | undefined {
    const recent = this.recentObjects?.get(id);
    if (recent !== undefined) return recent;
    const entry = this.objects.getEntry(idKey(id));
    if (entry === undefined) return undefined;
    const record = { bytes: entry.value, version: entry.version ?? 0 };
    this.recentObjects?.set(id, record);
    return record;
  }

  getBinding(name: string): BindingRecord | undefined {
    const recent = this.recentBindings?.get(name);
    if (recent !== undefined) return recent;
    const entry = this.bindings.getEntry(Buffer.from(name, "utf8"));
    if (entry === undefined) return undefined;
    const record = { id: entry.value.readBigUInt64BE(0), version: entry.version ?? 0 };
    this.recentBindings?.set(name, record);
    return record;
  }

  nextBindingName(after: string | undefined, prefix: string): string | undefined {
    const prefixKey = Buffer.from(prefix, "utf8");
    const afterKey = after === undefined ? undefined : Buffer.from(after, "utf8");
    const start = afterKey === undefined || Buffer.compare(afterKey, prefixKey) < 0 ? prefixKey : afterKey;
    for (const key of this.bindings.getKeys({ start })) {
      if (afterKey !== undefined && key.equals(afterKey)) continue;
      if (key.length < prefixKey.length || !key.subarray(0, prefixKey.length).equals(prefixKey)) return undefined;
      return key.toString("utf8");
    }
    return undefined;
  }

  async commit(batch: CommitBatch): Promise<void> {
    if (this.lock === undefined) throw new Error("a reader of the store cannot commit");
    const meta: StoredMeta = {
      format: STORE_FORMAT_VERSION,
      nextObjectId: batch.meta.nextObjectId.toString(),
      lastCommitSeq: batch.meta.lastCommitSeq,
      appTimeMs: batch.meta.appTimeMs,
    };
    try {
      await this.write(batch, meta);
    } catch (error) {
      // The batch may or may not be in LMDB: what is kept of its records is no longer known to be exact.
      this.forget(batch);
      throw error;
    }
    this.remember(batch);
  }

  private async write(batch: CommitBatch, meta: StoredMeta): Promise<void> {
    await this.root.transaction(() => {
      for (const write of batch.objects) {
        const key = idKey(write.id);
        if (write.bytes === null) void this.objects.remove(key);
        else void this.objects.put(key, Buffer.from(write.bytes.buffer, write.bytes.byteOffset, write.bytes.byteLength), write.version);
      }
      for (const write of batch.bindings) {
        const key = bindingKey(write.name);
        if (write.id === null) void this.bindings.remove(key);
        else void this.bindings.put(key, idKey(write.id), write.version);
      }
      void this.metaDb.put(META_KEY, JSON.stringify(meta));
    });
    if (this.durability === "sync") await this.root.flushed;
    // Reads on this thread must see the batch from now on, whatever lmdb's own renewal policy.
    this.root.resetReadTxn();
  }

  /** Drops the batch's records from the recent ones. */
  private forget(batch: CommitBatch): void {
    for (const write of batch.objects) this.recentObjects?.delete(write.id);
    for (const write of batch.bindings) this.recentBindings?.delete(write.name);
  }

  /**
   * Puts the batch's writes in the recent records, after the read transaction was reset: an entry
   * dropped later is read again from LMDB, which then has the batch. Until now the committer's
   * overlay answered every read of these records, so none of them was read (and kept) stale.
   */
  private remember(batch: CommitBatch): void {
    if (this.recentObjects === undefined || this.recentBindings === undefined) return;
    for (const write of batch.objects) {
      if (write.bytes === null) this.recentObjects.delete(write.id);
      else this.recentObjects.set(write.id, { bytes: write.bytes, version: write.version });
    }
    for (const write of batch.bindings) {
      if (write.id === null) this.recentBindings.delete(write.name);
      else this.recentBindings.set(write.name, { id: write.id, version: write.version });
    }
  }

  /** Pages in use up to the last one written: the file's live size (freed pages are reused, not returned). */
  sizeBytes(): number {
    const stats = this.root.getStats() as { lastPageNumber: number; pageSize: number };
    return (stats.lastPageNumber + 1) * stats.pageSize;
  }

  async close(): Promise<void> {
    try {
      await this.root.close();
    } finally {
      this.lock?.release();
    }
  }
}

function idKey(id: bigint): Buffer {
  const key = Buffer.allocUnsafe(8);
  key.writeBigUInt64BE(id, 0);
  return key;
}

function bindingKey(name: string): Buffer {
  const key = Buffer.from(name, "utf8");
  if (key.length > MAX_BINDING_KEY_BYTES) throw new DataFormatError(`binding key longer than ${MAX_BINDING_KEY_BYTES} bytes`);
  return key;
}
