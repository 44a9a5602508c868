import { ResourceUnavailableError, TransactionConflictError } from "../api/errors.js";
import { compareUtf8, type BindingRecord, type BindingWrite, type DataStore, type ObjectRecord, type ObjectWrite } from "./data-store.js";
import { assert } from "./assert.js";
import type { Effect, EffectData } from "./effects.js";
import { Overlay } from "./overlay.js";
import type { BatchStats } from "./observer.js";

/** A range of binding keys a transaction scanned: every key in (after, found] was seen. */
export interface RangeRead {
  readonly prefix: string;
  readonly after: string | undefined;
  /** The key the scan returned; undefined means the scan reached the end of the prefix. */
  readonly found: string | undefined;
}

/** What a finished transaction asks the committer to make permanent. */
export interface CommitRequest {
  /** The commit sequence number the transaction's reads were taken at. */
  readonly startSeq: number;
  readonly objectReads: Iterable<bigint>;
  readonly bindingReads: Iterable<string>;
  readonly rangeReads: readonly RangeRead[];
  readonly objectWrites: readonly { id: bigint; bytes: Uint8Array | null }[];
  readonly bindingWrites: readonly { name: string; id: bigint | null }[];
  /** Released, in order, once the commit is durable. */
  readonly effects: readonly Effect[];
}

/**
 * For a task that ran on the writes of the tasks before it in its chain, before they were
 * validated: the sequence at which the latest of them that wrote a key committed it. A read of that
 * key validates if nothing committed it since, though that sequence is later than the task's start.
 */
export interface ChainVersions {
  objectSeq(id: bigint): number | undefined;
  bindingSeq(name: string): number | undefined;
}

/**
 * What a transaction reads through and commits to: the main thread's {@link Committer}, or a
 * worker's copy of its state (which hands commit requests to the main thread instead).
 */
export interface TransactionSource {
  /** Registers a transaction starting now; returns its start sequence. Pair with `end`. */
  begin(): number;
  /** Unregisters a transaction begun at `startSeq`, committed or not. */
  end(startSeq: number): void;
  /** A fresh object id, never handed out before. */
  allocateId(): bigint;
  readObject(id: bigint): ObjectRecord | undefined;
  /**
   * The version of object `id` as {@link readObject} would give it, or undefined if absent; for a
   * source that can say it without reading the bytes (see {@link DataStore.getObjectVersion}).
   */
  readObjectVersion?(id: bigint): number | undefined;
  readBinding(name: string): BindingRecord | undefined;
  nextBindingName(after: string | undefined, prefix: string): string | undefined;
  /** True when object `id` is known to have been committed after `startSeq`. */
  objectChangedSince(id: bigint, startSeq: number): boolean;
  /** True when binding `name` is known to have been written after `startSeq`. */
  bindingChangedSince(name: string, startSeq: number): boolean;
  /** True when a binding in `range` is known to have been written after `startSeq`. */
  rangeChangedSince(range: RangeRead, startSeq: number): boolean;
  /** Validates and orders `request`; resolves once it is durable. */
  commit(request: CommitRequest): Promise<void>;
}

interface Batch {
  objects: ObjectWrite[];
  bindings: BindingWrite[];
  /** Each committed transaction's effects, in commit order (kept as they came: no copying). */
  effects: (readonly Effect[])[];
  waiters: { resolve: () => void; reject: (error: unknown) => void }[];
  /** When the batch left for the store (performance.now()). */
  flushedAt: number;
  /** The last commit sequence the batch's store commit includes (0 for one that writes nothing). */
  lastSeq: number;
}

/**
 * Where the kernel and the committer schedule their deferred work. Production uses Node's
 * `setImmediate` and `performance.now()`; a deterministic simulation supplies its own, so that it
 * decides when each callback runs and how long a turn of the event loop appears to take.
 */
export interface Scheduler {
  /** Calls `callback` once, after the current turn of the event loop (as `setImmediate` does). */
  immediate(callback: () => void): void;
  /** Milliseconds on a monotonic scale, to bound how long one turn runs tasks (as `performance.now()`). */
  now(): number;
}

