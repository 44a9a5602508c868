import { activeTransaction } from "../api/active-transaction.js";
import type { Channel } from "../api/channel.js";
import { managed } from "../api/managed.js";
import type { Ref } from "../api/ref.js";
import type { ClientSession, Delivery } from "../api/session.js";
import type { TaskContext } from "../api/types.js";
import { changesOnlyWhenMarked } from "../kernel/transaction.js";

/** What a stored channel asks of the channel service of the server running the task. */
export interface ChannelOperations {
  join(channel: ChannelRecord, sessions: readonly ClientSession[]): void;
  leave(channel: ChannelRecord, sessions: readonly ClientSession[]): void;
  send(channel: ChannelRecord, message: Uint8Array): void;
  sessions(channel: ChannelRecord): ClientSession[];
  closing(channel: ChannelRecord): void;
}

/** Name under which the channel service is installed in the kernel. */
export const CHANNEL_SERVICE = "channels";

/**
 * The stored form of a channel: a managed object bound under `s.channel.<name>`, holding its
 * members' session ids. Its id is the channel id clients see.
 */
@managed("shardless.Channel")
export class ChannelRecord implements Channel {
  /** Ids of the member sessions. */
  members = new Set<bigint>();
  /** The channel's listener, if it has one. */
  listener: Ref | null = null;

  constructor(
    readonly name: string,
    readonly delivery: Delivery,
  ) {}

  join(sessions: ClientSession | Iterable<ClientSession>): this {
    operations("Channel.join").join(this, toList(sessions));
    return this;
  }

  leave(sessions: ClientSession | Iterable<ClientSession>): this {
    operations("Channel.leave").leave(this, toList(sessions));
    return this;
  }

  leaveAll(): this {
    const ops = operations("Channel.leaveAll");
    ops.leave(this, ops.sessions(this));
    return this;
  }

  send(message: Uint8Array, _sender: ClientSession | null = null): this {
    // The wire format carries no sender; the parameter documents intent and serves listeners.
    operations("Channel.send").send(this, message);
    return this;
  }

  hasSessions(): boolean {
    activeTransaction("Channel.hasSessions");
    return this.members.size > 0;
  }

  sessions(): ClientSession[] {
    return operations("Channel.sessions").sessions(this);
  }

  /** `removeObject(channel)` closes it: every member is told it left. */
  removingObject(_ctx: TaskContext): void {
    operations("Channel.removingObject").closing(this);
  }
}

// The channel service marks a channel whenever it changes its members.
changesOnlyWhenMarked(ChannelRecord);

function operations(what: string): ChannelOperations {
  return activeTransaction(what).service<ChannelOperations>(CHANNEL_SERVICE);
}

function toList(sessions: ClientSession | Iterable<ClientSession>): ClientSession[] {
  return Symbol.iterator in Object(sessions) ? [...(sessions as Iterable<ClientSession>)] : [sessions as ClientSession];
}
