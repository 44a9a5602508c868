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

/**
 * The channel id in `bytes`, read as an unsigned number (leading zero bytes ignored): clients
 * re-encode ids they were given, so ids are compared as numbers, never byte for byte.
 * @throws {ProtocolError} `empty-channel-id` for zero bytes.
 */
export function decodeChannelId(bytes: Uint8Array): bigint {
  if (bytes.length === 0) throw new ProtocolError("empty-channel-id", "a channel id needs at least one byte");
  let id = 0n;
  for (const byte of bytes) id = (id << 8n) | BigInt(byte);
  return id;
}
