import { activeTransaction, type ActiveTransaction } from "../api/active-transaction.js";
import {
  AsyncHandlerError,
  ManagedObjectError,
  NameNotBoundError,
  ObjectNotFoundError,
  TransactionConflictError,
  type ConflictSource,
  TransactionNotActiveError,
  TransactionTimeoutError,
} from "../api/errors.js";
import { isManagedObject } from "../api/managed.js";
import { PeriodicTaskHandle, Ref } from "../api/ref.js";
import type { TaskContext } from "../api/types.js";
import { compareUtf8 } from "./data-store.js";
import type { Clock } from "./clock.js";
import { objectCodec, visitRefs } from "./codec.js";
import type { CommitRequest, RangeRead, TransactionSource } from "./committer.js";
import type { Effect } from "./effects.js";
import type { ObjectCache } from "./object-cache.js";

/** A base class whose constructor returns the object it is given, so a subclass can add its private field to any object. */
class Stamp {
  constructor(target: object) {
    return target;
  }
}

/**
 * Which transaction an object instance belongs to: the entry of the last transaction that loaded or
 * stored it. Such an instance belongs to that task, and any other task must reach the object
 * through a Ref or a binding. The entry is held in a private field that this class adds to the
 * instance: game code cannot see it (no reflection lists it, spreading an object does not copy it),
 * it works on frozen objects, and unlike a WeakSet of claimed objects plus a Map from object to id
 * per transaction, it costs no hash insertions per loaded object and no ephemeron work in the
 * garbage collector.
 */
class Claim extends Stamp {
  #entry: Entry | undefined;

  private constructor(target: object, entry: Entry | undefined) {
    super(target);
    this.#entry = entry;
  }

  /** The entry of the transaction that last loaded or stored `obj`, if one did and kept it. */
  static entryOf(obj: object): Entry | undefined {
    return #entry in obj ? obj.#entry : undefined;
  }

