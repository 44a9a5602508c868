import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { open, type Database, type Key, type RootDatabase, type Transaction } from "lmdb";
import { STORE_FORMAT_VERSION } from "../kernel/data-store.js";
import { DirectoryLock } from "../data/directory-lock.js";

/** The file LMDB keeps a store's pages in; a directory without it holds no store. */
const DATA_FILE = "data.mdb";
const META_KEY = "meta";

/**
 * A data directory that cannot be inspected: missing, not a Shardless store, unreadable or in a
 * format this version does not read. The message is one line naming the directory and the problem.
 */
export class StoreUnreadableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnreadableError";
  }
}

/** The metadata record of a store, as the server last committed it. */
export interface InspectedMeta {
  readonly format: number;
  readonly nextObjectId: bigint;
  readonly lastCommitSeq: number;
  readonly appTimeMs: number;
}

/** One stored object: its id, encoding and version (the commit sequence that last wrote it). */
export interface StoredObjectEntry {
  readonly id: bigint;
  readonly bytes: Uint8Array;
  readonly version: number;
}

/** One stored binding: its full key (`a.` or `s.` prefix included), the object it names and its version. */
export interface StoredBindingEntry {
  readonly key: string;
  readonly id: bigint;
  readonly version: number;
}

/** Sizes and reader counts of the LMDB environment. */
export interface EnvironmentFacts {
  /** Bytes of the data file on disk. */
  readonly fileBytes: number;
  /** Bytes of the pages in use: up to the last page number written. */
  readonly usedBytes: number;
  readonly pageSize: number;
  /** Processes (or threads) with a read transaction open, this one included. */
  readonly readers: number;
}

/**
 * A read-only view of a Shardless data directory, for inspection. It takes no directory lock and
 * opens LMDB read-only, so it works beside a running server; every read goes through one read
 * transaction, so a whole inspection sees a single committed state even while the server commits.
 * The only file it may write is LMDB's own reader table (`lock.mdb`), as every LMDB reader does.
 *
 * LMDB must not open one environment twice in a process: use it in a process that is not running
 * a server on the same directory (the `shardless inspect` command is its own process).
 */
export class StoreReader {
  private constructor(
    /** The directory the store lives in. */
    readonly directory: string,
    private readonly root: RootDatabase,
    private readonly txn: Transaction,
    private readonly objectsDb: Database<Buffer, Buffer>,
    private readonly bindingsDb: Database<Buffer, Buffer>,
    /** The store's metadata, checked to be of the format this version reads. */
    readonly meta: InspectedMeta,
  ) {}

  /**
   * Opens the store in `directory` read-only.
   * @throws {StoreUnreadableError} if the directory is missing, holds no Shardless store, cannot be
   * read, or holds another format version.
   */
  static open(directory: string): StoreReader {
    checkDirectory(directory);
    let root: RootDatabase | undefined;
    try {
      root = open({ path: directory, readOnly: true, maxDbs: 8 });
    } catch (cause) {
      throw new StoreUnreadableError(`cannot open the LMDB store in ${directory}: ${(cause as Error).message}`, { cause });
    }
    let txn: Transaction | undefined;
    try {
      const objectsDb = openNamed<Buffer, Buffer>(root, directory, "objects", { keyEncoding: "binary", encoding: "binary", useVersions: true });
      const bindingsDb = openNamed<Buffer, Buffer>(root, directory, "bindings", { keyEncoding: "binary", encoding: "binary", useVersions: true });
      const metaDb = openNamed<string, string>(root, directory, "meta", { encoding: "string" });
      // lmdb-js can pin its read transaction only once a read has begun one (pinning first fails
      // with "No transaction to renew"); the pinned one is then read again for a single snapshot.
      metaDb.get(META_KEY);
      txn = root.useReadTransaction();
      const meta = parseMeta(directory, metaDb.get(META_KEY, { transaction: txn }));
      return new StoreReader(directory, root, txn, objectsDb, bindingsDb, meta);
    } catch (error) {
      txn?.done();
      void root.close();
      throw error;
    }
  }

  /** The object with `id`, or undefined. */
  object(id: bigint): StoredObjectEntry | undefined {
    const entry = this.objectsDb.getEntry(idKey(id), { transaction: this.txn });
    return entry === undefined ? undefined : { id, bytes: entry.value, version: entry.version ?? 0 };
  }

  /** The binding with full key `key`, or undefined. */
  binding(key: string): StoredBindingEntry | undefined {
    const entry = this.bindingsDb.getEntry(Buffer.from(key, "utf8"), { transaction: this.txn });
    return entry === undefined ? undefined : { key, id: entry.value.readBigUInt64BE(0), version: entry.version ?? 0 };
  }