/** Node's event loop: `setImmediate` and `performance.now()`. */
export const NODE_SCHEDULER: Scheduler = Object.freeze({
  immediate: (callback: () => void): void => void setImmediate(callback),
  now: (): number => performance.now(),
});

/** Options of {@link Committer}. */
export interface CommitterOptions {
  /** Application time to store with each batch. */
  readonly appTimeMs: () => number;
  /** Called once if the store fails a write: the server cannot go on safely. */
  readonly onStoreFailure: (error: unknown) => void;
  /** Called when an effect throws; other effects still run. */
  readonly onEffectError: (error: unknown) => void;
  /** Releases effect data (closures are called as they are). */
  readonly applyEffect?: (effect: EffectData) => void;
  /** Told of each validated commit, in commit order, with its sequence number (workers mirror them). */
  readonly onValidated?: (seq: number, request: CommitRequest) => void;
  /** Told when every commit up to `seq` is durable and readable from the store. */
  readonly onDurable?: (seq: number) => void;
  /** Partition number placed in the top 16 bits of new object ids. */
  readonly partition?: number;
  /** Told of each batch once it is durable (for metrics). */
  readonly onBatchDurable?: (stats: BatchStats) => void;
  /** Defers the flush to the end of the turn; {@link NODE_SCHEDULER} by default. */
  readonly scheduler?: Scheduler;
}

const PARTITION_SHIFT = 48n;
/** Recent-write records kept before the first prune. */
const MIN_PRUNE_AT = 4096;
const MAX_COUNTER = (1n << PARTITION_SHIFT) - 1n;

/**
 * Validates commits, orders them, and writes them to the store in groups.
 *
 * Concurrency control is optimistic, in the manner of TL2: every committed transaction gets the next
 * commit sequence number, which becomes the version of everything it wrote. A transaction that
 * started at sequence S may commit only if nothing it read was written after S. Reads in flight
 * are checked the same way, so a transaction never sees a state that no serial order produces.
 *
 * A validated commit enters the overlay (visible to later transactions at once) and the open batch.
 * One store commit is in flight at a time; whatever validates meanwhile joins the next batch, so
 * the batch size adapts to the store's latency (group commit). When a batch is durable its writes
 * leave the overlay and its effects run, batch after batch, so effects come out in commit order.
 */
export class Committer implements TransactionSource {
  private lastSeq: number;
  private nextCounter: bigint;
  /** The id counter as of the last batch written to the store. */
  private storedCounter: bigint;
  private readonly partitionBits: bigint;
  private readonly overlay: Overlay;
  /** Latest commit sequence that wrote each key, kept while some active transaction may need it. */
  private readonly recentObjectWrites = new Map<bigint, number>();
  private readonly recentBindingWrites = new Map<string, number>();
  private readonly activeStarts = new Map<number, number>();
  private activeCount = 0;
  /** Records of recent writes at which the next prune happens. */
  private pruneAt = MIN_PRUNE_AT;
  private open: Batch = emptyBatch();
  private inFlight: Promise<void> | undefined;
  /** True while the batch in flight is an application-time checkpoint: no task, effect or data. */
  private inFlightIsCheckpoint = false;
  private flushScheduled = false;
  private failure: unknown;
  private idleWaiters: (() => void)[] = [];
  private readonly scheduler: Scheduler;

  constructor(
    private readonly store: DataStore,
    private readonly options: CommitterOptions,
  ) {
    this.scheduler = options.scheduler ?? NODE_SCHEDULER;
    this.overlay = new Overlay(store);
    const meta = store.readMeta();
    this.lastSeq = meta?.lastCommitSeq ?? 0;
    const partition = BigInt(options.partition ?? 0);
    assert(partition >= 0n && partition < 1n << 16n, "partition must fit in 16 bits");
    this.partitionBits = partition << PARTITION_SHIFT;
    this.nextCounter = meta === undefined ? 1n : meta.nextObjectId & MAX_COUNTER;
    this.storedCounter = this.nextCounter;
  }

