import { ResourceUnavailableError } from "../api/errors.js";
import type { CommitRequest, RangeRead, TransactionSource } from "../kernel/committer.js";
import type { BindingRecord, ObjectRecord } from "../kernel/data-store.js";
import { Overlay, type StoreReads } from "../kernel/overlay.js";
import type { MemoryDataStore } from "../data/memory-data-store.js";
import { UNCOMMITTED_VERSION, type ObjectCache } from "../kernel/object-cache.js";
import type { WrittenInstance } from "../kernel/transaction.js";
import type { CommitNews, CommitWrites, IdBlock } from "./wire.js";

/**
 * What a worker reads committed state from: LMDB, read directly, under an overlay of the commits
 * not yet durable (`catchUp` renews its read snapshot once they are); or a private copy of an
 * in-memory store, into which each validated commit is written at once (it has no disk to lag).
 */
export type WorkerStore = { readonly reads: StoreReads; readonly catchUp: () => void } | { readonly copy: MemoryDataStore };

/** Writes a validated commit into a worker's private copy of an in-memory store. */
function writeToCopy(copy: MemoryDataStore, writes: CommitWrites, seq: number): void {
  void copy.commit({
    objects: writes.objects.map((write) => ({ id: write.id, bytes: write.bytes, version: seq })),
    bindings: writes.bindings.map((write) => ({ name: write.name, id: write.id, version: seq })),
    meta: { nextObjectId: 0n, lastCommitSeq: seq, appTimeMs: 0 },
  });
}

/** An attempt of this worker that asked to commit, while the main thread has not said how it went. */
interface Undecided {
  readonly writes: CommitWrites;
  /** The attempt it ran after, on its writes (see {@link WorkerSource.runAfter}). */
  readonly after: number | undefined;
  /** The instances it wrote that the cache may keep if it commits. */
  readonly written: readonly WrittenInstance[] | undefined;
  /** Its writes by key, made when an attempt chained on it first reads. */
  objects?: Map<bigint, Uint8Array | null>;
  bindings?: Map<string, bigint | null>;
}

/** The chain of an attempt that runs after no other (shared: most attempts, so none allocates one). */
const NO_CHAIN: readonly Undecided[] = [];

/** Ids left in a worker's block below which it asks for the next block. */
const LOW_ON_IDS = 256;

/**
 * A worker's view of the committed state: the store (LMDB, read directly; or a copy of an in-memory
 * store) with an overlay of the commits the main thread has validated and sent, up to
 * {@link seenSeq}. A transaction starts at `seenSeq`; what it reads from the store with a later
 * version (the store can be ahead of the overlay) aborts it with a conflict, as on the main thread,
 * so it never sees a state no serial order produces. Commit requests are validated by the main
 * thread, which knows every commit.
 */
export class WorkerSource implements TransactionSource {
  private readonly overlay: Overlay;
  private seen: number;
  private blocks: { next: bigint; end: bigint }[] = [];
  private idsLeft = 0;
  /** True between asking the main thread for ids and receiving them: one block per request. */
  private askedForIds = false;
  /**
   * The writes of this worker's attempts that asked to commit and whose fate the main thread has
   * not yet told, by attempt number (ascending): a commit of one is news of its sequence only.
   */
  private readonly undecided = new Map<number, Undecided>();
  /** Attempts of this worker that ended in an error, until the main thread has decided them. */
  private readonly failedHere = new Set<number>();
  /**
   * While an attempt chained on others runs: the undecided attempts whose writes it reads as if
   * committed, latest first.
   */
  private chain: readonly Undecided[] = NO_CHAIN;

  /**
   * @param objects the worker's decoded-object cache, which keeps the instances its own attempts
   *   wrote once the main thread reports them committed (see {@link Transaction.takeWrittenInstances}).
   */
  constructor(
    private readonly store: WorkerStore,
    lastSeq: number,
    ids: IdBlock,
    private readonly objects?: ObjectCache,
  ) {
    this.overlay = new Overlay("copy" in store ? store.copy : store.reads);
    this.seen = lastSeq;
    this.addIds(ids);
  }

  /** The last validated commit this worker knows of. */
  get seenSeq(): number {
    return this.seen;
  }

  /**
   * True when the worker should ask for more ids: it is low on them and has not asked yet (asking
   * again while a block is on its way would have the main thread hand out blocks nobody uses).
   */
  askForIds(): boolean {
    if (this.askedForIds || this.idsLeft >= LOW_ON_IDS) return false;
    this.askedForIds = true;
    return true;
  }

  /** Adds a block of ids to hand out. */
  addIds(block: IdBlock): void {
    this.blocks.push({ next: block.first, end: block.first + BigInt(block.count) });
    this.idsLeft += block.count;
    this.askedForIds = false;
  }

  /** Keeps the writes of attempt `attempt` (run after `after`), which asks the main thread to commit them. */
  askedToCommit(attempt: number, request: CommitRequest, after: number | undefined, written?: readonly WrittenInstance[]): void {
    this.undecided.set(attempt, { writes: { objects: request.objectWrites, bindings: request.bindingWrites }, after, written });
  }