  /** Makes `obj` belong to the transaction of `entry`, or (undefined) to none. */
  static set(obj: object, entry: Entry | undefined): void {
    if (#entry in obj) obj.#entry = entry;
    else new Claim(obj, entry);
  }
}

/**
 * Classes whose instances change only through code that marks them for update: the server's own
 * records of sessions and channels. At commit, such an object that was loaded and not marked is
 * known to be unchanged without encoding it again (most tasks read a session record and a channel
 * and change neither).
 */
const markedWritesClasses = new WeakSet<object>();

/**
 * With `SHARDLESS_CHECK_MARKED_WRITES=1` (the test suites set it), such objects are encoded anyway,
 * and a change that was not marked fails the commit: a change of the server's own code that forgot to
 * mark a record shows in every test that exercises it, instead of being lost. Not configuration but
 * an assertion switch, read where it is used so that it reaches the worker threads and server
 * processes tests start, however they were started.
 */
// eslint-disable-next-line no-restricted-syntax
const CHECK_MARKED_WRITES = process.env.SHARDLESS_CHECK_MARKED_WRITES === "1";

/**
 * Declares that instances of `cls` (exactly that class) change only through code that calls
 * {@link Transaction.markForUpdate} on them, so that commits skip comparing their encodings.
 * For the server's own records only: game code's objects are always compared.
 */
export function changesOnlyWhenMarked(cls: abstract new (...args: never[]) => object): void {
  markedWritesClasses.add(cls);
}

type EntryState = "loaded" | "new" | "removed";

interface Entry {
  /** The transaction that loaded or stored the object. */
  readonly owner: Transaction;
  readonly id: bigint;
  readonly object: object;
  /** The bytes the object was loaded from; undefined for an object new in this transaction. */
  readonly loadedBytes: Uint8Array | undefined;
  /** The version it was loaded at (0 for a new object). */
  readonly version: number;
  state: EntryState;
  forUpdate: boolean;
  /** True when the instance came from the thread's cache: the object is read often. */
  readonly fromCache: boolean;
  /** True while the object's removingObject hook runs. */
  removing?: boolean;
}

function removedError(entry: Entry): ObjectNotFoundError {
  return new ObjectNotFoundError(`this ${entry.object.constructor.name} (object ${entry.id}) was removed by this task`);
}

/** An instance a transaction wrote, with the bytes it was encoded to: see {@link Transaction.takeWrittenInstances}. */
export interface WrittenInstance {
  readonly id: bigint;
  readonly object: object;
  readonly bytes: Uint8Array;
}

/** Hooks a transaction needs from services above the kernel. */
export interface TransactionHooks {
  cancelPeriodicTask(tx: Transaction, handleId: bigint): void;
  /** A per-server service by name. */
  service<T>(name: string): T;
  /** Decoded objects kept between this thread's tasks, if any. */
  readonly objects?: ObjectCache;
}

/** Options of one transaction. */
export interface TransactionOptions {
  /** Time budget in ms on the kernel clock; `Infinity` for none. */
  readonly timeoutMs: number;
  /** The task's logical time (application time at start). */
  readonly appTimeMs: number;
  /** Name of the task, for messages. */
  readonly name: string;
}

/**
 * One attempt of one task: a private view of the data plus the changes and effects it will commit.
 *
 * Reads come from the committed state as of the transaction's start sequence; reading something
 * committed since then aborts at once with a conflict (so game code never sees a torn state).
 * Loaded objects are decoded (or taken from the thread's {@link ObjectCache}) and kept by id, so
 * within a task a Ref always yields the same JS object. At commit every loaded object is encoded
 * again: the bytes that differ are the writes, and the objects left as they were go back to the cache.
 */
/** Stands in {@link Transaction.referencers} for a binding that names an object. */
export const BOUND: object = Object.freeze({ binding: true });

export class Transaction implements ActiveTransaction {
  readonly startSeq: number;
  readonly appTimeMs: number;
  readonly name: string;
  /** Set by the kernel right after construction. */
  context!: TaskContext;
  private state: "active" | "committed" | "aborted" = "active";
  private readonly startedAt: number;
  private readonly deadline: number;
  private readonly entries = new Map<bigint, Entry>();
  private readonly bindingReads = new Set<string>();
  private readonly bindingWrites = new Map<string, bigint | null>();
  private readonly rangeReads: RangeRead[] = [];
  private readonly effects: Effect[] = [];
  private readonly beforeCommitHooks: (() => void)[] = [];
  /** What this transaction writes that the thread's cache may keep once the commit's version is known. */
  private writtenInstances: WrittenInstance[] | undefined;

  constructor(
    private readonly committer: TransactionSource,
    private readonly clock: Clock,
    private readonly hooks: TransactionHooks,
    private readonly options: TransactionOptions,
  ) {
    this.startSeq = committer.begin();
    this.startedAt = clock.now();
    this.deadline = this.startedAt + options.timeoutMs;
    this.appTimeMs = options.appTimeMs;
    this.name = options.name;
  }

  /** True until the transaction commits or aborts. */
  get active(): boolean {
    return this.state === "active";
  }

  /** Fraction of the time budget left, from 1 down to 0 (always 1 without a budget). */
  budgetLeft(): number {
    if (!Number.isFinite(this.options.timeoutMs)) return 1;
    return Math.max(0, (this.deadline - this.clock.now()) / this.options.timeoutMs);
  }

  /** Checks that the transaction may still touch data. */
  check(what: string): void {
    if (this.state !== "active") {
      throw new TransactionNotActiveError(`${what} used after its task ended; keep Refs or binding names, not contexts or objects`);
    }
    if (this.clock.now() > this.deadline) {
      throw new TransactionTimeoutError(`task ${this.name} ran longer than its ${this.options.timeoutMs} ms budget`);
    }
  }

