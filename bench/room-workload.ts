// The room workload: players in rooms of 10 each send a position update at 20 Hz; the server stores
// the player's position and broadcasts the update to everyone in the room (the sender included).
// Shared by the systems that serve it and the load generator that plays it.

/** Players per room. Player i is in room ⌊i / 10⌋. */
export const ROOM_SIZE = 10;
/** Position updates per player per second. */
export const UPDATE_HZ = 20;
/** The latency bound, update sent to update delivered, that a held player count must meet at p99. */
export const LATENCY_BOUND_MS = 50;
/** The share of expected deliveries that must arrive within a step for it to count as held. */
export const DELIVERY_FLOOR = 0.99;

/** A move on the wire: [player u32][x f32][y f32][sentAt f64]: 20 bytes. */
export const MOVE_BYTES = 20;

/** A decoded move. `sentAt` is the load generator's `performance.now()` when it was sent. */
export interface Move {
  readonly player: number;
  readonly x: number;
  readonly y: number;
  readonly sentAt: number;
}

export function encodeMove(move: Move): Uint8Array {
  const bytes = new Uint8Array(MOVE_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, move.player);
  view.setFloat32(4, move.x);
  view.setFloat32(8, move.y);
  view.setFloat64(12, move.sentAt);
  return bytes;
}

/** Decodes a move; throws RangeError on fewer than MOVE_BYTES bytes. */
export function decodeMove(bytes: Uint8Array): Move {
  if (bytes.byteLength < MOVE_BYTES) throw new RangeError(`a move has ${MOVE_BYTES} bytes, got ${bytes.byteLength}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { player: view.getUint32(0), x: view.getFloat32(4), y: view.getFloat32(8), sentAt: view.getFloat64(12) };
}

/** The send time of a delivered move, without decoding the rest. */
export function sentAtOf(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(12);
}

/** The room of player `index`. */
export function roomOf(index: number): number {
  return Math.floor(index / ROOM_SIZE);
}

/** The login name of player `index`: the server learns the player's room from it. */
export function playerName(index: number): string {
  return `player-${index}`;
}

/** The player index in a login name, or null when the name is not one of `playerName`'s. */
export function playerIndex(name: string): number | null {
  const match = /^player-(\d{1,9})$/.exec(name);
  return match === null ? null : Number(match[1]);
}

/**
 * One connected player, as the load generator drives it, whatever the system: it sends moves and
 * hands every move delivered to it to the callback given at join.
 */
export interface RoomPlayer {
  send(move: Uint8Array): void;
  close(): void;
}

/**
 * How the load generator joins a player to one system. `onDelivery` receives the raw 20-byte move of
 * every update delivered to this player (its own included); `onClose` is called if the system closes
 * the connection.
 */
export type RoomJoin = (port: number, index: number, onDelivery: (move: Uint8Array) => void, onClose: () => void) => Promise<RoomPlayer>;