  /** Registers a transaction starting now; returns its start sequence. Pair with {@link end}. */
  begin(): number {
    const seq = this.lastSeq;
    this.activeStarts.set(seq, (this.activeStarts.get(seq) ?? 0) + 1);
    this.activeCount++;
    return seq;
  }

  /** Unregisters a transaction begun at `startSeq`, committed or not. */
  end(startSeq: number): void {
    const count = this.activeStarts.get(startSeq);
    assert(count !== undefined, "end() without begin()");
    if (count === 1) this.activeStarts.delete(startSeq);
    else this.activeStarts.set(startSeq, count - 1);
    this.activeCount--;
    this.pruneRecentWrites();
  }

  /** A fresh object id: never handed out before, in this process or any earlier one on this store. */
  allocateId(): bigint {
    if (this.nextCounter > MAX_COUNTER) throw new ResourceUnavailableError("object ids of this partition are exhausted");
    return this.partitionBits | this.nextCounter++;
  }

  /** The committed state of object `id` (durable or validated), or undefined if absent. */
  readObject(id: bigint): ObjectRecord | undefined {
    return this.overlay.readObject(id);
  }

  /** The version of object `id`'s committed state, or undefined if absent. */
  readObjectVersion(id: bigint): number | undefined {
    return this.overlay.readObjectVersion(id);
  }

  /** The committed binding of key `name`, or undefined. */
  readBinding(name: string): BindingRecord | undefined {
    return this.overlay.readBinding(name);
  }

  /** The committed binding key after `after` with `prefix`, in UTF-8 byte order. */
  nextBindingName(after: string | undefined, prefix: string): string | undefined {
    return this.overlay.nextBindingName(after, prefix);
  }

  /** Validated commits not yet in the store: what a reader of the store alone would miss. */
  pendingWrites(): { objects: [bigint, { bytes: Uint8Array | null; version: number }][]; bindings: [string, { id: bigint | null; version: number }][] } {
    return { objects: [...this.overlay.objects], bindings: [...this.overlay.bindings] };
  }

  /** The sequence number of the last validated commit. */
  get lastCommitSeq(): number {
    return this.lastSeq;
  }

  /**
   * Hands out `count` ids at once, for a worker to assign to new objects itself: the block is
   * counted as used (and stored with the next batch) whether or not all of it is.
   */
  allocateIdBlock(count: number): { first: bigint; count: number } {
    if (this.nextCounter + BigInt(count) - 1n > MAX_COUNTER) throw new ResourceUnavailableError("object ids of this partition are exhausted");
    const first = this.partitionBits | this.nextCounter;
    this.nextCounter += BigInt(count);
    return { first, count };
  }

  /** True when object `id` has been committed at a sequence after `startSeq`. */
  objectChangedSince(id: bigint, startSeq: number): boolean {
    return (this.recentObjectWrites.get(id) ?? 0) > startSeq;
  }

  /** True when binding `name` has been written (set or removed) after `startSeq`. */
  bindingChangedSince(name: string, startSeq: number): boolean {
    return (this.recentBindingWrites.get(name) ?? 0) > startSeq;
  }

  /** True when any binding in `range` has been written after `startSeq`. */
  rangeChangedSince(range: RangeRead, startSeq: number): boolean {
    for (const [name, seq] of this.recentBindingWrites) {
      if (seq > startSeq && inRange(name, range)) return true;
    }
    return false;
  }

