import { ProtocolError } from "./protocol-error.js";

/**
 * The bytes of Java's `BigInteger.toByteArray()` for the non-negative `id`: minimal big-endian
 * two's complement, so a leading `00` appears when the top bit would be set (5 → `05`,
 * 200 → `00 C8`, 0 → `00`).
 * @throws {RangeError} if `id` is negative.
 */
export function encodeChannelId(id: bigint): Uint8Array {
  if (id < 0n) throw new RangeError(`channel ids are non-negative, got ${id}`);
  let hex = id.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  if (Number.parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

/** Channel ids are 64-bit numbers: more significant bytes than this are refused. */
export const MAX_CHANNEL_ID_BYTES = 8;

/**
 * The channel id in `bytes`, read as an unsigned number (leading zero bytes ignored): clients
 * re-encode ids they were given, so ids are compared as numbers, never byte for byte.
 * @throws {ProtocolError} `empty-channel-id` for zero bytes; `value-out-of-range` for an id of more
 *   than 64 bits (which no channel has, and which would be costly to decode).
 */
export function decodeChannelId(bytes: Uint8Array): bigint {
  if (bytes.length === 0) throw new ProtocolError("empty-channel-id", "a channel id needs at least one byte");
  let first = 0;
  while (first < bytes.length - 1 && bytes[first] === 0) first++;
  if (bytes.length - first > MAX_CHANNEL_ID_BYTES) {
    throw new ProtocolError("value-out-of-range", `a channel id of ${bytes.length - first} significant bytes is longer than 64 bits`);
  }
  let id = 0n;
  for (let i = first; i < bytes.length; i++) id = (id << 8n) | BigInt(bytes[i]!);
  return id;
}
