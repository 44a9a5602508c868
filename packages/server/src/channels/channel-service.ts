import { encodeMessage } from "@shardless/protocol";
import type { Channel, ChannelListener, ChannelManager } from "../api/channel.js";
import { ManagedObjectError, NameExistsError } from "../api/errors.js";
import { isManagedObject } from "../api/managed.js";
import { Ref } from "../api/ref.js";
import { Delivery, type ClientSession } from "../api/session.js";
import type { TaskContext } from "../api/types.js";
import { serviceKey } from "../kernel/data-manager.js";
import { callSync, currentTransaction, type Transaction } from "../kernel/transaction.js";
import { ClientSessionRecord } from "../sessions/client-session-record.js";
import type { SessionEffect } from "../sessions/session-effects.js";
import { ChannelRecord, type ChannelOperations } from "./channel-record.js";

const CHANNEL_PREFIX = "channel.";
const DELIVERIES = new Set<string>(Object.values(Delivery));

/**
 * Channels: membership stored in the channel (and, for clean-up, in each member's session), joins,
 * leaves and sends released when the task commits, and clients' channel messages vetted by the
 * channel's listener or forwarded to every member.
 */
export class ChannelService implements ChannelOperations {

  /** The game-facing ChannelManager of `tx`. */
  managerFor(tx: Transaction): ChannelManager {
    return new TransactionChannelManager(this, tx);
  }

  /** The channel named `name`, in `tx`. */
  get(tx: Transaction, name: string): Channel {
    tx.check("ChannelManager.getChannel");
    return tx.getBound(channelKey(name), name, false) as ChannelRecord;
  }

  join(channel: ChannelRecord, sessions: readonly ClientSession[]): void {
    const tx = currentTransaction("Channel.join");
    const channelId = tx.idOf(channel);
    for (const session of sessions) {
      const record = asSessionRecord(session);
      const sessionId = tx.idOf(record);
      if (channel.members.has(sessionId)) continue;
      channel.members.add(sessionId);
      record.channels.add(channelId);
      tx.markForUpdate(channel);
      tx.markForUpdate(record);
      const payload = encodeMessage({ op: "CHANNEL_JOIN", channelName: channel.name, channelId });
      const joined: SessionEffect = { to: "session", op: "joined", session: sessionId, channel: channelId, payload };
      tx.addEffect(joined);
    }
  }

  leave(channel: ChannelRecord, sessions: readonly ClientSession[]): void {
    const tx = currentTransaction("Channel.leave");
    const channelId = tx.idOf(channel);
    for (const session of sessions) {
      const record = asSessionRecord(session);
      const sessionId = tx.idOf(record);
      if (!channel.members.delete(sessionId)) continue;
      record.channels.delete(channelId);
      tx.markForUpdate(channel);
      tx.markForUpdate(record);
      this.announceLeave(tx, sessionId, channelId);
    }
  }

  send(channel: ChannelRecord, message: Uint8Array): void {
    const tx = currentTransaction("Channel.send");
    if (!(message instanceof Uint8Array)) throw new TypeError("Channel.send takes a Uint8Array");
    const channelId = tx.idOf(channel);
    const payload = encodeMessage({ op: "CHANNEL_MESSAGE", channelId, message }); // RangeError if too large
    const fanOut: SessionEffect = { to: "session", op: "fan-out", sessions: [...channel.members], payload };
    tx.addEffect(fanOut);
  }

  sessions(channel: ChannelRecord): ClientSession[] {
    const tx = currentTransaction("Channel.sessions");
    const found: ClientSession[] = [];
    for (const sessionId of channel.members) {
      const session = tx.tryGetObject(sessionId);
      if (session instanceof ClientSessionRecord) found.push(session);
    }
    return found;
  }

  closing(channel: ChannelRecord): void {
    const tx = currentTransaction("Channel.removingObject");
    const channelId = tx.idOf(channel);
    for (const sessionId of channel.members) {
      const session = tx.tryGetObject(sessionId);
      if (session instanceof ClientSessionRecord && session.channels.delete(channelId)) tx.markForUpdate(session);
      this.announceLeave(tx, sessionId, channelId);
    }
    channel.members.clear();
    tx.markForUpdate(channel);
    const key = channelKey(channel.name);
    if (tx.isBound(key)) tx.unbind(key, channel.name);
  }

  /** Removes a session that is ending from every channel it belongs to (inside its end task). */
  removeFromAll(tx: Transaction, session: ClientSessionRecord, sessionId: bigint): void {
    for (const channelId of session.channels) {
      const channel = tx.tryGetObject(channelId);
      if (channel instanceof ChannelRecord && channel.members.delete(sessionId)) tx.markForUpdate(channel);
    }
    session.channels.clear();
    tx.markForUpdate(session);
  }

  /**
   * A member's message on a channel, run in that session's queue: vetted by the channel's listener,
   * or forwarded to every member. A message from a non-member is dropped.
   */
  receiveFromClient(ctx: TaskContext, tx: Transaction, session: ClientSessionRecord, sessionId: bigint, channelId: bigint, message: Uint8Array): boolean {
    const channel = tx.tryGetObject(channelId);
    if (!(channel instanceof ChannelRecord) || !channel.members.has(sessionId)) return false;
    const listener = channel.listener === null ? undefined : (tx.tryGetObject(channel.listener.id) as ChannelListener | undefined);
    if (listener === undefined) {
      this.send(channel, message);
      return true;
    }
    callSync(`${listener.constructor.name}.receivedMessage`, () => listener.receivedMessage(ctx, channel, session, message));
    return true;
  }

  /** Creates a channel in `tx`. */
  create(tx: Transaction, name: string, listener: ChannelListener | null, delivery: Delivery): Channel {
    tx.check("ChannelManager.createChannel");
    if (typeof name !== "string") throw new TypeError("channel names are strings");
    if (!DELIVERIES.has(delivery)) throw new RangeError(`unknown delivery ${String(delivery)}`);
    const key = channelKey(name);
    if (tx.isBound(key)) throw new NameExistsError(name);
    if (listener !== null && (!isManagedObject(listener) || typeof listener.receivedMessage !== "function")) {
      throw new ManagedObjectError("a channel listener must be null or a managed object with receivedMessage(ctx, channel, sender, message)");
    }
    const channel = new ChannelRecord(name, delivery);
    if (listener !== null) channel.listener = new Ref(tx.idOf(listener));
    tx.bind(key, channel);
    return channel;
  }

  private announceLeave(tx: Transaction, sessionId: bigint, channelId: bigint): void {
    const payload = encodeMessage({ op: "CHANNEL_LEAVE", channelId });
    const left: SessionEffect = { to: "session", op: "left", session: sessionId, channel: channelId, payload };
    tx.addEffect(left);
  }
}

/** The game-facing ChannelManager of one transaction. */
class TransactionChannelManager implements ChannelManager {
  constructor(
    private readonly service: ChannelService,
    private readonly tx: Transaction,
  ) {}

  createChannel(name: string, listener: ChannelListener | null, delivery: Delivery): Channel {
    return this.service.create(this.tx, name, listener, delivery);
  }

  getChannel(name: string): Channel {
    return this.service.get(this.tx, name);
  }
}

function channelKey(name: string): string {
  return serviceKey(CHANNEL_PREFIX + name);
}

function asSessionRecord(session: ClientSession): ClientSessionRecord {
  if (!(session instanceof ClientSessionRecord)) throw new ManagedObjectError("only client sessions can join or leave channels");
  return session;
}