  getObject(id: bigint, forUpdate: boolean): object {
    this.check("a Ref");
    const entry = this.entries.get(id) ?? this.load(id);
    if (entry.state === "removed") throw new ObjectNotFoundError(`object ${id} was removed by this task`);
    if (forUpdate) entry.forUpdate = true;
    return entry.object;
  }

  /** The object with `id` if it exists and was not removed by this transaction; undefined otherwise. */
  tryGetObject(id: bigint): object | undefined {
    this.check("a Ref");
    const entry = this.entries.get(id) ?? this.tryLoad(id);
    return entry === undefined || entry.state === "removed" ? undefined : entry.object;
  }

  /** True when `obj` already has an id in this transaction (loaded, or new and referenced). */
  isKnown(obj: object): boolean {
    return this.entryOf(obj) !== undefined;
  }

  /** True when `obj` has an id in this transaction and has not been removed by it. */
  isLive(obj: object): boolean {
    const entry = this.entryOf(obj);
    return entry !== undefined && entry.state !== "removed";
  }

  /**
   * Who names each object in what this transaction will store: for every id, the objects it holds
   * that have a Ref to it, and `BOUND` when a binding it writes names it. One pass over everything
   * held, however many ids are asked about.
   */
  referencers(): Map<bigint, Set<object>> {
    const named = new Map<bigint, Set<object>>();
    const add = (id: bigint, by: object) => {
      let by_ = named.get(id);
      if (by_ === undefined) named.set(id, (by_ = new Set()));
      by_.add(by);
    };
    for (const bound of this.bindingWrites.values()) if (bound !== null) add(bound, BOUND);
    for (const entry of this.entries.values()) {
      if (entry.state === "removed") continue;
      const object = entry.object;
      for (const key of Object.keys(object)) visitRefs((object as Record<string, unknown>)[key], (id) => add(id, object));
    }
    return named;
  }

  /** Runs `hook` when the transaction commits, before its changes are collected (hooks may change objects). */
  beforeCommit(hook: () => void): void {
    this.check("beforeCommit");
    this.beforeCommitHooks.push(hook);
  }

  cancelPeriodicTask(handleId: bigint): void {
    this.check("PeriodicTaskHandle.cancel");
    this.hooks.cancelPeriodicTask(this, handleId);
  }

  service<T>(name: string): T {
    return this.hooks.service<T>(name);
  }

  /**
   * The id of the managed object `obj`; a new object is assigned an id and will be stored.
   * @throws {ManagedObjectError} if `obj` is not a managed object.
   * @throws {TransactionNotActiveError} if `obj` was loaded by another transaction.
   */
  idOf(obj: object): bigint {
    this.check("DataManager");
    const known = this.entryOf(obj);
    if (known !== undefined) {
      if (known.state === "removed") throw removedError(known);
      return known.id;
    }
    this.assertUsable(obj);
    const id = this.committer.allocateId();
    this.track({ owner: this, id, object: obj, loadedBytes: undefined, version: 0, state: "new", forUpdate: false, fromCache: false });
    return id;
  }

  /** The object bound to the full binding key `key`. */
  getBound(key: string, name: string, forUpdate: boolean): object {
    const id = this.readBinding(key);
    if (id === undefined) throw new NameNotBoundError(name);
    const entry = this.entries.get(id) ?? this.tryLoad(id);
    if (entry === undefined || entry.state === "removed") {
      throw new ObjectNotFoundError(`the object bound to ${JSON.stringify(name)} has been removed`);
    }
    if (forUpdate) entry.forUpdate = true;
    return entry.object;
  }

  /** True when the full binding key `key` is bound. */
  isBound(key: string): boolean {
    return this.readBinding(key) !== undefined;
  }

  /** Binds the full binding key `key` to `obj` (storing `obj` if new). */
  bind(key: string, obj: object): void {
    const id = this.idOf(obj);
    this.bindingWrites.set(key, id);
  }