  /** Attempt `attempt` ended in an error here: an attempt to run after it is void. */
  failed(attempt: number): void {
    this.failedHere.add(attempt);
  }

  /**
   * Makes what the next transaction reads include the writes of attempt `after` and of the
   * undecided attempts it ran after in turn (those decided and committed are in the view already).
   * Until {@link endChain}. Returns false if `after` ended in an error: the attempt is void.
   */
  runAfter(after: number | undefined): boolean {
    this.chain = NO_CHAIN;
    if (after === undefined) return true;
    if (this.failedHere.has(after)) return false;
    const chain: Undecided[] = [];
    for (let link = this.undecided.get(after); link !== undefined; link = link.after === undefined ? undefined : this.undecided.get(link.after)) chain.push(link);
    this.chain = chain;
    return true;
  }

  /** Ends what {@link runAfter} began. */
  endChain(): void {
    this.chain = NO_CHAIN;
  }

  /**
   * Lays validated commits over the store, in commit order, then forgets the writes of this
   * worker's attempts up to `decidedUpTo` (those that committed are among `commits` or came before).
   */
  apply(commits: readonly CommitNews[], lastSeq: number, decidedUpTo: number): void {
    for (const commit of commits) {
      const own = "writes" in commit ? undefined : this.undecided.get(commit.ownAttempt);
      const writes = "writes" in commit ? commit.writes : own?.writes;
      if (writes === undefined) throw new Error(`the main thread reports a commit of attempt ${(commit as { ownAttempt: number }).ownAttempt}, whose writes this worker does not have`);
      if ("copy" in this.store) {
        writeToCopy(this.store.copy, writes, commit.seq);
      } else {
        for (const write of writes.objects) this.overlay.objects.set(write.id, { bytes: write.bytes, version: commit.seq });
        for (const write of writes.bindings) this.overlay.bindings.set(write.name, { id: write.id, version: commit.seq });
      }
      // Its instances are what decoding its writes gives: the view now holds them at this version.
      if (own?.written !== undefined && this.objects !== undefined) {
        for (const each of own.written) this.objects.put(each.id, commit.seq, each.object, each.bytes);
      }
    }
    for (const attempt of this.undecided.keys()) {
      if (attempt > decidedUpTo) break;
      this.undecided.delete(attempt);
    }
    for (const attempt of this.failedHere) if (attempt <= decidedUpTo) this.failedHere.delete(attempt);
    if (lastSeq > this.seen) this.seen = lastSeq;
  }

  /**
   * Every commit up to `seq` is in the store now: the store is brought up to date first, then the
   * overlay lets go of what the store holds (never the other way round, or a read in between would
   * find neither the overlay's entry nor the store's new version).
   */
  durable(seq: number): void {
    // A copy holds every validated commit already; only a store read from disk lags behind.
    if ("copy" in this.store) return;
    const objects = [...this.overlay.objects].filter(([, entry]) => entry.version <= seq);
    const bindings = [...this.overlay.bindings].filter(([, entry]) => entry.version <= seq);
    this.store.catchUp();
    for (const [id, entry] of objects) this.overlay.forgetObject(id, entry.version);
    for (const [name, entry] of bindings) this.overlay.forgetBinding(name, entry.version);
  }

  begin(): number {
    return this.seen;
  }

  end(): void {
    // The main thread holds back pruning for the worker's transactions (see WorkerPool).
  }

  allocateId(): bigint {
    const block = this.blocks[0];
    if (block === undefined) throw new ResourceUnavailableError("this worker has run out of object ids; more are on their way");
    const id = block.next++;
    this.idsLeft--;
    if (block.next === block.end) this.blocks.shift();
    return id;
  }

  readObject(id: bigint): ObjectRecord | undefined {
    for (const link of this.chain) {
      const written = (link.objects ??= new Map(link.writes.objects.map((write) => [write.id, write.bytes])));
      if (!written.has(id)) continue;
      const bytes = written.get(id)!;
      return bytes === null ? undefined : { bytes, version: UNCOMMITTED_VERSION };
    }
    return this.overlay.readObject(id);
  }

  readBinding(name: string): BindingRecord | undefined {
    for (const link of this.chain) {
      const written = (link.bindings ??= new Map(link.writes.bindings.map((write) => [write.name, write.id])));
      if (!written.has(name)) continue;
      const id = written.get(name)!;
      return id === null ? undefined : { id, version: UNCOMMITTED_VERSION };
    }
    return this.overlay.readBinding(name);
  }

  /** Scans the view without the chain's writes: a chain that wrote in the range fails validation. */
  nextBindingName(after: string | undefined, prefix: string): string | undefined {
    return this.overlay.nextBindingName(after, prefix);
  }

  // What changed after a transaction's start is known only to the main thread, which checks every
  // read again when it validates the commit. Present objects and bindings are checked here too, by
  // their versions.

  objectChangedSince(): boolean {
    return false;
  }

  bindingChangedSince(): boolean {
    return false;
  }

  rangeChangedSince(_range: RangeRead): boolean {
    return false;
  }

  commit(_request: CommitRequest): Promise<void> {
    throw new Error("a worker hands its commit requests to the main thread");
  }
}
