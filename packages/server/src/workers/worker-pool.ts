import { Worker } from "node:worker_threads";
import { ResourceUnavailableError } from "../api/errors.js";
import type { CommitRequest, Committer } from "../kernel/committer.js";
import type { DataStore } from "../kernel/data-store.js";
import type { RemoteAttempt, RemoteOutcome, TaskExecutor } from "../kernel/kernel.js";
import type { Logger } from "../kernel/logger.js";
import { LmdbDataStore } from "../data/lmdb-data-store.js";
import { MemoryDataStore } from "../data/memory-data-store.js";
import type { SessionView } from "../sessions/session-effects.js";
import { decodeOutcomes, encodeToWorker, fromWireError, type CommitDelta, type FromWorker, type IdBlock, type WireAttempt, type WorkerInit } from "./wire.js";

/** Ids a worker gets at a time. */
const ID_BLOCK = 4096;
/** Validated commits held for the workers past which they are sent even with no work to go along. */
const MAX_HELD_COMMITS = 1024;
/**
 * Attempts per message to a worker. A turn's attempts go in several messages rather than one: the
 * worker answers each as it finishes it, so this thread validates the first answers while the
 * worker runs the rest, instead of each thread waiting for the other's whole batch (measured: one
 * worker went from about 15k to about 21k transfers/s in-process, both threads busier).
 */
const ATTEMPTS_PER_MESSAGE = 64;
/** How often the workers hear which clients are behind on reading. */
const BACKLOG_REPORT_MS = 20;

/** What the pool needs from the session service: backlogs to report, and clients to cut off. */
export interface PoolSessions extends SessionView {
  backlogsOver(bytes: number): [bigint, number][];
}

/** Options of {@link WorkerPool.start}. */
export interface WorkerPoolOptions {
  readonly count: number;
  /** The module that defines the application's managed classes (a `file:` URL). */
  readonly appModule: string;
  /** A module each worker imports first (a `file:` URL), if any. */
  readonly preload?: string;
  readonly store: DataStore;
  readonly committer: Committer;
  readonly sessions: PoolSessions;
  readonly writeBufferBytes: number;
  /** Decoded objects each worker keeps between tasks. */
  readonly objectCacheEntries: number;
  readonly logger: Logger;
  /** Called if a worker dies: tasks can no longer run, and the server must stop. */
  readonly onFatal: (error: unknown) => void;
}

interface Slot {
  readonly worker: Worker;
  readonly index: number;
  queue: WireAttempt[];
  /** Attempts sent and not answered. */
  outstanding: number;
  /** The number of the last attempt of this worker whose outcome has been handled here. */
  decidedUpTo: number;
  /** The position in the pool's commit log of the first commit this worker has not been sent. */
  commitsSent: number;
  /** The durable sequence last sent, and when backlogs were last sent. */
  durableSent: number;
  backlogsSentAt: number;
  wantsIds: boolean;
}

interface Pending {
  readonly done: (outcome: RemoteOutcome) => void;
  readonly slot: Slot;
  /** The start sequence held for the attempt's transaction (see {@link WorkerPool.flush}). */
  hold: number | undefined;
}

/**
 * Worker threads that run tasks of defined kinds. The main thread sends each worker, at most once
 * per event-loop turn, the commits validated since the last message (so the worker's overlay stays
 * current), news of durability, and the attempts it is to run; each worker answers with one message
 * of commit requests and errors. Tasks with the same affinity (a session's) go to the same worker.
 */
export class WorkerPool implements TaskExecutor {
  private readonly pending = new Map<number, Pending>();
  /**
   * Validated commits not yet sent to every worker; `logStart` is the position of the first. A
   * worker is sent its share when it has work, so idle workers cost no messages.
   */
  private log: CommitDelta[] = [];
  private logStart = 0;
  private durableSeq = 0;
  private flushScheduled = false;
  /** Loads the workers' decoded-object caches served, and loads that decoded, as the workers reported. */
  readonly cacheCounts = { hits: 0, misses: 0 };
  private nextAttempt = 0;
  private failed: unknown;
  private closing = false;
  /** The worker's commit request being handed to the kernel now, and where it came from. */
  private handingOver: { readonly request: CommitRequest; readonly madeBy: { readonly worker: number; readonly attempt: number } } | undefined;

  private constructor(
    private readonly options: WorkerPoolOptions,
    private readonly slots: Slot[],
  ) {}

