import { ERROR_CODES, ShardlessError, TransactionConflictError, TransactionTimeoutError, type ConflictSource, type ErrorCode } from "../api/errors.js";
import type { CommitRequest } from "../kernel/committer.js";
import type { ObjectRecord, BindingRecord, StoreMeta } from "../kernel/data-store.js";
import type { RemoteAttempt } from "../kernel/kernel.js";
import { BinaryReader, BinaryWriter } from "./binary.js";

/** What a worker is started with (its `workerData`). */
export interface WorkerInit {
  /** The worker's number, from 0. */
  readonly index: number;
  /** The module that defines the application's managed classes. */
  readonly appModule: string;
  /** A module imported before it (loader hooks, instrumentation), if any. */
  readonly preload: string | undefined;
  /** The LMDB store to read, or the contents of an in-memory store to copy. */
  readonly store: { readonly kind: "lmdb"; readonly path: string; readonly durability: "sync" | "relaxed" } | { readonly kind: "memory"; readonly snapshot: MemorySnapshot };
  readonly writeBufferBytes: number;
  /** Decoded objects the worker keeps between tasks. */
  readonly objectCacheEntries: number;
  /** The commit sequence the worker's view starts at. */
  readonly lastSeq: number;
  /** Its first block of object ids. */
  readonly ids: IdBlock;
}

/** Everything an in-memory store holds. */
export interface MemorySnapshot {
  readonly objects: readonly (readonly [bigint, ObjectRecord])[];
  readonly bindings: readonly (readonly [string, BindingRecord])[];
  readonly meta: StoreMeta | undefined;
}

/** Object ids a worker may hand out itself: `first`, `first + 1`, … (`count` of them). */
export interface IdBlock {
  readonly first: bigint;
  readonly count: number;
}

/** What a commit wrote: the write sets of its request. */
export interface CommitWrites {
  readonly objects: CommitRequest["objectWrites"];
  readonly bindings: CommitRequest["bindingWrites"];
}

/**
 * One validated commit, as the main thread holds it for the workers. `madeBy` names the worker and
 * attempt it came from, if any: that worker already has the writes, and is told only the sequence.
 */
export interface CommitDelta extends CommitWrites {
  readonly seq: number;
  readonly madeBy?: { readonly worker: number; readonly attempt: number };
}

/** A validated commit as a worker receives it: its writes, or the number of its own attempt that made it. */
export type CommitNews = { readonly seq: number; readonly writes: CommitWrites } | { readonly seq: number; readonly ownAttempt: number };

/** An attempt sent to a worker, numbered so that its outcome finds its way back. */
export interface WireAttempt extends RemoteAttempt {
  readonly number: number;
}

/** Main thread → worker, once per turn at most: news of the state, then work. */
export interface ToWorker<Commit = CommitDelta> {
  /** Validated commits since the last message, in commit order. */
  readonly commits: readonly Commit[];
  /**
   * Every attempt of this worker numbered up to here has been decided on the main thread: those
   * that committed are among the commits of this message or an earlier one.
   */
  readonly decidedUpTo: number;
  /** The last validated commit sequence as of this message. */
  readonly lastSeq: number;
  /** Every commit up to this sequence is in the store (0: no news). */
  readonly durableSeq: number;
  /** A fresh block of ids, when the worker asked for one. */
  readonly ids: IdBlock | undefined;
  /** Sessions whose clients are behind on reading, with their backlog in bytes (undefined: no news). */
  readonly backlogs: readonly (readonly [bigint, number])[] | undefined;
  readonly attempts: readonly WireAttempt[];
}

/** A serialised error: enough to rebuild one with the same class of behaviour (retry or not). */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  readonly code: string | undefined;
  readonly retryable: boolean;
  readonly on: ConflictSource | undefined;
}

/** What became of one attempt on a worker. */
export type WireOutcome =
  | { readonly number: number; readonly ok: true; readonly request: CommitRequest; readonly result: unknown }
  | { readonly number: number; readonly ok: false; readonly error: WireError };

/**
 * Worker → main thread. The outcomes also say which sessions to cut off now (their clients stopped
 * reading, see `SessionView.cutOff`) and whether the worker runs low on object ids.
 */
export type FromWorker =
  | { readonly type: "ready" }
  /** Outcomes of the attempts of one message ({@link encodeOutcomes}). */
  | { readonly type: "outcomes"; readonly envelope: Envelope }
  | { readonly type: "failed"; readonly error: WireError };