  /** Bindings whose full key starts with `prefix`, in UTF-8 byte order, after key `after` if given. */
  *bindings(prefix: string, after?: string): Generator<StoredBindingEntry> {
    const prefixKey = Buffer.from(prefix, "utf8");
    const afterKey = after === undefined ? undefined : Buffer.from(after, "utf8");
    const start = afterKey !== undefined && Buffer.compare(afterKey, prefixKey) > 0 ? afterKey : prefixKey;
    for (const entry of this.bindingsDb.getRange({ start, versions: true, transaction: this.txn })) {
      if (afterKey !== undefined && entry.key.equals(afterKey)) continue;
      if (!startsWith(entry.key, prefixKey)) return;
      yield { key: entry.key.toString("utf8"), id: entry.value.readBigUInt64BE(0), version: entry.version ?? 0 };
    }
  }

  /** Every object in id order, after id `after` if given. */
  *objects(after?: bigint): Generator<StoredObjectEntry> {
    const range = after === undefined ? {} : { start: idKey(after), exclusiveStart: true };
    for (const entry of this.objectsDb.getRange({ ...range, versions: true, transaction: this.txn })) {
      yield { id: entry.key.readBigUInt64BE(0), bytes: entry.value, version: entry.version ?? 0 };
    }
  }

  /** Number of stored objects. */
  objectCount(): number {
    return this.objectsDb.getCount({ transaction: this.txn });
  }

  /** Number of bindings whose full key starts with `prefix` (all of them for `""`). */
  bindingCount(prefix = ""): number {
    if (prefix === "") return this.bindingsDb.getCount({ transaction: this.txn });
    const prefixKey = Buffer.from(prefix, "utf8");
    let count = 0;
    for (const key of this.bindingsDb.getKeys({ start: prefixKey, transaction: this.txn })) {
      if (!startsWith(key, prefixKey)) break;
      count++;
    }
    return count;
  }

  /** Sizes of the store on disk and its reader count. */
  environment(): EnvironmentFacts {
    const stats = this.root.getStats() as { pageSize: number; lastPageNumber: number; numReaders: number };
    return {
      fileBytes: statSync(join(this.directory, DATA_FILE)).size,
      usedBytes: (stats.lastPageNumber + 1) * stats.pageSize,
      pageSize: stats.pageSize,
      readers: stats.numReaders,
    };
  }

  /** The pid of the live process holding the directory lock (a running server), or null. */
  lockHolder(): number | null {
    return DirectoryLock.holder(this.directory) ?? null;
  }

  /** Ends the read transaction and closes the environment. */
  async close(): Promise<void> {
    this.txn.done();
    await this.root.close();
  }
}

function checkDirectory(directory: string): void {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(directory).isDirectory();
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new StoreUnreadableError(code === "ENOENT" ? `${directory} does not exist` : `cannot read ${directory}: ${(cause as Error).message}`, { cause });
  }
  if (!isDirectory) throw new StoreUnreadableError(`${directory} is not a directory`);
  // Checked before opening because LMDB would report a bare "No such file or directory".
  if (!existsSync(join(directory, DATA_FILE))) throw new StoreUnreadableError(`${directory} is not a Shardless data store (it has no ${DATA_FILE})`);
}

function openNamed<V, K extends Key>(root: RootDatabase, directory: string, name: string, options: object): Database<V, K> {
  // A read-only environment cannot create a database, so lmdb answers a missing one with undefined.
  const db = root.openDB<V, K>({ name, ...options }) as Database<V, K> | undefined;
  if (db === undefined) throw new StoreUnreadableError(`${directory} is not a Shardless data store (it has no "${name}" database)`);
  return db;
}

function parseMeta(directory: string, text: string | undefined): InspectedMeta {
  if (text === undefined) throw new StoreUnreadableError(`${directory} holds no Shardless metadata (it was never committed to, or is not a Shardless store)`);
  let stored: { format?: unknown; nextObjectId?: unknown; lastCommitSeq?: unknown; appTimeMs?: unknown };
  try {
    stored = JSON.parse(text) as typeof stored;
  } catch (cause) {
    throw new StoreUnreadableError(`the metadata record in ${directory} is not valid JSON`, { cause });
  }
  if (typeof stored.format !== "number") throw new StoreUnreadableError(`the metadata record in ${directory} has no format version`);
  if (stored.format !== STORE_FORMAT_VERSION) {
    const age = stored.format > STORE_FORMAT_VERSION ? "newer than" : "older than";
    throw new StoreUnreadableError(
      `${directory} has store format version ${stored.format}, ${age} the version this Shardless reads (${STORE_FORMAT_VERSION}); inspect it with a matching Shardless`,
    );
  }
  const { nextObjectId, lastCommitSeq, appTimeMs } = stored;
  if (typeof nextObjectId !== "string" || !/^\d+$/.test(nextObjectId) || typeof lastCommitSeq !== "number" || typeof appTimeMs !== "number") {
    throw new StoreUnreadableError(`the metadata record in ${directory} is malformed`);
  }
  return { format: stored.format, nextObjectId: BigInt(nextObjectId), lastCommitSeq, appTimeMs };
}

function idKey(id: bigint): Buffer {
  const key = Buffer.allocUnsafe(8);
  key.writeBigUInt64BE(id, 0);
  return key;
}

function startsWith(key: Buffer, prefix: Buffer): boolean {
  return key.length >= prefix.length && key.subarray(0, prefix.length).equals(prefix);
}
