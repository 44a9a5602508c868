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
  private heldCommits: CommitDelta[] = [];
  private durableSeq = 0;
  private lastDurableSent = 0;
  private flushScheduled = false;
  private nextAttempt = 0;
  private lastBacklogReport = 0;
  private failed: unknown;
  private closing = false;

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
      ...pendingWrites.objects.map(([id, entry]): CommitDelta => ({ seq: entry.version, objects: [[id, entry.bytes]], bindings: [] })),
      ...pendingWrites.bindings.map(([name, entry]): CommitDelta => ({ seq: entry.version, objects: [], bindings: [[name, entry.id]] })),
    ];
    const slots: Slot[] = [];
    const ready: Promise<void>[] = [];
    for (let index = 0; index < options.count; index++) {
      const init: WorkerInit = { index, appModule: options.appModule, preload: options.preload, store, writeBufferBytes: options.writeBufferBytes, lastSeq, ids: committer.allocateIdBlock(ID_BLOCK) };
      const worker = new Worker(new URL("./worker-entry.js", import.meta.url), { workerData: init });
      slots.push({ worker, index, queue: [], outstanding: 0, wantsIds: false });
      ready.push(firstMessage(worker, index));
    }
    const pool = new WorkerPool(options, slots);
    pool.heldCommits = initial;
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

  /** Runs `attempt` on a worker: the one its affinity names, or the least busy. */
  run(attempt: RemoteAttempt, done: (outcome: RemoteOutcome) => void): void {
    if (this.failed !== undefined) {
      done({ ok: false, error: new ResourceUnavailableError("the worker threads have failed", { cause: this.failed }) });
      return;
    }
    const slot = this.choose(attempt.affinity);
    const number = ++this.nextAttempt;
    slot.queue.push({ ...attempt, number });
    slot.outstanding++;
    this.pending.set(number, { done, slot, hold: undefined });
    this.scheduleFlush();
  }

  /** A commit was validated: every worker's overlay gets its writes. */
  onValidated(seq: number, request: CommitRequest): void {
    if (request.objectWrites.length === 0 && request.bindingWrites.length === 0) return;
    this.heldCommits.push({
      seq,
      objects: request.objectWrites.map((write) => [write.id, write.bytes] as const),
      bindings: request.bindingWrites.map((write) => [write.name, write.id] as const),
    });
    if (this.heldCommits.length >= MAX_HELD_COMMITS) this.scheduleFlush();
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
    // At the end of this callback: every attempt submitted in it goes in one message per worker,
    // without waiting for another turn of the event loop.
    queueMicrotask(() => this.flush());
  }

  /**
   * Sends every worker what it needs, in one message each. Each attempt's transaction will start at
   * the worker's view, which includes every commit validated so far; holding that sequence with the
   * committer keeps the records its validation needs from being pruned meanwhile.
   */
  private flush(): void {
    this.flushScheduled = false;
    if (this.failed !== undefined) return;
    const { committer } = this.options;
    const commits = this.heldCommits;
    this.heldCommits = [];
    const lastSeq = committer.lastCommitSeq;
    const durableSeq = this.durableSeq > this.lastDurableSent ? this.durableSeq : 0;
    this.lastDurableSent = Math.max(this.lastDurableSent, this.durableSeq);
    const backlogs = this.backlogReport();
    for (const slot of this.slots) {
      const queued = slot.queue;
      slot.queue = [];
      for (const attempt of queued) this.pending.get(attempt.number)!.hold = committer.begin();
      const ids: IdBlock | undefined = slot.wantsIds ? committer.allocateIdBlock(ID_BLOCK) : undefined;
      slot.wantsIds = false;
      // Commits, durability, ids and backlogs go with the first message only.
      let first = true;
      for (let start = 0; first || start < queued.length; start += ATTEMPTS_PER_MESSAGE) {
        const attempts = queued.slice(start, start + ATTEMPTS_PER_MESSAGE);
        const envelope = first ? encodeToWorker({ commits, lastSeq, durableSeq, ids, backlogs, attempts }) : encodeToWorker({ commits: [], lastSeq, durableSeq: 0, ids: undefined, backlogs: undefined, attempts });
        slot.worker.postMessage(envelope, [envelope.bin]);
        first = false;
      }
    }
  }

  /** Which clients are behind on reading, every {@link BACKLOG_REPORT_MS} at most. */
  private backlogReport(): [bigint, number][] | undefined {
    const now = performance.now();
    if (now - this.lastBacklogReport < BACKLOG_REPORT_MS) return undefined;
    this.lastBacklogReport = now;
    return this.options.sessions.backlogsOver(Math.floor(this.options.writeBufferBytes / 4));
  }

  private listen(slot: Slot): void {
    slot.worker.on("message", (posted: FromWorker) => {
      if (posted.type !== "outcomes") return;
      const message = decodeOutcomes(posted.envelope);
      for (const [id, backlog] of message.cutOff) this.options.sessions.cutOff(id, backlog);
      if (message.wantIds && !slot.wantsIds) {
        slot.wantsIds = true;
        this.scheduleFlush();
      }
      for (const outcome of message.outcomes) {
        const pending = this.pending.get(outcome.number)!;
        this.pending.delete(outcome.number);
        slot.outstanding--;
        try {
          pending.done(outcome.ok ? { ok: true, request: outcome.request, result: outcome.result } : { ok: false, error: fromWireError(outcome.error) });
        } finally {
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
