// The room workload as a Shardless application: each player is a managed object holding its
// position; each move is a task that stores the new position and broadcasts the move on the room's
// channel. The broadcast leaves only when the task commits (durably, with `sync`).
import {
  Delivery,
  NameNotBoundError,
  managed,
  type AppListener,
  type Channel,
  type ClientSession,
  type ClientSessionListener,
  type Ref,
  type TaskContext,
} from "shardless";
import { MOVE_BYTES, decodeMove, playerIndex, roomOf } from "./room-workload.ts";

/** The room's channel, created by the first player to arrive. */
function roomChannel(ctx: TaskContext, room: number): Channel {
  const name = `room.${room}`;
  try {
    return ctx.channels.getChannel(name);
  } catch (error) {
    if (!(error instanceof NameNotBoundError)) throw error;
    return ctx.channels.createChannel(name, null, Delivery.RELIABLE);
  }
}

@managed("bench.RoomPlayer")
export class RoomPlayer implements ClientSessionListener {
  x = 0;
  y = 0;
  moves = 0;

  constructor(
    private readonly session: Ref<ClientSession>,
    private readonly room: Ref<Channel>,
  ) {}

  receivedMessage(ctx: TaskContext, message: Uint8Array): void {
    if (message.byteLength !== MOVE_BYTES) {
      ctx.log.warn("dropped a message that is not a move", { bytes: message.byteLength });
      return;
    }
    const move = decodeMove(message);
    this.x = move.x;
    this.y = move.y;
    this.moves++;
    this.room.get().send(message, this.session.get());
  }

  disconnected(ctx: TaskContext): void {
    ctx.data.removeObject(this); // the session leaves its channel by itself
  }
}

@managed("bench.RoomApp")
export default class RoomApp implements AppListener {
  initialize(): void {}

  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener | null {
    const index = playerIndex(session.name);
    if (index === null) return null;
    const channel = roomChannel(ctx, roomOf(index));
    channel.join(session);
    return new RoomPlayer(ctx.data.createReference(session), ctx.data.createReference(channel));
  }
}