/** `error` as data that can cross threads. */
export function toWireError(error: unknown): WireError {
  if (error instanceof Error) {
    const shardless = error instanceof ShardlessError ? error : undefined;
    return {
      name: error.name,
      message: error.message,
      stack: error.stack,
      code: shardless?.code,
      retryable: shardless?.retryable ?? false,
      on: error instanceof TransactionConflictError ? error.on : undefined,
    };
  }
  return { name: "Error", message: `a task threw a non-Error value: ${String(error)}`, stack: undefined, code: undefined, retryable: false, on: undefined };
}

/** An error like the one `wire` describes, with the same class for those the kernel tells apart. */
export function fromWireError(wire: WireError): Error {
  let error: Error;
  if (wire.code === "ERR_TXN_CONFLICT") error = new TransactionConflictError(wire.message, { on: wire.on });
  else if (wire.code === "ERR_TXN_TIMEOUT") error = new TransactionTimeoutError(wire.message);
  else if (wire.code !== undefined && (ERROR_CODES as readonly string[]).includes(wire.code)) error = new ShardlessError(wire.code as ErrorCode, wire.message, { retryable: wire.retryable });
  else error = new Error(wire.message);
  error.name = wire.name;
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}

/** A message as posted: the binary part (transferred, not copied) and what only a clone can carry. */
export interface Envelope {
  readonly bin: ArrayBuffer;
  readonly extra: readonly unknown[];
}

/** Encodes a {@link ToWorker} for worker number `worker`. */
export function encodeToWorker(message: ToWorker, worker: number): Envelope {
  const out = new BinaryWriter();
  out.f64(message.lastSeq);
  out.f64(message.durableSeq);
  out.f64(message.decidedUpTo);
  writeCommits(out, message.commits, worker);
  out.u8(message.ids === undefined ? 0 : 1);
  if (message.ids !== undefined) {
    out.u64(message.ids.first);
    out.u32(message.ids.count);
  }
  out.u8(message.backlogs === undefined ? 0 : 1);
  if (message.backlogs !== undefined) {
    out.u32(message.backlogs.length);
    for (const [id, bytes] of message.backlogs) {
      out.u64(id);
      out.f64(bytes);
    }
  }
  const extra: unknown[] = [];
  out.u32(message.attempts.length);
  for (const attempt of message.attempts) {
    // Attempt numbers grow for the server's life: past 2^32 within a day at 50k tasks/s, so they
    // travel as doubles (exact to 2^53).
    out.f64(attempt.number);
    out.f64(attempt.after ?? 0);
    out.atom(attempt.kind);
    out.atom(attempt.name);
    out.atom(attempt.type);
    out.f64(attempt.timeoutMs);
    out.f64(attempt.appTimeMs);
    out.value(attempt.affinity, extra);
    out.value(attempt.args, extra);
    out.value(attempt.logFields, extra);
  }
  return { bin: out.finish(), extra };
}

/** Decodes what {@link encodeToWorker} encoded. */
export function decodeToWorker(envelope: Envelope): ToWorker<CommitNews> {
  const input = new BinaryReader(envelope.bin);
  const lastSeq = input.f64();
  const durableSeq = input.f64();
  const decidedUpTo = input.f64();
  const commits = readCommits(input);
  const ids = input.u8() === 1 ? { first: input.u64(), count: input.u32() } : undefined;
  let backlogs: [bigint, number][] | undefined;
  if (input.u8() === 1) {
    backlogs = [];
    for (let count = input.u32(); count > 0; count--) backlogs.push([input.u64(), input.f64()]);
  }
  const attempts: WireAttempt[] = [];
  const count = input.u32();
  for (let i = 0; i < count; i++) {
    const number = input.f64();
    const after = input.f64();
    attempts.push({
      number,
      after: after === 0 ? undefined : after,
      kind: input.atom(),
      name: input.atom(),
      type: input.atom(),
      timeoutMs: input.f64(),
      appTimeMs: input.f64(),
      affinity: input.value(envelope.extra) as string | undefined,
      args: input.value(envelope.extra),
      logFields: input.value(envelope.extra) as Readonly<Record<string, unknown>> | undefined,
    });
  }
  return { lastSeq, durableSeq, decidedUpTo, commits, ids, backlogs, attempts };
}

/** What a worker sends back after a message: outcomes, clients to cut off, and whether it needs ids. */
export interface Outcomes {
  readonly outcomes: readonly WireOutcome[];
  readonly cutOff: readonly (readonly [bigint, number])[];
  readonly wantIds: boolean;
  /** Loads the worker's decoded-object cache served, and loads that decoded, since its last message. */
  readonly cacheHits: number;
  readonly cacheMisses: number;
}