  /**
   * Validates `request` and, if it holds, orders it and queues it for the store.
   * @param chain for a task that read the writes of the tasks before it in its chain (see
   *   {@link ChainVersions}), which must have committed already.
   * @returns a promise that resolves once the commit is durable (after its effects ran).
   * @throws {TransactionConflictError} if something it read has changed since it started.
   * @throws {ResourceUnavailableError} if the store has failed.
   */
  commit(request: CommitRequest, chain?: ChainVersions): Promise<void> {
    if (this.failure !== undefined) throw new ResourceUnavailableError("the data store has failed; no more commits", { cause: this.failure });
    this.validate(request, chain);
    // Nothing below may throw: once the sequence number is taken, the commit must land whole.
    const seq = ++this.lastSeq;
    for (const write of request.objectWrites) {
      this.open.objects.push({ id: write.id, bytes: write.bytes, version: seq });
      this.overlay.objects.set(write.id, { bytes: write.bytes, version: seq });
      this.recentObjectWrites.set(write.id, seq);
    }
    for (const write of request.bindingWrites) {
      this.open.bindings.push({ name: write.name, id: write.id, version: seq });
      this.overlay.bindings.set(write.name, { id: write.id, version: seq });
      this.recentBindingWrites.set(write.name, seq);
    }
    this.options.onValidated?.(seq, request);
    this.open.effects.push(request.effects);
    const durable = new Promise<void>((resolve, reject) => this.open.waiters.push({ resolve, reject }));
    this.scheduleFlush();
    return durable;
  }

  /** Writes a batch even if no transaction committed, so that application time is saved. */
  checkpoint(): void {
    if (this.failure !== undefined || this.inFlight !== undefined || this.flushScheduled) return;
    this.flush(true);
  }

  /** True when nothing waits to be written. */
  get idle(): boolean {
    return this.inFlight === undefined && !this.flushScheduled && this.open.waiters.length === 0;
  }

  /** Resolves when everything committed so far is durable and its effects have run. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private validate(request: CommitRequest, chain: ChainVersions | undefined): void {
    const since = request.startSeq;
    for (const id of request.objectReads) {
      const written = this.recentObjectWrites.get(id) ?? 0;
      if (written > since && (chain === undefined || chain.objectSeq(id) !== written)) {
        throw new TransactionConflictError(`object ${id} was changed by another task`, { on: { kind: "object", id } });
      }
    }
    for (const name of request.bindingReads) {
      const written = this.recentBindingWrites.get(name) ?? 0;
      if (written > since && (chain === undefined || chain.bindingSeq(name) !== written)) {
        throw new TransactionConflictError(`binding ${JSON.stringify(name)} was changed by another task`, { on: { kind: "binding", name } });
      }
    }
    // A range is not checked against the chain: a scan on a worker does not see the bindings the
    // tasks before it wrote, so one of them in the range is a conflict (the task runs again).
    for (const range of request.rangeReads) {
      if (this.rangeChangedSince(range, since)) throw new TransactionConflictError("a binding was added or removed in a range another task scanned", { on: { kind: "range", prefix: range.prefix } });
    }
  }

  private pruneRecentWrites(): void {
    // With no transaction active, no future validation can look at writes already committed.
    if (this.activeCount === 0) {
      this.recentObjectWrites.clear();
      this.recentBindingWrites.clear();
      this.pruneAt = MIN_PRUNE_AT;
      return;
    }
    const size = this.recentObjectWrites.size + this.recentBindingWrites.size;
    if (size < this.pruneAt) return;
    let oldest = Infinity;
    for (const start of this.activeStarts.keys()) if (start < oldest) oldest = start;
    for (const [id, seq] of this.recentObjectWrites) if (seq <= oldest) this.recentObjectWrites.delete(id);
    for (const [name, seq] of this.recentBindingWrites) if (seq <= oldest) this.recentBindingWrites.delete(name);
    // Transactions may stay active for a long time (on workers, some always are): scan again only
    // once the records have doubled, so that pruning costs O(1) per commit however many remain.
    this.pruneAt = Math.max(MIN_PRUNE_AT, 2 * (this.recentObjectWrites.size + this.recentBindingWrites.size));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || (this.inFlight !== undefined && !this.inFlightIsCheckpoint)) return;
    this.flushScheduled = true;
    // Wait for the end of this event-loop turn so that every task run in it joins the batch.
    this.scheduler.immediate(() => {
      this.flushScheduled = false;
      if (this.inFlight === undefined) this.flush();
      else if (this.inFlightIsCheckpoint && this.openChangesNothing()) {
        // Nothing committed after a checkpoint depends on it (it holds no task's changes), so a
        // batch that writes nothing need not wait for its fsync.
        const batch = this.open;
        this.open = emptyBatch();
        void Promise.resolve().then(() => this.release(batch));
      }
      // Otherwise the batch in flight, when durable, flushes the open one.
    });
  }

  /** True when the open batch changes nothing stored and hands out no new id. */
  private openChangesNothing(): boolean {
    return this.open.objects.length === 0 && this.open.bindings.length === 0 && this.nextCounter === this.storedCounter;
  }

