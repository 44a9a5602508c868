// Every room system with the load generator's players: rooms of 10, each move delivered as sent to
// exactly its room, and a server stop reported to every player still in a room.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { joinColyseus, startColyseusRoomServer } from "./colyseus-room.ts";
import { startBaselineRoomServer, type RoomServer } from "./room-baseline.ts";
import { joinBaseline, joinShardless } from "./room-clients.ts";
import type { RoomSystemName } from "./room-loadgen.ts";
import { startSystem } from "./system.ts";
import { TEST_WORKERS } from "../packages/server/test/test-workers.ts";
import { ROOM_SIZE, decodeMove, encodeMove, type Move, type RoomJoin, type RoomPlayer } from "./room-workload.ts";

/** How each system starts in this process, and how its players join. */
const SYSTEMS: Record<RoomSystemName, { start: () => Promise<RoomServer>; join: RoomJoin }> = {
  shardless: { start: () => startSystem({ workload: "room", system: "shardless", accounts: 0, durability: "memory", workers: TEST_WORKERS }), join: joinShardless },
  "baseline-memory": { start: startBaselineRoomServer, join: joinBaseline },
  colyseus: { start: startColyseusRoomServer, join: joinColyseus },
};

const PLAYERS = 2 * ROOM_SIZE;
/** Marks the moves each player sends to learn that everything before it has been delivered. */
const FENCE_X = -1;

/** One joined player and what it has seen. */
interface Seat {
  readonly index: number;
  readonly player: RoomPlayer;
  /** Copies of every move delivered to this player, in order. */
  readonly delivered: Uint8Array[];
  closed: boolean;
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(predicate(), `timed out waiting for ${what}`);
}

/**
 * Joins players 0..PLAYERS-1 all at once and interleaved across rooms (0, 10, 1, 11, ...), so that
 * only the room number, not arrival order, can put each player in its room. Seats are in index order.
 */
async function joinAll(join: RoomJoin, port: number): Promise<Seat[]> {
  const interleaved = Array.from({ length: PLAYERS }, (_, i) => (i % 2) * ROOM_SIZE + Math.floor(i / 2));
  const seats = await Promise.all(
    interleaved.map(async (index) => {
      const delivered: Uint8Array[] = [];
      const seat: { closed: boolean } = { closed: false };
      // The delivered bytes may be a view into a frame the client reuses: keep a plain copy.
      const player = await join(port, index, (move) => delivered.push(Uint8Array.from(move)), () => (seat.closed = true));
      return Object.assign(seat, { index, player, delivered });
    }),
  );
  return seats.sort((a, b) => a.index - b.index);
}

function deliveredMoves(seat: Seat): Move[] {
  return seat.delivered.map(decodeMove);
}

/**
 * Has every player send a fence and waits until each has its own back. A connection delivers in
 * order and the server broadcasts a move as it handles it, so any move broadcast before the
 * fences were sent has by then reached every player it ever will.
 */
async function fence(seats: readonly Seat[]): Promise<void> {
  for (const seat of seats) seat.player.send(encodeMove({ player: seat.index, x: FENCE_X, y: 0, sentAt: 0 }));
  await until(() => seats.every((seat) => deliveredMoves(seat).some((move) => move.x === FENCE_X && move.player === seat.index)), "every fence");
}

for (const [name, system] of Object.entries(SYSTEMS)) {
describe(`the ${name} room server`, () => {
  it("delivers a move, byte for byte, to exactly the players of the sender's room", async (t) => {
    const server = await system.start();
    t.after(() => server.stop());
    const seats = await joinAll(system.join, server.port);
    const fromRoom0 = encodeMove({ player: 3, x: 1.5, y: -2.25, sentAt: 1234.5 });
    const fromRoom1 = encodeMove({ player: 15, x: 7, y: 8.5, sentAt: 5678.25 });
    seats[3]!.player.send(fromRoom0);
    seats[15]!.player.send(fromRoom1);
    const got = (seat: Seat, move: Uint8Array) => seat.delivered.some((bytes) => Buffer.from(bytes).equals(move));
    await until(() => seats.every((seat) => got(seat, seat.index < ROOM_SIZE ? fromRoom0 : fromRoom1)), "both moves in their rooms");
    await fence(seats);

    for (const seat of seats) {
      const moves = seat.delivered.filter((bytes) => decodeMove(bytes).x !== FENCE_X);
      assert.deepEqual(moves, [seat.index < ROOM_SIZE ? fromRoom0 : fromRoom1], `player ${seat.index}`);
      const fencesFrom = deliveredMoves(seat).filter((move) => move.x === FENCE_X).map((move) => Math.floor(move.player / ROOM_SIZE));
      assert.ok(fencesFrom.every((room) => room === Math.floor(seat.index / ROOM_SIZE)), `player ${seat.index} heard only its own room`);
    }
    for (const seat of seats) seat.player.close();
    await server.stop();
    assert.ok(seats.every((seat) => !seat.closed), "a player's own close() is not reported as a drop");
  });

  it("reports a server stop to every player still in a room, and not to one that left", async (t) => {
    const server = await system.start();
    t.after(() => server.stop());
    const seats = await joinAll(system.join, server.port);
    const leaver = seats[7]!;
    leaver.player.close();
    await server.stop();
    await until(() => seats.every((seat) => seat === leaver || seat.closed), "every close");
    assert.equal(leaver.closed, false);
  });
});
}