  /**
   * Starts `options.count` workers and waits until each has imported the application's module and
   * opened the store.
   * @throws {ResourceUnavailableError} if a worker cannot start (the application module fails to load, say).
   */
  static async start(options: WorkerPoolOptions, hooks: (pool: WorkerPool) => void): Promise<WorkerPool> {
    const { committer } = options;
    const store = storeForWorkers(options.store);
    const lastSeq = committer.lastCommitSeq;
    // Commits validated but not yet in the store: the workers' overlays start with them.
    const pendingWrites = committer.pendingWrites();
    const initial: CommitDelta[] = [
      ...pendingWrites.objects.map(([id, entry]): CommitDelta => ({ seq: entry.version, objects: [{ id, bytes: entry.bytes }], bindings: [] })),
      ...pendingWrites.bindings.map(([name, entry]): CommitDelta => ({ seq: entry.version, objects: [], bindings: [{ name, id: entry.id }] })),
    ];
    const slots: Slot[] = [];
    const ready: Promise<void>[] = [];
    for (let index = 0; index < options.count; index++) {
      const init: WorkerInit = { index, appModule: options.appModule, preload: options.preload, store, writeBufferBytes: options.writeBufferBytes, objectCacheEntries: options.objectCacheEntries, lastSeq, ids: committer.allocateIdBlock(ID_BLOCK) };
      const worker = new Worker(new URL("./worker-entry.js", import.meta.url), { workerData: init });
      slots.push({ worker, index, queue: [], outstanding: 0, decidedUpTo: 0, commitsSent: 0, durableSent: 0, backlogsSentAt: -Infinity, wantsIds: false });
      ready.push(firstMessage(worker, index));
    }
    const pool = new WorkerPool(options, slots);
    pool.log = initial;
    // From here on every validated commit reaches the pool, so nothing falls between the
    // snapshot above and the workers' first message.
    hooks(pool);
    try {
      await Promise.all(ready);
    } catch (error) {
      await Promise.all(slots.map((slot) => slot.worker.terminate()));
      throw error;
    }
    for (const slot of slots) pool.listen(slot);
    return pool;
  }

  /**
   * Runs `attempt` on a worker: the one running the attempt it comes after, if any; else the one
   * its affinity names, or the least busy. Returns its number (0 if the workers have failed).
   */
  run(attempt: RemoteAttempt, done: (outcome: RemoteOutcome) => void): number {
    if (this.failed !== undefined) {
      done({ ok: false, error: new ResourceUnavailableError("the worker threads have failed", { cause: this.failed }) });
      return 0;
    }
    const before = attempt.after === undefined ? undefined : this.pending.get(attempt.after);
    if (attempt.after !== undefined && before === undefined) throw new Error(`attempt ${attempt.after}, which another is to follow, is not running`);
    const slot = before?.slot ?? this.choose(attempt.affinity);
    const number = ++this.nextAttempt;
    slot.queue.push({ ...attempt, number });
    slot.outstanding++;
    this.pending.set(number, { done, slot, hold: undefined });
    this.scheduleFlush();
    return number;
  }

  /**
   * A commit was validated: every worker's overlay gets its writes (the worker that made it, only
   * its sequence). Validation happens while the outcome is handed over (see {@link listen}), so a
   * request from a worker is the one being handed over.
   */
  onValidated(seq: number, request: CommitRequest): void {
    if (request.objectWrites.length === 0 && request.bindingWrites.length === 0) return;
    const madeBy = this.handingOver?.request === request ? this.handingOver.madeBy : undefined;
    this.log.push({ seq, objects: request.objectWrites, bindings: request.bindingWrites, madeBy });
    if (this.log.length >= MAX_HELD_COMMITS) this.scheduleFlush();
  }

  /** Every commit up to `seq` is in the store. */
  onDurable(seq: number): void {
    this.durableSeq = Math.max(this.durableSeq, seq);
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }

  private choose(affinity: string | undefined): Slot {
    if (affinity !== undefined) return this.slots[hash(affinity) % this.slots.length]!;
    let best = this.slots[0]!;
    for (const slot of this.slots) if (slot.outstanding < best.outstanding) best = slot;
    return best;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Once per turn of the event loop, after its I/O: every attempt submitted by the turn's socket
    // reads and worker answers goes in one message per worker. Flushing at the end of each callback
    // instead sent a message per socket read: over the network with 2 workers that cost about
    // 165 us of CPU per transfer against 110-130 us, and 10-20% of the throughput.
    setImmediate(() => this.flush());
  }

  /**
   * Sends each worker that has attempts to run (or asked for ids, or is far behind on commits) what
   * it needs: the commits validated since it was last sent any, durability, ids, backlogs, and the
   * attempts. Each attempt's transaction will start at the worker's view, which then includes every
   * commit validated so far; holding that sequence with the committer keeps the records its
   * validation needs from being pruned meanwhile.
   */
  private flush(): void {
    this.flushScheduled = false;
    if (this.failed !== undefined) return;
    const logEnd = this.logStart + this.log.length;
    for (const slot of this.slots) {
      if (slot.queue.length > 0 || slot.wantsIds || logEnd - slot.commitsSent >= MAX_HELD_COMMITS) this.send(slot, logEnd);
    }
    // Forget what every worker has been sent.
    const sentToAll = Math.min(...this.slots.map((slot) => slot.commitsSent));
    if (sentToAll > this.logStart) {
      this.log = this.log.slice(sentToAll - this.logStart);
      this.logStart = sentToAll;
    }
  }

