import type { ClientSession, Delivery } from "./session.js";
import type { TaskContext } from "./types.js";

/**
 * A named group of sessions that messages can be sent to at once. Only server code joins sessions
 * to channels. A channel is a managed object: keep it through a `Ref`, and close it with
 * `ctx.data.removeObject(channel)`. Every method must be called inside a task; joins, leaves and
 * sends take effect only if the task commits.
 */
export interface Channel {
  /** The name the channel was created with. */
  readonly name: string;
  /** How its messages travel. */
  readonly delivery: Delivery;
  /** Adds sessions (already members stay members); each new member is told it joined. */
  join(sessions: ClientSession | Iterable<ClientSession>): this;
  /** Removes sessions (non-members are ignored); each is told it left. */
  leave(sessions: ClientSession | Iterable<ClientSession>): this;
  /** Removes every member. */
  leaveAll(): this;
  /**
   * Sends `message` to every member (including `sender`, if it is one), as a message from
   * `sender` (null: from the server).
   * @throws {RangeError} if `message` exceeds the protocol's limit.
   */
  send(message: Uint8Array, sender?: ClientSession | null): this;
  /** True when the channel has at least one member. */
  hasSessions(): boolean;
  /** The members, loaded into this task. */
  sessions(): ClientSession[];
}

/**
 * Vets what clients send on a channel. Without a listener, a member's message goes to every member
 * as it is; with one, the listener decides (forward it with `channel.send(message, sender)`, change
 * it, or drop it). It must be a managed object.
 */
export interface ChannelListener {
  receivedMessage(ctx: TaskContext, channel: Channel, sender: ClientSession, message: Uint8Array): void;
}

/** Creating and finding channels. */
export interface ChannelManager {
  /**
   * Creates a channel.
   * @throws {NameExistsError} if a channel with that name exists.
   * @throws {ManagedObjectError} if `listener` is neither null nor a managed object.
   */
  createChannel(name: string, listener: ChannelListener | null, delivery: Delivery): Channel;
  /**
   * The channel named `name`.
   * @throws {NameNotBoundError} if there is none.
   */
  getChannel(name: string): Channel;
}
