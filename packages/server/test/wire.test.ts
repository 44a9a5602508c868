import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryDataStore } from "../src/data/memory-data-store.ts";
import { UNCOMMITTED_VERSION } from "../src/kernel/object-cache.ts";
import type { CommitRequest } from "../src/kernel/committer.ts";
import { WorkerSource } from "../src/workers/worker-source.ts";
import { decodeOutcomes, decodeToWorker, encodeOutcomes, encodeToWorker, type Envelope, type WireAttempt } from "../src/workers/wire.ts";

/** What the receiving thread gets: the binary part as is, the rest through structured clone. */
function posted(envelope: Envelope): Envelope {
  return { bin: envelope.bin, extra: structuredClone(envelope.extra) };
}

function attempt(number: number, args: unknown, overrides: Partial<WireAttempt> = {}): WireAttempt {
  return { number, after: undefined, kind: "session.message", name: "message from alice", type: "session-message", timeoutMs: 100, appTimeMs: 5, affinity: "17", args, logFields: { session: "alice" }, ...overrides };
}

function roundTripAttempts(attempts: WireAttempt[]): { envelope: Envelope; decoded: readonly WireAttempt[] } {
  const envelope = encodeToWorker({ commits: [], decidedUpTo: 0, lastSeq: 9, durableSeq: 0, ids: undefined, backlogs: undefined, attempts }, 0);
  return { envelope, decoded: decodeToWorker(posted(envelope)).attempts };
}

function request(overrides: Partial<CommitRequest> = {}): CommitRequest {
  return { startSeq: 3, objectReads: [1n, 2n], bindingReads: new Set(["a.acct.1"]), rangeReads: [], objectWrites: [{ id: 1n, bytes: new Uint8Array([1, 2]) }], bindingWrites: [], effects: [], ...overrides };
}

