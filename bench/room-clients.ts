// How the room load generator joins a player to Shardless and to the hand-written baseline, both over
// WebSocket (as Colyseus clients must), so that every system pays the same transport.
import { Opcode, decodeServerMessage, encodeMessage } from "@shardless/protocol";
import { WebSocket } from "ws";
import { MOVE_BYTES, playerName, type RoomJoin, type RoomPlayer } from "./room-workload.ts";

/** Opens a WebSocket and resolves once it is open; compression off, as every system here runs it. */
function openSocket(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url, { perMessageDeflate: false });
  socket.binaryType = "nodebuffer";
  return new Promise((resolve, reject) => {
    socket.once("open", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** The player on `socket`: `onClose` hears of closes by the server, not of the player's own. */
function asPlayer(socket: WebSocket, frame: (move: Uint8Array) => Uint8Array, onClose: () => void): RoomPlayer {
  let leaving = false;
  socket.once("close", () => leaving || onClose());
  return {
    send: (move) => socket.readyState === WebSocket.OPEN && socket.send(frame(move)),
    close: () => {
      leaving = true;
      socket.terminate();
    },
  };
}

/**
 * A Shardless player over `/ws`: logs in as `player-<index>` (the server puts it in its room's
 * channel), sends each move as a session message, and takes deliveries from channel messages.
 */
export const joinShardless: RoomJoin = async (port, index, onDelivery, onClose) => {
  const socket = await openSocket(`ws://127.0.0.1:${port}/ws`);
  const loggedIn = new Promise<void>((resolve, reject) => {
    socket.on("message", (data: Buffer) => {
      // A channel message ends with the move as it was sent: read it without decoding the rest
      // (the channel id is a length-prefixed big integer), so the load generator stays cheap.
      if (data[0] === Opcode.CHANNEL_MESSAGE) return onDelivery(data.subarray(data.length - MOVE_BYTES));
      const message = decodeServerMessage(data);
      if (message.op === "LOGIN_SUCCESS") resolve();
      else if (message.op === "LOGIN_FAILURE") reject(new Error(`player ${index} refused: ${message.reason}`));
    });
    socket.once("close", () => reject(new Error(`player ${index}: connection closed during login`)));
  });
  socket.send(encodeMessage({ op: "LOGIN_REQUEST", version: 5, name: playerName(index), password: "" }));
  await loggedIn;
  return asPlayer(socket, (move) => encodeMessage({ op: "SESSION_MESSAGE", message: move }), onClose);
};

/** A baseline player: the player index in the URL, each WebSocket message one raw move. */
export const joinBaseline: RoomJoin = async (port, index, onDelivery, onClose) => {
  const socket = await openSocket(`ws://127.0.0.1:${port}/?player=${index}`);
  socket.on("message", (data: Buffer) => onDelivery(data));
  return asPlayer(socket, (move) => move, onClose);
};
