import { MAX_MESSAGE_BYTES, encodeMessage } from "@shardless/protocol";
import { ManagedObjectError, MessageRejectedError } from "../api/errors.js";
import { isManagedObject } from "../api/managed.js";
import { Ref } from "../api/ref.js";
import type { ClientSessionListener } from "../api/session.js";
import type { AppListener, TaskContext } from "../api/types.js";
import { serviceKey } from "../kernel/data-manager.js";
import type { TaskBody } from "../kernel/task-runtime.js";
import { callSync, currentTransaction, type Transaction } from "../kernel/transaction.js";
import { ClientSessionRecord, type SessionOperations } from "./client-session-record.js";
import type { SessionEffect, SessionView } from "./session-effects.js";

const SESSION_PREFIX = "session.";
const APP_KEY = serviceKey("app");

/** What the session tasks need from the channel service. */
export interface ChannelHooks {
  /** Removes an ending session from its channels, inside its end task. */
  removeFromAll(tx: Transaction, session: ClientSessionRecord, sessionId: bigint): void;
  /** Handles a member's channel message inside the session's task; false if it was dropped. */
  receiveFromClient(ctx: TaskContext, tx: Transaction, session: ClientSessionRecord, sessionId: bigint, channelId: bigint, message: Uint8Array): boolean;
}

/** Where kinds of task are defined: the kernel, or a worker's task runtime. */
export interface TaskKinds {
  defineTask(kind: string, body: TaskBody): void;
}

/** Arguments of the session service's kinds of task (plain data: they may go to a worker). */
export interface LoginArgs {
  /** Names the connection waiting for this login, on the main thread. */
  readonly login: number;
  readonly name: string;
}
export interface MessageArgs {
  readonly session: bigint;
  readonly message: Uint8Array;
}
export interface ChannelMessageArgs extends MessageArgs {
  readonly channel: bigint;
}
export interface EndArgs {
  readonly session: bigint;
  readonly graceful: boolean;
  /** False for the clean-up after `disconnected` failed: the session is removed untold. */
  readonly notify: boolean;
}

/** What a login task decided. */
export type LoginOutcome = { readonly id: bigint } | { readonly refused: string };

/**
 * The transactional half of the session service: the tasks that log a session in, run its messages
 * and end it, and what game code asks of a session inside a task. It runs wherever tasks run (the
 * main thread or a worker); what it does to connections it describes as {@link SessionEffect}s.
 */
export class SessionTasks implements SessionOperations {
  private channelHooks: ChannelHooks | undefined;
  /** The session each running login task is creating: sends to it are held for its login. */
  private readonly loginsInFlight = new Map<Transaction, bigint>();
  /**
   * Bytes the running transaction has queued per session, for the write-buffer check. Tasks run
   * synchronously, one at a time on a thread, so one slot serves: a WeakMap entry per sending task
   * cost about 3% of the main thread in the echo benchmark.
   */
  private queued: { tx: Transaction | undefined; bytes: Map<bigint, number> } = { tx: undefined, bytes: new Map() };
  /** Sessions a running transaction is ending itself (so removingObject does not end them twice). */
  private readonly endingInTransaction = new WeakMap<Transaction, Set<bigint>>();

  constructor(
    private readonly view: SessionView,
    private readonly writeBufferBytes: number,
  ) {}

  /** Connects the channel service (which depends on this one). */
  installChannels(hooks: ChannelHooks): void {
    this.channelHooks = hooks;
  }

  /** Defines the session service's kinds of task in `kinds`. */
  defineTasks(kinds: TaskKinds): void {
    kinds.defineTask("session.login", (ctx, tx, args) => this.loginTask(ctx, tx, args as LoginArgs));
    kinds.defineTask("session.message", (ctx, tx, args) => this.messageTask(ctx, tx, args as MessageArgs));
    kinds.defineTask("session.channel", (ctx, tx, args) => this.channelTask(ctx, tx, args as ChannelMessageArgs));
    kinds.defineTask("session.end", (ctx, tx, args) => this.endTask(ctx, tx, args as EndArgs));
  }

  // ---- SessionOperations (called from game code inside a task) ----

  send(sessionId: bigint, message: Uint8Array): void {
    const tx = currentTransaction("ClientSession.send");
    if (!(message instanceof Uint8Array)) throw new TypeError("ClientSession.send takes a Uint8Array");
    if (message.length > MAX_MESSAGE_BYTES) throw new RangeError(`message of ${message.length} bytes exceeds maxMessageLength (${MAX_MESSAGE_BYTES})`);
    // A session whose client is gone, or going, drops what it is sent: its disconnect is on its way,
    // and a broadcast must not fail because one player left.
    const waiting = this.loginsInFlight.get(tx) === sessionId ? 0 : this.view.backlogOf(sessionId);
    if (waiting === undefined) return;
    const payload = encodeMessage({ op: "SESSION_MESSAGE", message });
    const queued = this.queuedBy(tx);
    const already = queued.get(sessionId) ?? 0;
    const backlog = waiting + already + payload.length + 2;
    if (backlog > this.writeBufferBytes) {
      // A full buffer is a fact about the connection, whatever becomes of this task: a client that
      // cannot keep up is cut off (its disconnect follows), and this send is refused.
      this.view.cutOff(sessionId, backlog);
      throw new MessageRejectedError(`session ${sessionId}'s write buffer is full (${backlog} > ${this.writeBufferBytes} bytes)`);
    }
    queued.set(sessionId, already + payload.length + 2);
    this.effect(tx, { to: "session", op: "send", session: sessionId, payload });
  }

  disconnect(sessionId: bigint): void {
    this.effect(currentTransaction("ClientSession.disconnect"), { to: "session", op: "disconnect", session: sessionId });
  }