describe("messages between threads", () => {
  it("carries a byte array with exactly its bytes, not the buffer it is a view into", () => {
    const socketChunk = Buffer.alloc(64 * 1024, 7);
    const message = socketChunk.subarray(100, 124);
    const { envelope, decoded } = roundTripAttempts([attempt(1, { session: 42n, message })]);
    assert.ok(envelope.bin.byteLength < 512, `the message holds ${envelope.bin.byteLength} bytes`);
    assert.deepEqual(envelope.extra, [], "nothing left for structured clone");
    const args = decoded[0]!.args as { session: bigint; message: Uint8Array };
    assert.equal(args.session, 42n);
    assert.deepEqual([...args.message], [...message]);
  });

  it("round-trips plain data of every kind, and sends anything else by structured clone", () => {
    const plain = { n: -0, nan: NaN, big: 2n ** 64n - 1n, text: "héllo \u{1F600}", yes: true, no: false, none: null, missing: undefined, list: [1, [2, { deep: "x" }]], bytes: new Uint8Array([0, 255]) };
    const cyclic: Record<string, unknown> = { name: "loop" };
    cyclic.self = cyclic;
    const sparse: number[] = [1];
    sparse[2] = 3;
    const others = [new Map([["k", 1]]), new Date(1_700_000_000_000), new Set([1]), -1n, sparse, cyclic, new Float64Array([1.5])];
    const { envelope, decoded } = roundTripAttempts([attempt(1, plain), ...others.map((args, i) => attempt(i + 2, args))]);
    assert.deepEqual(decoded[0]!.args, plain);
    assert.ok(Object.is((decoded[0]!.args as { n: number }).n, -0));
    assert.equal(envelope.extra.length, others.length, "each value that is not plain data is cloned whole");
    others.forEach((value, i) => assert.deepEqual(decoded[i + 1]!.args, value));
  });

  it("decodes repeated names and keys, including after a value that fell back to clone", () => {
    const attempts = [
      attempt(1, { fresh: 1, map: new Map([[1, 2]]) }),
      attempt(2, { fresh: 2 }),
      ...Array.from({ length: 64 }, (_, i) => attempt(i + 3, { fresh: i, other: "x" }, { name: i % 2 === 0 ? "even" : "odd", affinity: undefined, logFields: undefined })),
      // Attempt numbers pass 2^32 in a day of a busy server.
      attempt(2 ** 40, { fresh: 0 }, { after: 2 ** 40 - 1 }),
    ];
    const { decoded } = roundTripAttempts(attempts);
    assert.deepEqual(decoded, attempts);
  });

  it("tells a worker of its own commits by attempt number, and the others of their writes", () => {
    const writes = { objects: [{ id: 7n, bytes: new Uint8Array([1]) }, { id: 8n, bytes: null }], bindings: [{ name: "a.x", id: 7n }] };
    const commits = [
      { seq: 11, ...writes, madeBy: { worker: 0, attempt: 40 } },
      { seq: 12, objects: [], bindings: [{ name: "a.y", id: null }] },
    ];
    const forWorker = (worker: number) => decodeToWorker(posted(encodeToWorker({ commits, decidedUpTo: 40, lastSeq: 12, durableSeq: 0, ids: undefined, backlogs: undefined, attempts: [] }, worker)));
    const maker = forWorker(0);
    assert.equal(maker.decidedUpTo, 40);
    assert.deepEqual(maker.commits, [{ seq: 11, ownAttempt: 40 }, { seq: 12, writes: { objects: [], bindings: [{ name: "a.y", id: null }] } }]);
    assert.deepEqual(forWorker(1).commits[0], { seq: 11, writes: { objects: [{ id: 7n, bytes: Buffer.from([1]) }, { id: 8n, bytes: null }], bindings: [{ name: "a.x", id: 7n }] } });
  });

  it("round-trips outcomes: read and write sets, effects, results and errors", () => {
    const payload = new Uint8Array(new ArrayBuffer(8192), 10, 10).fill(1);
    const effects = [{ to: "session", op: "send", session: 5n, payload }, { to: "log", level: "info", message: "hi", fields: { at: new Date(5) } }];
    const ranges = [{ prefix: "a.", after: undefined, found: "a.b" }];
    const error = { name: "TransactionConflictError", message: "object 9 changed", stack: "at x", code: "ERR_TXN_CONFLICT", retryable: true, on: { kind: "object" as const, id: 9n } };
    const message = {
      outcomes: [
        { number: 1, ok: true as const, request: request({ effects, rangeReads: ranges, bindingWrites: [{ name: "a.x", id: null }, { name: "a.y", id: 4n }] }), result: { moved: true } },
        { number: 2, ok: false as const, error },
        { number: 2 ** 33 + 3, ok: true as const, request: request(), result: new Map([["not", "plain"]]) },
      ],
      cutOff: [[5n, 70_000]] as [bigint, number][],
      wantIds: true,
      cacheHits: 12,
      cacheMisses: 3,
    };
    const envelope = encodeOutcomes(message);
    assert.equal(envelope.extra.length, 2, "only the log effect's Date and the Map result need a clone");
    const decoded = decodeOutcomes(posted(envelope));
    assert.deepEqual(decoded.cutOff, message.cutOff);
    assert.equal(decoded.wantIds, true);
    assert.deepEqual([decoded.cacheHits, decoded.cacheMisses], [12, 3]);
    const [first, second, third] = decoded.outcomes;
    assert.ok(first?.ok && second !== undefined && !second.ok && third?.ok);
    assert.deepEqual(first.result, { moved: true });
    assert.deepEqual(first.request.effects, effects);
    assert.equal((first.request.effects[0] as { payload: Uint8Array }).payload.byteLength, 10);
    assert.deepEqual(first.request.rangeReads, ranges);
    assert.deepEqual(first.request.bindingWrites, [{ name: "a.x", id: null }, { name: "a.y", id: 4n }]);
    assert.deepEqual([...first.request.objectReads], [1n, 2n]);
    assert.deepEqual([...first.request.bindingReads], ["a.acct.1"]);
    assert.deepEqual(second.error, error);
    assert.deepEqual(third.result, new Map([["not", "plain"]]));
    assert.deepEqual(decoded.outcomes.map((outcome) => outcome.number), [1, 2, 2 ** 33 + 3]);
  });
});