  /** Removes the binding `key`. */
  unbind(key: string, name: string): void {
    if (this.readBinding(key) === undefined) throw new NameNotBoundError(name);
    this.bindingWrites.set(key, null);
  }

  /** The next bound key after `after` within `prefix`, seeing this transaction's own changes. */
  nextBoundKey(after: string | undefined, prefix: string): string | undefined {
    this.check("DataManager.nextBoundName");
    let committed = this.committer.nextBindingName(after, prefix);
    while (committed !== undefined && this.bindingWrites.get(committed) === null) {
      committed = this.committer.nextBindingName(committed, prefix);
    }
    const range = { prefix, after, found: committed };
    if (this.committer.rangeChangedSince(range, this.startSeq)) this.conflict("a range of bindings", { kind: "range", prefix: range.prefix });
    this.rangeReads.push(range);
    let local: string | undefined;
    for (const [key, id] of this.bindingWrites) {
      if (id === null || !key.startsWith(prefix)) continue;
      if (after !== undefined && compareUtf8(key, after) <= 0) continue;
      if (local === undefined || compareUtf8(key, local) < 0) local = key;
    }
    if (committed === undefined) return local;
    if (local === undefined) return committed;
    return compareUtf8(committed, local) <= 0 ? committed : local;
  }

  /**
   * Removes `obj` at commit, after calling its `removingObject` hook.
   * @throws {ObjectNotFoundError} if it no longer exists.
   */
  remove(obj: object): void {
    this.check("DataManager.removeObject");
    const entry = this.entryOf(obj);
    if (entry === undefined) {
      this.assertUsable(obj);
      return; // never stored: nothing to remove
    }
    if (entry.state === "removed" || entry.removing) return;
    // The object stays readable while its hook runs; the flag stops a hook that reaches this object
    // again from removing it twice.
    entry.removing = true;
    try {
      const hook = (obj as { removingObject?: unknown }).removingObject;
      if (typeof hook === "function") {
        callSync(`${obj.constructor.name}.removingObject`, () => (hook as (ctx: TaskContext) => unknown).call(obj, this.context));
      }
    } finally {
      entry.removing = false;
    }
    entry.state = "removed";
  }

  /** Makes `obj` be written at commit. */
  markForUpdate(obj: object): void {
    this.check("DataManager.markForUpdate");
    const entry = this.entryOf(obj);
    if (entry === undefined) {
      this.assertUsable(obj);
      return; // a new object is written anyway once referenced
    }
    if (entry.state === "removed") throw removedError(entry);
    entry.forUpdate = true;
  }

  /** Queues `effect` to be released once this transaction is durable; dropped if it aborts. */
  addEffect(effect: Effect): void {
    this.check("an effect");
    this.effects.push(effect);
  }

  /**
   * Ends the transaction by committing it.
   * @returns a promise that resolves when the commit is durable and its effects have run.
   * @throws {TransactionConflictError} and others: the transaction is then aborted.
   */
  commit(): Promise<void> {
    const request = this.prepareCommit();
    try {
      const durable = this.committer.commit(request);
      this.finish("committed");
      return durable;
    } catch (error) {
      this.abort();
      if (error instanceof TransactionConflictError && error.on?.kind === "object") throw new TransactionConflictError(error.message, { on: this.named(error.on) });
      throw error;
    }
  }

  /**
   * Runs the before-commit hooks and collects what this transaction asks the committer to make
   * permanent, leaving it active: the caller commits the request (see {@link commit}), or sends it
   * to the thread that validates commits and then calls {@link markCommitted}.
   * @throws whatever a hook or the check of the changes throws; the transaction is then aborted.
   */
  prepareCommit(): CommitRequest {
    try {
      this.check("commit");
      for (const hook of this.beforeCommitHooks) hook();
      return this.buildCommitRequest();
    } catch (error) {
      this.abort();
      throw error;
    }
  }

