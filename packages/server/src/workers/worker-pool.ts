import { Worker } from "node:worker_threads";
import { ResourceUnavailableError, WorkerLostError } from "../api/errors.js";
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
/** Worker deaths within {@link DEATH_WINDOW_MS} past which the pool gives up and the server must stop. */
const MAX_DEATHS = 10;
const DEATH_WINDOW_MS = 60_000;
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
  /** The thread; replaced by a fresh one if it dies. */
  worker: Worker;
  readonly index: number;
  /** False while a replacement thread starts: nothing is sent to it until it is ready. */
  ready: boolean;
  /** Attempts to send (attempts to run alone wait in the pool's own queue). */
  queue: WireAttempt[];
  /** Attempts queued here or sent and not answered. */
  outstanding: number;
  /** The number of the last attempt of this worker whose outcome has been handled here. */
  decidedUpTo: number;
  /** The position in the pool's commit log of the first commit this worker has not been sent. */
  commitsSent: number;
  /** The durable sequence last sent, and when backlogs were last sent. */
  durableSent: number;
  backlogsSentAt: number;
  wantsIds: boolean;
  /** For a replacement thread: the commits validated but not yet in the store when it started, to send first. */
  prelude: CommitDelta[];
  /** The attempt running alone on this worker (see {@link RemoteAttempt.alone}), if any. */
  aloneAttempt: number | undefined;
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
  /** Attempts to run alone (see {@link RemoteAttempt.alone}), in order, and the worker that runs them. */
  private readonly alone: WireAttempt[] = [];
  private isolation: Slot | undefined;
  /** When workers died (performance.now()), within the last {@link DEATH_WINDOW_MS}. */
  private deaths: number[] = [];
  /** Worker threads that died and were replaced. */
  restarts = 0;
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
    const slots: Slot[] = [];
    const ready: Promise<void>[] = [];
    for (let index = 0; index < options.count; index++) {
      const worker = spawn(options, index);
      slots.push({ worker, index, ready: true, queue: [], outstanding: 0, decidedUpTo: 0, commitsSent: 0, durableSent: 0, backlogsSentAt: -Infinity, wantsIds: false, prelude: [], aloneAttempt: undefined });
      ready.push(firstMessage(worker, index));
    }
    const pool = new WorkerPool(options, slots);
    // Commits validated but not yet in the store: the workers' overlays start with them.
    pool.log = pendingDeltas(options.committer);
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
    const number = ++this.nextAttempt;
    if (attempt.alone === true) {
      if (attempt.after !== undefined) throw new Error("an attempt to run alone cannot follow another");
      this.isolation ??= this.choose(undefined);
      this.alone.push({ ...attempt, number });
      this.pending.set(number, { done, slot: this.isolation, hold: undefined });
    } else {
      const slot = before?.slot ?? this.choose(attempt.affinity);
      slot.queue.push({ ...attempt, number });
      slot.outstanding++;
      this.pending.set(number, { done, slot, hold: undefined });
    }
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

  /**
   * The worker for an attempt: the one its affinity names, else the least busy; but not one that is
   * starting or running attempts alone, while another can take it.
   */
  private choose(affinity: string | undefined): Slot {
    const usable = (slot: Slot) => slot.ready && slot !== this.isolation;
    const named = affinity === undefined ? undefined : this.slots[hash(affinity) % this.slots.length]!;
    if (named !== undefined && usable(named)) return named;
    let best: Slot | undefined;
    for (const slot of this.slots) if (usable(slot) && (best === undefined || slot.outstanding < best.outstanding)) best = slot;
    return best ?? named ?? this.slots[0]!;
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
      if (!slot.ready) continue;
      const attempts = slot === this.isolation ? this.isolatedAttempts(slot) : this.takeQueue(slot);
      if (attempts.length > 0 || slot.wantsIds || logEnd - slot.commitsSent >= MAX_HELD_COMMITS) this.send(slot, logEnd, attempts);
    }
    // Forget what every worker has been sent.
    const sentToAll = Math.min(...this.slots.map((slot) => slot.commitsSent));
    if (sentToAll > this.logStart) {
      this.log = this.log.slice(sentToAll - this.logStart);
      this.logStart = sentToAll;
    }
  }

  private takeQueue(slot: Slot): WireAttempt[] {
    const queued = slot.queue;
    slot.queue = [];
    return queued;
  }

  /**
   * What the worker running attempts alone is sent: the next of them once nothing else runs there,
   * one at a time; then, once none is left, its own queue again (it is an ordinary worker then).
   */
  private isolatedAttempts(slot: Slot): WireAttempt[] {
    if (slot.aloneAttempt !== undefined) return [];
    const next = this.alone.shift();
    if (next === undefined) {
      this.isolation = undefined;
      return this.takeQueue(slot);
    }
    if (slot.outstanding > slot.queue.length) {
      this.alone.unshift(next); // others are still running there: wait for their answers
      return [];
    }
    slot.aloneAttempt = next.number;
    slot.outstanding++;
    return [next];
  }

  /** Sends `slot` the news and `queued`, in messages of {@link ATTEMPTS_PER_MESSAGE}; the news goes with the first. */
  private send(slot: Slot, logEnd: number, queued: WireAttempt[]): void {
    const { committer } = this.options;
    const commits = [...slot.prelude, ...this.log.slice(slot.commitsSent - this.logStart)];
    slot.prelude = [];
    slot.commitsSent = logEnd;
    const lastSeq = committer.lastCommitSeq;
    const durableSeq = this.durableSeq > slot.durableSent ? this.durableSeq : 0;
    slot.durableSent = Math.max(slot.durableSent, this.durableSeq);
    const backlogs = this.backlogReport(slot);
    const ids: IdBlock | undefined = slot.wantsIds ? committer.allocateIdBlock(ID_BLOCK) : undefined;
    slot.wantsIds = false;
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
    const { worker } = slot;
    worker.on("message", (posted: FromWorker) => {
      // A thread's answers that arrive after it was declared dead are not heard: its attempts
      // were reported lost already.
      if (posted.type !== "outcomes" || slot.worker !== worker) return;
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
        if (slot.aloneAttempt === outcome.number) {
          slot.aloneAttempt = undefined;
          this.scheduleFlush();
        }
        if (outcome.ok) this.handingOver = { request: outcome.request, madeBy: { worker: slot.index, attempt: outcome.number } };
        try {
          pending.done(outcome.ok ? { ok: true, request: outcome.request, result: outcome.result } : { ok: false, error: fromWireError(outcome.error) });
        } finally {
          this.handingOver = undefined;
          if (pending.hold !== undefined) this.options.committer.end(pending.hold);
        }
      }
    });
    worker.on("error", (error) => this.workerDied(slot, worker, error));
    worker.on("exit", (code) => this.workerDied(slot, worker, new Error(`worker ${slot.index} exited with code ${code}`)));
  }

  /**
   * A worker thread died (an error escaped it, its code exited, it ran out of memory): what it was
   * running is lost, and each of those attempts is reported as such (the kernel runs the task again,
   * alone); a fresh thread takes its place. An attempt that was running alone ended the thread
   * itself: its task fails. Past {@link MAX_DEATHS} deaths within {@link DEATH_WINDOW_MS}, the pool
   * gives up, as a crash loop is not something running tasks again can mend.
   */
  private workerDied(slot: Slot, worker: Worker, error: unknown): void {
    if (this.closing || this.failed !== undefined || slot.worker !== worker) return;
    const now = performance.now();
    this.deaths = this.deaths.filter((at) => now - at < DEATH_WINDOW_MS);
    this.deaths.push(now);
    if (this.deaths.length > MAX_DEATHS) {
      this.workerFailed(slot, new Error(`${this.deaths.length} worker threads died within ${DEATH_WINDOW_MS / 1000} s; the last: ${describe(error)}`, { cause: error }));
      return;
    }
    const culprit = slot.aloneAttempt;
    slot.aloneAttempt = undefined;
    const lost = this.loseAttempts(slot);
    this.options.logger.error("a worker thread died; another takes its place, and its attempts run again", { worker: slot.index, lost: lost.length, error });
    for (const [number, pending] of lost) {
      const reason =
        number === culprit
          ? new WorkerLostError(`the task's attempt ended its worker thread while running alone: ${describe(error)}`, { cause: error, retryable: false })
          : new WorkerLostError(`the worker thread running the task's attempt died: ${describe(error)}`, { cause: error });
      pending.done({ ok: false, error: reason });
    }
    this.replace(slot);
  }

  /**
   * Forgets the attempts `slot`'s thread had been sent, and queued ones that were to follow them,
   * and returns them. The rest of its queue waits for the replacement.
   */
  private loseAttempts(slot: Slot): [number, Pending][] {
    const queued = new Set(slot.queue.map((attempt) => attempt.number));
    const lostNumbers = new Set<number>();
    for (const [number, pending] of this.pending) if (pending.slot === slot && !queued.has(number) && !this.alone.some((a) => a.number === number)) lostNumbers.add(number);
    // An attempt to follow a lost one would run without the writes it is to read.
    slot.queue = slot.queue.filter((attempt) => {
      if (attempt.after === undefined || !lostNumbers.has(attempt.after)) return true;
      lostNumbers.add(attempt.number);
      return false;
    });
    const lost: [number, Pending][] = [];
    for (const number of lostNumbers) {
      const pending = this.pending.get(number)!;
      this.pending.delete(number);
      if (pending.hold !== undefined) this.options.committer.end(pending.hold);
      lost.push([number, pending]);
    }
    slot.outstanding = slot.queue.length;
    return lost;
  }

  /**
   * Starts a fresh thread in `slot`: it begins at the latest validated commit (those not yet in the
   * store go first in its first message) and is sent attempts once ready.
   */
  private replace(slot: Slot): void {
    this.restarts++;
    const worker = spawn(this.options, slot.index);
    Object.assign(slot, { worker, ready: false, decidedUpTo: 0, commitsSent: this.logStart + this.log.length, durableSent: 0, backlogsSentAt: -Infinity, wantsIds: false, prelude: pendingDeltas(this.options.committer) });
    firstMessage(worker, slot.index).then(
      () => {
        if (slot.worker !== worker || this.failed !== undefined) return;
        slot.ready = true;
        this.listen(slot);
        this.scheduleFlush();
      },
      (error: unknown) => this.workerFailed(slot, error),
    );
  }

  /** A worker died: what it was running cannot finish, and no task can run on it again. */
  private workerFailed(slot: Slot, error: unknown): void {
    if (this.failed !== undefined || this.closing) return;
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

/** Starts worker thread `index`, at the latest validated commit, with a block of ids. */
function spawn(options: WorkerPoolOptions, index: number): Worker {
  const { committer } = options;
  const init: WorkerInit = {
    index,
    appModule: options.appModule,
    preload: options.preload,
    store: storeForWorkers(options.store),
    writeBufferBytes: options.writeBufferBytes,
    objectCacheEntries: options.objectCacheEntries,
    lastSeq: committer.lastCommitSeq,
    ids: committer.allocateIdBlock(ID_BLOCK),
  };
  return new Worker(new URL("./worker-entry.js", import.meta.url), { workerData: init });
}

/** The commits validated but not yet in the store, as commit news: a new worker's view starts with them. */
function pendingDeltas(committer: Committer): CommitDelta[] {
  const pendingWrites = committer.pendingWrites();
  return [
    ...pendingWrites.objects.map(([id, entry]): CommitDelta => ({ seq: entry.version, objects: [{ id, bytes: entry.bytes }], bindings: [] })),
    ...pendingWrites.bindings.map(([name, entry]): CommitDelta => ({ seq: entry.version, objects: [], bindings: [{ name, id: entry.id }] })),
  ];
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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
    const onExit = (code: number) => onError(new Error(`worker ${index} exited with code ${code} while starting`));
    const cleanup = () => {
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
    };
    worker.on("message", onMessage);
    worker.on("error", onError);
    worker.on("exit", onExit);
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