for (const mode of ["an overlay on a store read from disk", "a private copy of an in-memory store"]) {
  describe(`a worker's view of commits, kept in ${mode}`, () => {
    function source(): WorkerSource {
      const store = new MemoryDataStore();
      return new WorkerSource(mode.includes("copy") ? { copy: store } : { reads: store, catchUp: () => undefined }, 0, { first: 1000n, count: 10 });
    }

    it("applies its own commits from the writes it kept, at the sequence the main thread gives", () => {
      const view = source();
      view.askedToCommit(5, request({ objectWrites: [{ id: 1n, bytes: new Uint8Array([5]) }], bindingWrites: [{ name: "a.one", id: 1n }] }), undefined);
      view.askedToCommit(6, request({ objectWrites: [{ id: 2n, bytes: new Uint8Array([6]) }] }), undefined);
      // Attempt 5 committed at 3; attempt 6 was decided too (it conflicted): its writes never show.
      view.apply([{ seq: 2, writes: { objects: [{ id: 9n, bytes: new Uint8Array([9]) }], bindings: [] } }, { seq: 3, ownAttempt: 5 }], 3, 6);
      assert.deepEqual(view.readObject(1n), { bytes: new Uint8Array([5]), version: 3 });
      assert.deepEqual(view.readBinding("a.one"), { id: 1n, version: 3 });
      assert.deepEqual(view.readObject(9n), { bytes: new Uint8Array([9]), version: 2 });
      assert.equal(view.readObject(2n), undefined);
      assert.equal(view.begin(), 3);
      assert.throws(() => view.apply([{ seq: 4, ownAttempt: 6 }], 4, 6), /attempt 6, whose writes this worker does not have/);
    });

    it("shows an attempt run after others their undecided writes, and no other attempt's", () => {
      const view = source();
      view.askedToCommit(5, request({ objectWrites: [{ id: 1n, bytes: new Uint8Array([5]) }, { id: 4n, bytes: null }], bindingWrites: [{ name: "a.one", id: 1n }] }), undefined);
      view.askedToCommit(6, request({ objectWrites: [{ id: 1n, bytes: new Uint8Array([6]) }, { id: 2n, bytes: new Uint8Array([6]) }], bindingWrites: [{ name: "a.two", id: null }] }), 5);
      view.askedToCommit(7, request({ objectWrites: [{ id: 3n, bytes: new Uint8Array([7]) }] }), undefined);
      view.apply([{ seq: 1, writes: { objects: [{ id: 4n, bytes: new Uint8Array([1]) }], bindings: [{ name: "a.two", id: 4n }] } }], 1, 0);
      assert.equal(view.runAfter(6), true);
      // The latest link's write wins; uncommitted writes carry a version no cache keeps.
      assert.deepEqual(view.readObject(1n), { bytes: new Uint8Array([6]), version: UNCOMMITTED_VERSION });
      assert.deepEqual(view.readObject(2n), { bytes: new Uint8Array([6]), version: UNCOMMITTED_VERSION });
      assert.deepEqual(view.readBinding("a.one"), { id: 1n, version: UNCOMMITTED_VERSION });
      assert.equal(view.readObject(4n), undefined, "removed by attempt 5");
      assert.equal(view.readBinding("a.two"), undefined, "unbound by attempt 6");
      assert.equal(view.readObject(3n), undefined, "attempt 7 is not in the chain");
      view.endChain();
      assert.equal(view.readObject(1n), undefined);
      assert.deepEqual(view.readObject(4n), { bytes: new Uint8Array([1]), version: 1 });
      // Once attempt 5 committed, its writes are in the view with their sequence; 6 is still undecided.
      view.apply([{ seq: 2, ownAttempt: 5 }], 2, 5);
      assert.equal(view.runAfter(6), true);
      assert.deepEqual(view.readBinding("a.one"), { id: 1n, version: 2 });
      assert.deepEqual(view.readObject(1n), { bytes: new Uint8Array([6]), version: UNCOMMITTED_VERSION });
      view.endChain();
    });

    it("refuses to run an attempt after one that failed here, until that one is decided", () => {
      const view = source();
      view.failed(8);
      assert.equal(view.runAfter(8), false);
      view.apply([], 1, 8);
      assert.equal(view.runAfter(8), true);
      view.endChain();
    });

    it("keeps the writes of attempts not yet decided", () => {
      const view = source();
      view.askedToCommit(7, request({ objectWrites: [{ id: 3n, bytes: new Uint8Array([7]) }] }), undefined);
      view.apply([], 1, 6);
      view.apply([{ seq: 2, ownAttempt: 7 }], 2, 7);
      assert.deepEqual(view.readObject(3n), { bytes: new Uint8Array([7]), version: 2 });
    });
  });
}
