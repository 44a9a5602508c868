import { MAX_MESSAGE_BYTES } from "@shardless/protocol";
import { activeTransaction } from "../api/active-transaction.js";
import { managed } from "../api/managed.js";
import type { Ref } from "../api/ref.js";
import { Delivery, type ClientSession } from "../api/session.js";
import type { TaskContext } from "../api/types.js";
import { changesOnlyWhenMarked } from "../kernel/transaction.js";

/** What a stored session asks of the session service of the server running the task. */
export interface SessionOperations {
  send(sessionId: bigint, message: Uint8Array): void;
  disconnect(sessionId: bigint): void;
  /** Called from the session's removingObject hook: game code removed the session. */
  removing(session: ClientSessionRecord, sessionId: bigint, ctx: TaskContext): void;
}

/** Name under which the session service is installed in the kernel. */
export const SESSION_SERVICE = "sessions";

/**
 * The stored form of a client session: a managed object bound under `s.session.<id>` while the
 * session lives. Its methods reach the session service through the running transaction.
 */
@managed("shardless.ClientSession")
export class ClientSessionRecord implements ClientSession {
  /** False once the session has been disconnected. */
  connected = true;
  /** The application's listener for this session. */
  listener: Ref | null = null;
  /** Ids of the channels the session is a member of. */
  channels = new Set<bigint>();

  constructor(readonly name: string) {}

  get maxMessageLength(): number {
    return MAX_MESSAGE_BYTES;
  }

  isConnected(): boolean {
    activeTransaction("ClientSession.isConnected");
    return this.connected;
  }

  send(message: Uint8Array, _delivery: Delivery = Delivery.RELIABLE): this {
    // Every delivery mode is satisfied by the reliable, ordered transports.
    const tx = activeTransaction("ClientSession.send");
    tx.service<SessionOperations>(SESSION_SERVICE).send(tx.idOf(this), message);
    return this;
  }

  disconnect(): void {
    const tx = activeTransaction("ClientSession.disconnect");
    tx.service<SessionOperations>(SESSION_SERVICE).disconnect(tx.idOf(this));
  }

  /** `removeObject(session)` disconnects the client, with the listener told exactly once. */
  removingObject(ctx: TaskContext): void {
    const tx = activeTransaction("ClientSession.removingObject");
    tx.service<SessionOperations>(SESSION_SERVICE).removing(this, tx.idOf(this), ctx);
  }
}

// The session and channel services mark a session record whenever they change it.
changesOnlyWhenMarked(ClientSessionRecord);