  /**
   * Ends a transaction whose request (from {@link prepareCommit}) was validated, here or by another
   * thread.
   * @param version the commit's sequence number, when it is known already: the instances it wrote
   *   go to the thread's cache at that version (see {@link takeWrittenInstances} otherwise).
   */
  markCommitted(version?: number): void {
    if (this.state !== "active") return;
    this.finish("committed");
    if (version !== undefined) this.cacheWritten(version);
  }

  /**
   * The instances this transaction wrote that are exactly what decoding their new bytes gives, for
   * a thread that learns the commit's version later: it may cache them at that version then
   * ({@link ObjectCache.put}), and only if the commit succeeds.
   */
  takeWrittenInstances(): readonly WrittenInstance[] | undefined {
    const written = this.writtenInstances;
    this.writtenInstances = undefined;
    return written;
  }

  private cacheWritten(version: number): void {
    const cache = this.hooks.objects;
    const written = this.takeWrittenInstances();
    if (cache === undefined || written === undefined) return;
    for (const each of written) cache.put(each.id, version, each.object, each.bytes);
  }

  /** Ends the transaction with no effect. Idempotent. */
  abort(): void {
    if (this.state !== "active") return;
    // Objects created in this attempt may be created again by a retry of the same code, or be
    // reused by code that made them outside the task: they are free again.
    for (const entry of this.entries.values()) {
      if (entry.loadedBytes === undefined) Claim.set(entry.object, undefined);
    }
    this.finish("aborted");
  }

  private finish(state: "committed" | "aborted"): void {
    this.state = state;
    this.committer.end(this.startSeq);
  }

  private buildCommitRequest(): CommitRequest {
    const objectWrites: { id: bigint; bytes: Uint8Array | null }[] = [];
    const objectReads: bigint[] = [];
    const removed = new Set<bigint>();
    for (const entry of this.entries.values()) {
      if (entry.loadedBytes !== undefined) objectReads.push(entry.id);
      if (entry.state === "removed") {
        removed.add(entry.id);
        // An object created and removed in the same task was never stored: nothing to delete.
        if (entry.loadedBytes !== undefined) objectWrites.push({ id: entry.id, bytes: null });
        continue;
      }
      if (entry.state === "loaded" && !entry.forUpdate && markedWritesClasses.has(entry.object.constructor)) {
        if (CHECK_MARKED_WRITES) assertUnchanged(entry);
        // Its instances are made by the codec and changed only by the server's services; a frozen
        // one (game code can freeze anything) must not outlive this task.
        if (this.hooks.objects !== undefined && Object.isExtensible(entry.object)) this.hooks.objects.put(entry.id, entry.version, entry.object, entry.loadedBytes!);
        continue;
      }
      const bytes = objectCodec.encode(entry.object);
      if (entry.state === "new" || entry.forUpdate || !sameBytes(bytes, entry.loadedBytes!)) {
        objectWrites.push({ id: entry.id, bytes });
        const cache = this.hooks.objects;
        if (cache !== undefined && (entry.fromCache === true || cache.admitsWritten(entry.id)) && holdsOnlyImmutableValues(entry.object)) {
          // Once committed, the instance is what decoding these bytes at the commit's version gives.
          (this.writtenInstances ??= []).push({ id: entry.id, object: entry.object, bytes });
        }
      } else if (this.hooks.objects !== undefined && holdsOnlyStoredState(entry.object)) {
        // Read and left as decoded: whether this commit succeeds or not, the instance still is
        // what decoding its bytes at that version gives, and the next task may take it.
        this.hooks.objects.put(entry.id, entry.version, entry.object, entry.loadedBytes!);
      }
    }
    const bindingWrites = [...this.bindingWrites].map(([name, id]) => {
      if (id !== null && removed.has(id)) {
        throw new ObjectNotFoundError(`binding ${JSON.stringify(name)} would name object ${id}, which this task removed`);
      }
      return { name, id };
    });
    return {
      startSeq: this.startSeq,
      objectReads,
      bindingReads: this.bindingReads,
      rangeReads: this.rangeReads,
      objectWrites,
      bindingWrites,
      effects: this.effects,
    };
  }