  /** Sends `slot` its queued attempts, in messages of {@link ATTEMPTS_PER_MESSAGE}; the news goes with the first. */
  private send(slot: Slot, logEnd: number): void {
    const { committer } = this.options;
    const commits = this.log.slice(slot.commitsSent - this.logStart);
    slot.commitsSent = logEnd;
    const lastSeq = committer.lastCommitSeq;
    const durableSeq = this.durableSeq > slot.durableSent ? this.durableSeq : 0;
    slot.durableSent = Math.max(slot.durableSent, this.durableSeq);
    const backlogs = this.backlogReport(slot);
    const ids: IdBlock | undefined = slot.wantsIds ? committer.allocateIdBlock(ID_BLOCK) : undefined;
    slot.wantsIds = false;
    const queued = slot.queue;
    slot.queue = [];
    for (const attempt of queued) this.pending.get(attempt.number)!.hold = committer.begin();
    let first = true;
    for (let start = 0; first || start < queued.length; start += ATTEMPTS_PER_MESSAGE) {
      const attempts = queued.slice(start, start + ATTEMPTS_PER_MESSAGE);
      const envelope = first
        ? encodeToWorker({ commits, decidedUpTo: slot.decidedUpTo, lastSeq, durableSeq, ids, backlogs, attempts }, slot.index)
        : encodeToWorker({ commits: [], decidedUpTo: slot.decidedUpTo, lastSeq, durableSeq: 0, ids: undefined, backlogs: undefined, attempts }, slot.index);
      slot.worker.postMessage(envelope, [envelope.bin]);
      first = false;
    }
  }

  /** Which clients are behind on reading, for `slot` every {@link BACKLOG_REPORT_MS} at most. */
  private backlogReport(slot: Slot): [bigint, number][] | undefined {
    const now = performance.now();
    if (now - slot.backlogsSentAt < BACKLOG_REPORT_MS) return undefined;
    slot.backlogsSentAt = now;
    return this.options.sessions.backlogsOver(Math.floor(this.options.writeBufferBytes / 4));
  }

  private listen(slot: Slot): void {
    slot.worker.on("message", (posted: FromWorker) => {
      if (posted.type !== "outcomes") return;
      const message = decodeOutcomes(posted.envelope);
      for (const [id, backlog] of message.cutOff) this.options.sessions.cutOff(id, backlog);
      this.cacheCounts.hits += message.cacheHits;
      this.cacheCounts.misses += message.cacheMisses;
      if (message.wantIds && !slot.wantsIds) {
        slot.wantsIds = true;
        this.scheduleFlush();
      }
      for (const outcome of message.outcomes) {
        const pending = this.pending.get(outcome.number)!;
        this.pending.delete(outcome.number);
        slot.outstanding--;
        slot.decidedUpTo = outcome.number;
        if (outcome.ok) this.handingOver = { request: outcome.request, madeBy: { worker: slot.index, attempt: outcome.number } };
        try {
          pending.done(outcome.ok ? { ok: true, request: outcome.request, result: outcome.result } : { ok: false, error: fromWireError(outcome.error) });
        } finally {
          this.handingOver = undefined;
          if (pending.hold !== undefined) this.options.committer.end(pending.hold);
        }
      }
    });
    slot.worker.on("error", (error) => this.workerFailed(slot, error));
    slot.worker.on("exit", (code) => {
      if (!this.closing) this.workerFailed(slot, new Error(`worker ${slot.index} exited with code ${code}`));
    });
  }

  /** A worker died: what it was running cannot finish, and no task can run on it again. */
  private workerFailed(slot: Slot, error: unknown): void {
    if (this.failed !== undefined) return;
    this.failed = error;
    this.options.logger.error("a worker thread failed; stopping", { worker: slot.index, error });
    const lost = new ResourceUnavailableError("a worker thread failed", { cause: error });
    for (const [number, pending] of this.pending) {
      this.pending.delete(number);
      pending.done({ ok: false, error: lost });
      if (pending.hold !== undefined) this.options.committer.end(pending.hold);
    }
    this.options.onFatal(error);
  }
}

/** What a worker opens to read the store. */
function storeForWorkers(store: DataStore): WorkerInit["store"] {
  if (store instanceof LmdbDataStore) return { kind: "lmdb", path: store.path, durability: store.durabilityMode };
  if (store instanceof MemoryDataStore) return { kind: "memory", snapshot: store.snapshot() };
  throw new ResourceUnavailableError(`worker threads can read LMDB and in-memory stores, not a ${store.kind} store`);
}

/** Resolves when `worker` reports ready; rejects with its reason if it fails to start. */
function firstMessage(worker: Worker, index: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: FromWorker) => {
      cleanup();
      if (message.type === "ready") resolve();
      else if (message.type === "failed") reject(new ResourceUnavailableError(`worker ${index} could not start: ${message.error.message}`, { cause: fromWireError(message.error) }));
    };
    const onError = (error: unknown) => {
      cleanup();
      reject(new ResourceUnavailableError(`worker ${index} could not start`, { cause: error }));
    };
    const cleanup = () => {
      worker.off("message", onMessage);
      worker.off("error", onError);
    };
    worker.on("message", onMessage);
    worker.on("error", onError);
  });
}

/** A small, stable hash of a string (FNV-1a). */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
