import type { TaskContext } from "./types.js";

/**
 * How a message should travel. Over TCP and WebSocket every message is delivered reliably and in
 * order, which satisfies every mode; the modes exist for transports that can do less.
 */
export enum Delivery {
  UNRELIABLE = "UNRELIABLE",
  UNORDERED_RELIABLE = "UNORDERED_RELIABLE",
  ORDERED_UNRELIABLE = "ORDERED_UNRELIABLE",
  RELIABLE = "RELIABLE",
}

/**
 * A logged-in client, as game code sees it: a managed object, so it can be held through a `Ref`.
 * Every method must be called inside a task.
 */
export interface ClientSession {
  /** The name the client logged in with. */
  readonly name: string;
  /** Largest message `send` accepts, in bytes (65524 over the Darkstar protocol). */
  readonly maxMessageLength: number;
  /** True until the session has been disconnected (as of this task's view of the data). */
  isConnected(): boolean;
  /**
   * Sends `message` to the client if, and when, this task commits; messages reach a client in
   * commit order. A session that is disconnected, or whose connection has just dropped, drops
   * the message (check {@link isConnected} where that matters).
   * @throws {RangeError} if `message` is longer than {@link maxMessageLength}.
   * @throws {MessageRejectedError} (retryable) if the client's write buffer is full: it is not reading.
   */
  send(message: Uint8Array, delivery?: Delivery): this;
  /** Disconnects the client if this task commits; its listener then gets `disconnected(false)`. */
  disconnect(): void;
}

/**
 * The application's handler for one session, returned by `AppListener.loggedIn`. It must be a
 * managed object. A session's messages are handled one at a time, in arrival order.
 */
export interface ClientSessionListener {
  /** A message from the client. `message` is only valid during the call: copy what you keep. */
  receivedMessage(ctx: TaskContext, message: Uint8Array): void;
  /**
   * The session ended: `graceful` is true when the client logged out, false when the connection
   * dropped, the server disconnected it, or the server restarted. Called exactly once.
   */
  disconnected(ctx: TaskContext, graceful: boolean): void;
}