  private readBinding(key: string): bigint | undefined {
    this.check("DataManager");
    if (this.bindingWrites.has(key)) return this.bindingWrites.get(key) ?? undefined;
    const record = this.committer.readBinding(key);
    this.bindingReads.add(key);
    // Absence is checked too: a binding removed after this task started must not read as unbound.
    if (record === undefined ? this.committer.bindingChangedSince(key, this.startSeq) : record.version > this.startSeq) {
      this.conflict(`binding ${JSON.stringify(key)}`, { kind: "binding", name: key });
    }
    return record?.id;
  }

  private load(id: bigint): Entry {
    const entry = this.tryLoad(id);
    if (entry === undefined) throw new ObjectNotFoundError(`object ${id} does not exist (it was removed, or never stored)`);
    return entry;
  }

  private tryLoad(id: bigint): Entry | undefined {
    const cache = this.hooks.objects;
    const heldVersion = cache?.versionHeld(id);
    if (heldVersion !== undefined) {
      const current = this.takeHeldIfCurrent(id, heldVersion);
      if (current !== undefined) return current;
    } else {
      cache?.missed();
    }
    const record = this.committer.readObject(id);
    if (record === undefined) {
      // Absence is a read too: if a concurrent task had just created it, we must not commit.
      if (this.committer.objectChangedSince(id, this.startSeq)) this.conflict(`object ${id}`, { kind: "object", id });
      return undefined;
    }
    if (record.version > this.startSeq) this.conflict(`object ${id}`, { kind: "object", id });
    // Only a held instance is looked up again (a lookup in a large cache is a cache miss of its own).
    const held = heldVersion === undefined ? undefined : cache!.take(id, record.version);
    const object = held?.object ?? objectCodec.decode(record.bytes);
    return this.trackLoaded(id, object, record.bytes, record.version, held !== undefined);
  }

  /**
   * The cache's instance of `id`, held at `heldVersion`, if that is the object's current version,
   * found without reading the object's bytes: the committing thread knows the versions of the
   * objects it read or wrote recently (a session's record and its listener, read by every message).
   */
  private takeHeldIfCurrent(id: bigint, heldVersion: number): Entry | undefined {
    // A source without version-only reads (a worker's) reads the record instead.
    if (this.committer.readObjectVersion === undefined) return undefined;
    const version = this.committer.readObjectVersion(id);
    if (version !== heldVersion) return undefined;
    if (version > this.startSeq) this.conflict(`object ${id}`, { kind: "object", id });
    const held = this.hooks.objects!.take(id, version)!;
    return this.trackLoaded(id, held.object, held.bytes, version, true);
  }

  private trackLoaded(id: bigint, object: object, loadedBytes: Uint8Array, version: number, fromCache: boolean): Entry {
    const entry: Entry = { owner: this, id, object, loadedBytes, version, state: "loaded", forUpdate: false, fromCache };
    this.track(entry);
    return entry;
  }

  private track(entry: Entry): void {
    this.entries.set(entry.id, entry);
    Claim.set(entry.object, entry);
  }

  /** This transaction's entry for the instance `obj`, if it loaded or stored it. */
  private entryOf(obj: object): Entry | undefined {
    const entry = Claim.entryOf(obj);
    return entry?.owner === this ? entry : undefined;
  }

  private assertUsable(obj: object): void {
    if (!isManagedObject(obj)) {
      const name = (obj as { constructor?: { name?: string } } | null)?.constructor?.name ?? typeof obj;
      throw new ManagedObjectError(`${name} is not a managed object (decorate its class with @managed)`);
    }
    if (Claim.entryOf(obj) !== undefined) {
      throw new TransactionNotActiveError(
        `this ${obj.constructor.name} was loaded or stored by another task; reach it in this task through a Ref or a binding`,
      );
    }
  }

