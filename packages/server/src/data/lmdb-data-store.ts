import { mkdirSync } from "node:fs";
import { open, type Database, type RootDatabase } from "lmdb";
import { DataFormatError } from "../api/errors.js";
import { DirectoryLock } from "./directory-lock.js";
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
}

const META_KEY = "meta";
const READ_KEY = Buffer.alloc(8);
const READ_KEY_VIEW = new DataView(READ_KEY.buffer, READ_KEY.byteOffset, 8);
/** Bindings, and object versions, the writing store keeps in memory (about 100 bytes each). */
const REMEMBERED_ENTRIES = 131_072;

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
  /**
   * Bindings read or written through this store (`null`: known absent). Only the process holding
   * the lock writes, so its copy cannot go stale; readers on other threads keep none. A binding read
   * from LMDB costs about a microsecond (the name's bytes and a B-tree lookup): a transfer reads
   * two, and they rarely change.
   */
  private readonly bindingCache = new Map<string, BindingRecord | null>();
  /**
   * The versions of objects read or written through this store (`null`: known absent), kept by the
   * writing store for the same reason: with them, a task takes an object the decoded-object cache
   * holds at its current version without an LMDB read (a session's record and its listener, read
   * by every message).
   */
  private readonly objectVersions = new Map<bigint, number | null>();

  private constructor(
    private readonly root: RootDatabase,
    private readonly objects: Database<Buffer, Buffer>,
    private readonly bindings: Database<Buffer, Buffer>,
    private readonly metaDb: Database<string, string>,
    private readonly durability: LmdbDurability,
    /** The directory lock; none for a reader (see {@link openReader}). */
    private readonly lock: DirectoryLock | undefined,
  ) {}

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
      return LmdbDataStore.openWith(options.path, options.durability ?? "sync", lock);
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
    return LmdbDataStore.openWith(path, durability, undefined);
  }

  private static openWith(path: string, durability: LmdbDurability, lock: DirectoryLock | undefined): LmdbDataStore {
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
      const store = new LmdbDataStore(root, objects, bindings, metaDb, durability, lock);
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
    READ_KEY_VIEW.setBigUint64(0, id); // lmdb copies a key before it returns: one buffer serves every read
    const entry = this.objects.getEntry(READ_KEY);
    const record = entry === undefined ? undefined : { bytes: entry.value, version: entry.version ?? 0 };
    if (this.lock !== undefined) remember(this.objectVersions, id, record?.version ?? null);
    return record;
  }

  getObjectVersion(id: bigint): number | undefined {
    if (this.lock !== undefined) {
      const known = this.objectVersions.get(id);
      if (known !== undefined) return known ?? undefined;
    }
    return this.getObject(id)?.version;
  }

  getBinding(name: string): BindingRecord | undefined {
    if (this.lock === undefined) return this.readBinding(name);
    const cached = this.bindingCache.get(name);
    if (cached !== undefined) return cached ?? undefined;
    const record = this.readBinding(name);
    remember(this.bindingCache, name, record ?? null);
    return record;
  }

  private readBinding(name: string): BindingRecord | undefined {
    const entry = this.bindings.getEntry(Buffer.from(name, "utf8"));
    if (entry === undefined) return undefined;
    return { id: entry.value.readBigUInt64BE(0), version: entry.version ?? 0 };
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
    await this.writeBatch(batch);
    if (this.durability === "sync") await this.root.flushed;
    // Reads on this thread must see the batch from now on, whatever lmdb's own renewal policy.
    this.root.resetReadTxn();
    // After the commit: a read in between cached what LMDB held then, which this replaces.
    for (const write of batch.bindings) remember(this.bindingCache, write.name, write.id === null ? null : { id: write.id, version: write.version });
    for (const write of batch.objects) remember(this.objectVersions, write.id, write.bytes === null ? null : write.version);
  }

  /**
   * Queues a batch's writes and metadata for lmdb's writer thread, which does the B-tree work off
   * this thread (inside a `transaction` callback it ran here: 12% of the main thread in a profile
   * of networked transfers, against 4% queued). Writes queued in one event-loop turn commit in one
   * LMDB transaction (lmdb's `eventTurnBatching`, on by default), so a batch lands whole or not at
   * all.
   * @returns the promise of its last write, which resolves once their transaction has committed.
   */
  private writeBatch(batch: CommitBatch): Promise<boolean> {
    const meta: StoredMeta = {
      format: STORE_FORMAT_VERSION,
      nextObjectId: batch.meta.nextObjectId.toString(),
      lastCommitSeq: batch.meta.lastCommitSeq,
      appTimeMs: batch.meta.appTimeMs,
    };
    for (const write of batch.objects) {
      const key = idKey(write.id);
      // lmdb keeps a pointer to the value until its writer thread has written it: the bytes must
      // not change after commit (the DataStore contract says so).
      if (write.bytes === null) void this.objects.remove(key);
      else void this.objects.put(key, Buffer.from(write.bytes.buffer, write.bytes.byteOffset, write.bytes.byteLength), write.version);
    }
    for (const write of batch.bindings) {
      const key = bindingKey(write.name);
      if (write.id === null) void this.bindings.remove(key);
      else void this.bindings.put(key, idKey(write.id), write.version);
    }
    return this.metaDb.put(META_KEY, JSON.stringify(meta));
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

/** Sets `key` in one of the writing store's memories; emptied when full (O(1) per entry, bounded). */
function remember<K, V>(memory: Map<K, V>, key: K, value: V): void {
  if (memory.size >= REMEMBERED_ENTRIES) memory.clear();
  memory.set(key, value);
}