  removing(session: ClientSessionRecord, sessionId: bigint, ctx: TaskContext): void {
    const tx = currentTransaction("ClientSession.removingObject");
    if (this.endingInTransaction.get(tx)?.has(sessionId)) return;
    // Game code removed the session object: tell its listener now, in this task (exactly once),
    // and close the connection when the task commits.
    this.tellListener(tx, ctx, session, false);
    this.channelHooks?.removeFromAll(tx, session, sessionId);
    session.connected = false; // being removed: no mark needed, the removal is the write
    tx.unbind(sessionKey(sessionId), sessionKey(sessionId));
    this.effect(tx, { to: "session", op: "close", session: sessionId });
  }

  // ---- the tasks ----

  private loginTask(ctx: TaskContext, tx: Transaction, args: LoginArgs): LoginOutcome {
    const app = tx.getBound(APP_KEY, APP_KEY, false) as AppListener;
    if (typeof app.loggedIn !== "function") return { refused: "the application has no loggedIn method" };
    const session = new ClientSessionRecord(args.name);
    const id = tx.idOf(session);
    tx.bind(sessionKey(id), session);
    // First effect of the login: what loggedIn sends or joins is released after it, in order.
    this.effect(tx, { to: "session", op: "attach", session: id, login: args.login });
    this.loginsInFlight.set(tx, id);
    let listener: ClientSessionListener | null;
    try {
      listener = callSync(`${app.constructor.name}.loggedIn`, () => app.loggedIn!(ctx, session));
    } finally {
      this.loginsInFlight.delete(tx);
    }
    if (listener === null || listener === undefined) {
      this.channelHooks?.removeFromAll(tx, session, id); // loggedIn may have joined it somewhere
      tx.unbind(sessionKey(id), sessionKey(id));
      this.markEnding(tx, id);
      tx.remove(session);
      this.effect(tx, { to: "session", op: "detach", session: id });
      return { refused: "the application's loggedIn returned null" };
    }
    if (!isManagedObject(listener) || typeof listener.receivedMessage !== "function" || typeof listener.disconnected !== "function") {
      throw new ManagedObjectError("loggedIn must return a managed object with receivedMessage(ctx, message) and disconnected(ctx, graceful), or null");
    }
    session.listener = new Ref(tx.idOf(listener));
    tx.markForUpdate(session);
    return { id };
  }

  private messageTask(ctx: TaskContext, tx: Transaction, args: MessageArgs): void {
    const session = liveSession(tx, args.session);
    if (session === undefined) return; // the application removed the session meanwhile
    const listener = session.listener === null ? undefined : (tx.tryGetObject(session.listener.id) as ClientSessionListener | undefined);
    if (listener === undefined) return;
    callSync(`${listener.constructor.name}.receivedMessage`, () => listener.receivedMessage(ctx, asBuffer(args.message)));
  }

  private channelTask(ctx: TaskContext, tx: Transaction, args: ChannelMessageArgs): boolean {
    const session = liveSession(tx, args.session);
    if (session === undefined || this.channelHooks === undefined) return false;
    return this.channelHooks.receiveFromClient(ctx, tx, session, args.session, args.channel, asBuffer(args.message));
  }

  private endTask(ctx: TaskContext, tx: Transaction, args: EndArgs): void {
    const session = liveSession(tx, args.session);
    if (session === undefined) return;
    if (args.notify) this.tellListener(tx, ctx, session, args.graceful);
    this.channelHooks?.removeFromAll(tx, session, args.session);
    session.connected = false; // removed below: no mark needed, the removal is the write
    const key = sessionKey(args.session);
    tx.unbind(key, key);
    this.markEnding(tx, args.session);
    tx.remove(session);
    this.effect(tx, { to: "session", op: "detach", session: args.session });
  }

  private tellListener(tx: Transaction, ctx: TaskContext, session: ClientSessionRecord, graceful: boolean): void {
    const listener = session.listener === null ? undefined : (tx.tryGetObject(session.listener.id) as ClientSessionListener | undefined);
    if (listener !== undefined) callSync(`${listener.constructor.name}.disconnected`, () => listener.disconnected(ctx, graceful));
  }

  private effect(tx: Transaction, effect: SessionEffect): void {
    tx.addEffect(effect);
  }

  private queuedBy(tx: Transaction): Map<bigint, number> {
    if (this.queued.tx !== tx) this.queued = { tx, bytes: new Map() };
    return this.queued.bytes;
  }

  private markEnding(tx: Transaction, id: bigint): void {
    let ending = this.endingInTransaction.get(tx);
    if (ending === undefined) {
      ending = new Set();
      this.endingInTransaction.set(tx, ending);
    }
    ending.add(id);
  }
}

/**
 * The record of session `id`, or undefined once it has ended or been removed. Read by id rather
 * than through its binding: the record and the binding are created and removed together, and a
 * message's task then reads no binding at all (two fewer store reads for every message).
 */
function liveSession(tx: Transaction, id: bigint): ClientSessionRecord | undefined {
  const session = tx.tryGetObject(id);
  return session instanceof ClientSessionRecord ? session : undefined;
}

/** The binding key of the stored session with `id`. */
export function sessionKey(id: bigint): string {
  return serviceKey(SESSION_PREFIX + id.toString());
}

/** The prefix of every stored session's binding key. */
export const SESSION_KEY_PREFIX = serviceKey(SESSION_PREFIX);

/**
 * `bytes` as a Node Buffer over the same memory. A client's message arrives as a Buffer (a slice of
 * the socket's read) on the main thread and as a plain Uint8Array on a worker; handlers get a
 * Buffer either way, so code that uses Buffer's methods does not change behaviour with `workers`.
 */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