  private conflict(what: string, on: ConflictSource): never {
    throw new TransactionConflictError(`${what} was changed by another task after this task started`, { on: this.named(on) });
  }

  /** `on`, with the binding name this task reached its object by, when it did. */
  private named(on: ConflictSource): ConflictSource {
    return nameConflict(on, this.bindingReads, (key) => (this.bindingWrites.has(key) ? this.bindingWrites.get(key) : this.committer.readBinding(key)?.id));
  }
}

/**
 * `on`, with the binding name the task reached its object by, when it did. Found only when a
 * conflict happens, from the bindings the task read: nothing is recorded on the read path for it.
 */
export function nameConflict(on: ConflictSource, bindingReads: Iterable<string>, boundId: (key: string) => bigint | null | undefined): ConflictSource {
  if (on.kind !== "object") return on;
  for (const key of bindingReads) {
    if (boundId(key) === on.id) return { ...on, binding: key };
  }
  return on;
}

/**
 * True when `obj` holds nothing its encoding leaves out, as a decoded instance does: no symbol or
 * non-enumerable own property, and not frozen or sealed. Only such an instance is kept for later
 * tasks, which would otherwise see state a fresh decode does not have.
 */
function holdsOnlyStoredState(obj: object, keys: readonly string[] = Object.keys(obj)): boolean {
  // Every own key, symbols and non-enumerable ones included, is among its enumerable string keys.
  return Object.isExtensible(obj) && Reflect.ownKeys(obj).length === keys.length;
}

/**
 * True when the stored state of `obj` is all it holds and no value in it can change or be shared
 * with another object: strings, numbers, booleans, bigints, null, undefined, Refs and task handles.
 * Such an instance is interchangeable with a decode of its encoding. An array or a dictionary, say,
 * could be shared with another object, which a decode would have copied.
 */
function holdsOnlyImmutableValues(obj: object): boolean {
  const keys = Object.keys(obj);
  if (!holdsOnlyStoredState(obj, keys)) return false;
  for (const key of keys) {
    if (!isImmutableValue((obj as Record<string, unknown>)[key])) return false;
  }
  return true;
}

function isImmutableValue(value: unknown): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "bigint":
    case "undefined":
      return true;
    case "number":
      return !Object.is(value, -0); // decodes as 0
    case "object": {
      if (value === null) return true;
      const proto: unknown = Object.getPrototypeOf(value);
      // A Ref or a handle holds its id only, which nothing changes.
      return proto === Ref.prototype || proto === PeriodicTaskHandle.prototype;
    }
    default:
      return false;
  }
}

/** Throws if a loaded object of a class that {@link changesOnlyWhenMarked} changed without a mark. */
function assertUnchanged(entry: Entry): void {
  if (sameBytes(objectCodec.encode(entry.object), entry.loadedBytes!)) return;
  throw new Error(`${entry.object.constructor.name} (object ${entry.id}) changed without markForUpdate: the change would be lost`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

/**
 * The kernel transaction running game code now, for services called from API objects.
 * @throws {TransactionNotActiveError} outside a task.
 */
export function currentTransaction(what: string): Transaction {
  const tx = activeTransaction(what);
  if (!(tx instanceof Transaction)) throw new Error(`${what}: not a kernel transaction`);
  return tx;
}

/**
 * Calls a game-code handler and insists that it is synchronous.
 * @throws {AsyncHandlerError} if it returned a Promise (which is then left to settle unobserved).
 */
export function callSync<T>(handler: string, call: () => T): T {
  const result = call();
  if (isThenable(result)) {
    // Swallow the promise's own outcome: its work runs outside any transaction and is refused.
    (result as PromiseLike<unknown>).then(undefined, () => undefined);
    throw new AsyncHandlerError(handler);
  }
  return result;
}

function isThenable(value: unknown): boolean {
  return (typeof value === "object" || typeof value === "function") && value !== null && typeof (value as { then?: unknown }).then === "function";
}