  private flush(force = false): void {
    const batch = this.open;
    batch.flushedAt = performance.now();
    this.open = emptyBatch();
    // A batch that changes nothing stored (its tasks only read, send or log) has nothing to make
    // durable: its effects are released in turn without a store commit (and its fsync). Ids
    // handed out since the last stored batch force a write, so that no id is ever handed out twice.
    if (!force && batch.objects.length === 0 && batch.bindings.length === 0 && this.nextCounter === this.storedCounter) {
      this.inFlightIsCheckpoint = false;
      this.inFlight = Promise.resolve().then(() => this.onBatchDurable(batch));
      return;
    }
    this.inFlightIsCheckpoint = force;
    this.storedCounter = this.nextCounter;
    const meta = { nextObjectId: this.partitionBits | this.nextCounter, lastCommitSeq: this.lastSeq, appTimeMs: this.options.appTimeMs() };
    batch.lastSeq = this.lastSeq;
    this.inFlight = this.store.commit({ objects: batch.objects, bindings: batch.bindings, meta }).then(
      () => this.onBatchDurable(batch),
      (error: unknown) => this.onBatchFailed(batch, error),
    );
  }

  private onBatchDurable(batch: Batch): void {
    this.inFlight = undefined;
    this.inFlightIsCheckpoint = false;
    this.options.onBatchDurable?.({ tasks: batch.waiters.length, writes: batch.objects.length + batch.bindings.length, durableMs: performance.now() - batch.flushedAt });
    this.release(batch);
    if (this.open.waiters.length > 0) this.flush();
    else this.notifyIdle();
  }

  /** A durable batch: its writes leave the overlay, its effects run, its waiters resume. */
  private release(batch: Batch): void {
    for (const write of batch.objects) this.overlay.forgetObject(write.id, write.version);
    for (const write of batch.bindings) this.overlay.forgetBinding(write.name, write.version);
    if (batch.lastSeq > 0) this.options.onDurable?.(batch.lastSeq);
    const apply = this.options.applyEffect;
    for (const effects of batch.effects) {
      for (const effect of effects) {
        try {
          if (typeof effect === "function") effect();
          else if (apply !== undefined) apply(effect);
          else throw new Error(`no handler for effects to ${effect.to}`);
        } catch (error) {
          this.options.onEffectError(error);
        }
      }
    }
    for (const waiter of batch.waiters) waiter.resolve();
  }

  private onBatchFailed(batch: Batch, error: unknown): void {
    // Later transactions may have read this batch's writes through the overlay, so nothing validated
    // after it can be trusted either: fail everything and stop. Restarting recovers the last durable
    // state; no effect of the lost batches was released.
    this.inFlight = undefined;
    this.failure = error;
    const lost = new ResourceUnavailableError("the data store failed to write a commit", { cause: error });
    for (const waiter of [...batch.waiters, ...this.open.waiters]) waiter.reject(lost);
    this.open = emptyBatch();
    this.options.onStoreFailure(error);
    this.notifyIdle();
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function emptyBatch(): Batch {
  return { objects: [], bindings: [], effects: [], waiters: [], flushedAt: 0, lastSeq: 0 };
}

function inRange(name: string, range: RangeRead): boolean {
  if (!name.startsWith(range.prefix)) return false;
  if (range.after !== undefined && compareUtf8(name, range.after) <= 0) return false;
  return range.found === undefined || compareUtf8(name, range.found) <= 0;
}
