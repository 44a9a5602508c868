/**
 * The entry point of a worker thread: it imports the application's module (so that its managed
 * classes are known), reads the store directly, and runs the attempts the main thread sends it,
 * replying with commit requests for the main thread to validate, order and make durable.
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { TransactionConflictError } from "../api/errors.js";
import { SystemClock } from "../kernel/clock.js";
import type { CommitRequest } from "../kernel/committer.js";
import { ObjectCache } from "../kernel/object-cache.js";
import { TaskRuntime } from "../kernel/task-runtime.js";
import { LmdbDataStore } from "../data/lmdb-data-store.js";
import { MemoryDataStore } from "../data/memory-data-store.js";
import type { SessionView } from "../sessions/session-effects.js";
import { installTransactionalServices } from "../task-services.js";
import { WorkerSource } from "./worker-source.js";
import { decodeToWorker, encodeOutcomes, toWireError, type Envelope, type FromWorker, type Outcomes, type WireAttempt, type WireOutcome, type WorkerInit } from "./wire.js";

/** Transaction ids of worker `index` start here, apart from the main thread's and the other workers'. */
const TRANSACTION_IDS_PER_THREAD = 1e12;

if (isMainThread || parentPort === null) throw new Error("worker-main runs only as a worker thread");
const port = parentPort;
const init = workerData as WorkerInit;

try {
  await start();
} catch (error) {
  const failed: FromWorker = { type: "failed", error: toWireError(error) };
  port.postMessage(failed);
}

async function start(): Promise<void> {
  if (init.preload !== undefined) await import(init.preload);
  await import(init.appModule);
  const objects = new ObjectCache(init.objectCacheEntries);
  const source = openSource(objects);
  const backlogs = new Map<bigint, number>();
  const cutOff: [bigint, number][] = [];
  const view: SessionView = {
    backlogOf: (id) => backlogs.get(id) ?? 0,
    cutOff: (id, backlog) => void cutOff.push([id, backlog]),
  };
  const runtime = new TaskRuntime(source, new SystemClock(), (init.index + 1) * TRANSACTION_IDS_PER_THREAD, objects);
  const cacheCounts = cacheCounter(objects);
  installTransactionalServices(runtime, view, init.writeBufferBytes);
  port.on("message", (envelope: Envelope) => {
    const message = decodeToWorker(envelope);
    source.apply(message.commits, message.lastSeq, message.decidedUpTo);
    if (message.durableSeq > 0) source.durable(message.durableSeq);
    if (message.ids !== undefined) source.addIds(message.ids);
    if (message.backlogs !== undefined) {
      backlogs.clear();
      for (const [id, bytes] of message.backlogs) backlogs.set(id, bytes);
    }
    const outcomes = message.attempts.map((attempt) => runAttempt(runtime, source, attempt));
    reply({ outcomes, cutOff: cutOff.splice(0), wantIds: source.askForIds(), ...cacheCounts() });
  });
  const ready: FromWorker = { type: "ready" };
  port.postMessage(ready);
}

/**
 * A function that tells `cache`'s hits and misses since it was last called. (A function rather than
 * a class: this module's top level awaits `start` before a class declared below would exist.)
 */
function cacheCounter(cache: ObjectCache): () => { cacheHits: number; cacheMisses: number } {
  let hits = 0;
  let misses = 0;
  return () => {
    const counts = { cacheHits: cache.hits - hits, cacheMisses: cache.misses - misses };
    hits = cache.hits;
    misses = cache.misses;
    return counts;
  };
}

/** The worker's view of committed state; instances its own commits wrote go to `objects`. */
function openSource(objects: ObjectCache): WorkerSource {
  if (init.store.kind === "lmdb") {
    const store = LmdbDataStore.openReader(init.store.path, init.store.durability);
    return new WorkerSource({ reads: store, catchUp: () => store.resetReadTxn() }, init.lastSeq, init.ids, objects);
  }
  const copy = new MemoryDataStore();
  const { snapshot } = init.store;
  if (snapshot.meta !== undefined) {
    void copy.commit({
      objects: snapshot.objects.map(([id, record]) => ({ id, bytes: record.bytes, version: record.version })),
      bindings: snapshot.bindings.map(([name, record]) => ({ name, id: record.id, version: record.version })),
      meta: snapshot.meta,
    });
  }
  return new WorkerSource({ copy }, init.lastSeq, init.ids, objects);
}

/**
 * Runs one attempt to the point of its commit request, or to the error that ended it. An attempt
 * to run after another reads that one's writes as if committed; if that one failed here, it is
 * void and does not run (the main thread runs it again once its predecessor is ordered).
 */
function runAttempt(runtime: TaskRuntime, source: WorkerSource, attempt: WireAttempt): WireOutcome {
  if (!source.runAfter(attempt.after)) {
    source.failed(attempt.number);
    return { number: attempt.number, ok: false, error: toWireError(new TransactionConflictError(`the attempt it was to follow (${attempt.after}) failed`)) };
  }
  const tx = runtime.open(attempt);
  try {
    const body = runtime.body(attempt.kind);
    const result = runtime.execute(tx, attempt.name, (ctx) => body(ctx, tx, attempt.args));
    const request: CommitRequest = tx.prepareCommit();
    const written = tx.takeWrittenInstances();
    tx.markCommitted();
    source.askedToCommit(attempt.number, request, attempt.after, written);
    return { number: attempt.number, ok: true, request, result };
  } catch (error) {
    tx.abort();
    source.failed(attempt.number);
    return { number: attempt.number, ok: false, error: toWireError(error) };
  } finally {
    source.endChain();
  }
}

/**
 * Posts `message`; if something in it cannot be copied to another thread (a task returned or
 * logged a function, say), each outcome that cannot is replaced by the error that says so.
 */
function reply(message: Outcomes): void {
  try {
    post(message);
  } catch {
    const outcomes = message.outcomes.map((outcome): WireOutcome => {
      try {
        structuredClone(outcome);
        return outcome;
      } catch (error) {
        const reason = new TypeError(`a task's result, effects or log fields cannot be copied between threads: ${(error as Error).message}`);
        return { number: outcome.number, ok: false, error: toWireError(reason) };
      }
    });
    post({ ...message, outcomes });
  }
}

function post(message: Outcomes): void {
  const envelope = encodeOutcomes(message);
  const posted: FromWorker = { type: "outcomes", envelope };
  port.postMessage(posted, [envelope.bin]);
}