/** Encodes {@link Outcomes}: in binary but for errors, range reads, and results or effects that are not plain data. */
export function encodeOutcomes(message: Outcomes): Envelope {
  const out = new BinaryWriter();
  const extra: unknown[] = [];
  out.u32(message.outcomes.length);
  for (const outcome of message.outcomes) {
    out.f64(outcome.number);
    if (!outcome.ok) {
      out.u8(0);
      out.value(outcome.error, extra);
      continue;
    }
    out.u8(1);
    const { request } = outcome;
    out.f64(request.startSeq);
    const reads = [...request.objectReads];
    out.u32(reads.length);
    for (const id of reads) out.u64(id);
    const bindingReads = [...request.bindingReads];
    out.u32(bindingReads.length);
    for (const name of bindingReads) out.string(name);
    out.u32(request.objectWrites.length);
    for (const write of request.objectWrites) {
      out.u64(write.id);
      out.bytes(write.bytes);
    }
    out.u32(request.bindingWrites.length);
    for (const write of request.bindingWrites) writeBinding(out, write.name, write.id);
    out.value(request.rangeReads, extra);
    out.value(request.effects, extra);
    out.value(outcome.result, extra);
  }
  out.u32(message.cutOff.length);
  for (const [id, backlog] of message.cutOff) {
    out.u64(id);
    out.f64(backlog);
  }
  out.u8(message.wantIds ? 1 : 0);
  out.f64(message.cacheHits);
  out.f64(message.cacheMisses);
  return { bin: out.finish(), extra };
}

/** Decodes what {@link encodeOutcomes} encoded. */
export function decodeOutcomes(envelope: Envelope): Outcomes {
  const input = new BinaryReader(envelope.bin);
  const outcomes: WireOutcome[] = [];
  for (let count = input.u32(); count > 0; count--) {
    const number = input.f64();
    if (input.u8() === 0) {
      outcomes.push({ number, ok: false, error: input.value(envelope.extra) as WireError });
      continue;
    }
    const startSeq = input.f64();
    const objectReads: bigint[] = [];
    for (let n = input.u32(); n > 0; n--) objectReads.push(input.u64());
    const bindingReads: string[] = [];
    for (let n = input.u32(); n > 0; n--) bindingReads.push(input.string());
    const objectWrites: { id: bigint; bytes: Uint8Array | null }[] = [];
    for (let n = input.u32(); n > 0; n--) objectWrites.push({ id: input.u64(), bytes: input.bytes() });
    const bindingWrites: { name: string; id: bigint | null }[] = [];
    for (let n = input.u32(); n > 0; n--) bindingWrites.push(readBinding(input));
    const rangeReads = input.value(envelope.extra) as CommitRequest["rangeReads"];
    const effects = input.value(envelope.extra) as CommitRequest["effects"];
    const result = input.value(envelope.extra);
    outcomes.push({ number, ok: true, request: { startSeq, objectReads, bindingReads, rangeReads, objectWrites, bindingWrites, effects }, result });
  }
  const cutOff: [bigint, number][] = [];
  for (let count = input.u32(); count > 0; count--) cutOff.push([input.u64(), input.f64()]);
  return { outcomes, cutOff, wantIds: input.u8() === 1, cacheHits: input.f64(), cacheMisses: input.f64() };
}

function writeCommits(out: BinaryWriter, commits: readonly CommitDelta[], worker: number): void {
  out.u32(commits.length);
  for (const commit of commits) {
    out.f64(commit.seq);
    if (commit.madeBy?.worker === worker) {
      out.u8(1);
      out.f64(commit.madeBy.attempt);
      continue;
    }
    out.u8(0);
    out.u32(commit.objects.length);
    for (const write of commit.objects) {
      out.u64(write.id);
      out.bytes(write.bytes);
    }
    out.u32(commit.bindings.length);
    for (const write of commit.bindings) writeBinding(out, write.name, write.id);
  }
}

function readCommits(input: BinaryReader): CommitNews[] {
  const commits: CommitNews[] = [];
  for (let count = input.u32(); count > 0; count--) {
    const seq = input.f64();
    if (input.u8() === 1) {
      commits.push({ seq, ownAttempt: input.f64() });
      continue;
    }
    const objects: { id: bigint; bytes: Uint8Array | null }[] = [];
    for (let n = input.u32(); n > 0; n--) objects.push({ id: input.u64(), bytes: input.bytes() });
    const bindings: { name: string; id: bigint | null }[] = [];
    for (let n = input.u32(); n > 0; n--) bindings.push(readBinding(input));
    commits.push({ seq, writes: { objects, bindings } });
  }
  return commits;
}

function writeBinding(out: BinaryWriter, name: string, id: bigint | null): void {
  out.string(name);
  out.u8(id === null ? 0 : 1);
  if (id !== null) out.u64(id);
}

function readBinding(input: BinaryReader): { name: string; id: bigint | null } {
  const name = input.string();
  return { name, id: input.u8() === 1 ? input.u64() : null };
}
