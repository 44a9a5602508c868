// The room workload served by Colyseus 0.18, written the way a Colyseus game is written: a Room
// class with a schema state, matchmaking by joinOrCreate, and the official SDK on the player side.
// A move is stored in the state (so state patches flow at the default patch rate, as in a real
// game) and also broadcast at once as raw bytes, so that delivery latency is not quantised by the
// patch interval and the wire carries the same 20 bytes the other systems carry.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { CloseCode, Room, Server, matchMaker, type Client as RoomClient } from "@colyseus/core";
import { schema, t } from "@colyseus/schema";
import { Client } from "@colyseus/sdk";
import { WebSocketTransport } from "@colyseus/ws-transport";
import { MOVE_BYTES, ROOM_SIZE, decodeMove, roomOf, type RoomJoin, type RoomPlayer } from "./room-workload.ts";

/** The name the room type is defined and joined under. */
const ROOM_NAME = "game";
/** The message type of a move, both ways. */
const MOVE = "move";

/** A player's synchronised position. float32 because that is what a move carries. */
const PlayerState = schema({ x: t.float32(), y: t.float32() }, "PlayerState");

/** The room state: the players in the room, keyed by Colyseus session id. */
const GameState = schema({ players: t.map(PlayerState) }, "GameState");

/**
 * The join options: the room number the player belongs in. The room type filters on it
 * (`filterBy(["room"])`), so a player can only be matched into a room created for its number.
 */
interface GameJoinOptions {
  readonly room: number;
}

function assertRoomNumber(options: unknown): asserts options is GameJoinOptions {
  const room = (options as Partial<GameJoinOptions> | undefined)?.room;
  assert(typeof room === "number" && Number.isSafeInteger(room) && room >= 0, `join options need a room number, got ${String(room)}`);
}

/**
 * One room of the workload: up to ROOM_SIZE players, each with a position in the state. A "move"
 * (MOVE_BYTES raw bytes) updates the sender's position and is broadcast as is to every client in
 * the room, the sender included. A move of any other length closes the sender's connection.
 */
export class GameRoom extends Room<{ state: InstanceType<typeof GameState> }> {
  override maxClients = ROOM_SIZE;
  override state = new GameState();
  /** The room number this room was created for; filterBy keeps every joiner's equal to it. */
  private roomNumber = -1;

  override onCreate(options: unknown): void {
    assertRoomNumber(options);
    this.roomNumber = options.room;
    this.onMessageBytes(MOVE, (client: RoomClient, move: Uint8Array) => this.move(client, move));
  }

  override onJoin(client: RoomClient, options: unknown): void {
    assertRoomNumber(options);
    assert.equal(options.room, this.roomNumber, "matchmaking put a player in another number's room");
    this.state.players.set(client.sessionId, new PlayerState());
  }

  override onLeave(client: RoomClient): void {
    this.state.players.delete(client.sessionId);
  }

  private move(client: RoomClient, bytes: Uint8Array): void {
    // A wrong-sized move is a broken client; closing it is what Colyseus itself does when a
    // message fails validation.
    const player = this.state.players.get(client.sessionId);
    if (bytes.byteLength !== MOVE_BYTES || player === undefined) {
      client.leave(CloseCode.WITH_ERROR);
      return;
    }
    const { x, y } = decodeMove(bytes);
    player.x = x;
    player.y = y;
    // broadcastBytes copies the payload into a fresh frame, so handing it a view of the
    // incoming buffer is safe.
    this.broadcastBytes(MOVE, bytes, {});
  }
}

/** A running Colyseus room server. */
export interface ColyseusRoomServer {
  /** The TCP port it listens on, on 127.0.0.1. */
  readonly port: number;
  /**
   * Disconnects every client, disposes every room and closes the listener; resolves when closed.
   * Calling it again returns the same promise.
   */
  stop(): Promise<void>;
}

/**
 * Starts a Colyseus server for the room workload on 127.0.0.1, on a free port.
 *
 * Colyseus's matchmaker is a module singleton, so at most one such server may run in a process at
 * a time; starting one while another is listening throws an AssertionError.
 */
export async function startColyseusRoomServer(): Promise<ColyseusRoomServer> {
  assert.notEqual(matchMaker.state, matchMaker.MatchMakerState.READY, "a Colyseus server is already running in this process");
  const http = createServer();
  // gracefullyShutdown: false keeps Colyseus from installing process signal handlers that exit.
  const server = new Server({ transport: new WebSocketTransport({ server: http }), greet: false, gracefullyShutdown: false });
  server.define(ROOM_NAME, GameRoom).filterBy(["room"]);
  await server.listen(0, "127.0.0.1");
  const { port } = http.address() as AddressInfo;
  let stopped: Promise<void> | undefined;
  return { port, stop: () => (stopped ??= stopServer(server, http)) };
}

async function stopServer(server: Server, http: ReturnType<typeof createServer>): Promise<void> {
  const closed = once(http, "close");
  // Disposes the rooms (closing their clients), then closes the WebSocket server and the HTTP
  // listener; false means "do not exit the process".
  await server.gracefullyShutdown(false);
  // Matchmaking requests use keep-alive HTTP connections; close() only stops accepting them.
  http.closeAllConnections();
  await closed;
}

/**
 * Joins player `index` to its room (room number roomOf(index)) on the Colyseus server at `port`,
 * with the Colyseus SDK. `onDelivery` receives the MOVE_BYTES raw bytes of each delivered move (a
 * view valid only during the call); `onClose` is called if the connection ends other than by the
 * returned player's `close()`. Rejects if matchmaking fails.
 */
export const joinColyseus: RoomJoin = async (port, index, onDelivery, onClose) => {
  const client = new Client(`ws://127.0.0.1:${port}`);
  const joinOptions: GameJoinOptions = { room: roomOf(index) };
  const room = await client.joinOrCreate(ROOM_NAME, joinOptions);
  // The SDK would otherwise retry a dropped connection behind our back; a drop must reach
  // onClose so the load generator counts it.
  room.reconnection.enabled = false;
  room.onMessage(MOVE, (move: Uint8Array) => onDelivery(move));
  let closing = false;
  room.onLeave(() => {
    if (!closing) onClose();
  });
  const player: RoomPlayer = {
    send: (move) => room.sendBytes(MOVE, move),
    close: () => {
      closing = true;
      void room.leave();
    },
  };
  return player;
};
