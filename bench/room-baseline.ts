// The room workload on a hand-written WebSocket server: rooms and positions in plain objects, each
// move broadcast with one `send` per member. No transactions, no persistence: the upper bound.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { MOVE_BYTES, decodeMove, roomOf } from "./room-workload.ts";

interface Player {
  readonly socket: WebSocket;
  x: number;
  y: number;
}

/** A running baseline room server. */
export interface RoomServer {
  readonly port: number;
  stop(): Promise<void>;
}

/** Serves the room game on 127.0.0.1, port 0; players say who they are with `?player=<index>`. */
export async function startBaselineRoomServer(): Promise<RoomServer> {
  const rooms = new Map<number, Set<Player>>();
  const http: Server = createServer((_request, response) => response.writeHead(404).end());
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: 1024 });
  wss.on("connection", (socket, request) => {
    const index = Number(new URL(request.url ?? "/", "http://localhost").searchParams.get("player"));
    if (!Number.isSafeInteger(index) || index < 0) return socket.close(1008, "player index required");
    const room = roomOf(index);
    const members = rooms.get(room) ?? new Set<Player>();
    rooms.set(room, members);
    const player: Player = { socket, x: 0, y: 0 };
    members.add(player);
    socket.on("message", (data: Buffer, isBinary) => {
      if (!isBinary || data.length !== MOVE_BYTES) return;
      const move = decodeMove(data);
      player.x = move.x;
      player.y = move.y;
      for (const member of members) member.socket.send(data);
    });
    socket.on("close", () => members.delete(player));
    socket.on("error", () => socket.terminate());
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return {
    port: (http.address() as AddressInfo).port,
    stop: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
