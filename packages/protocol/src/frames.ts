import { MAX_PAYLOAD_BYTES } from "./messages.js";
import { ProtocolError } from "./protocol-error.js";

/** Length of the prefix before each frame's payload on a byte stream (TCP). */
export const LENGTH_PREFIX_BYTES = 2;

/**
 * A frame for a byte stream: the payload's length as a big-endian unsigned short, then the payload.
 * (Over WebSocket, each binary message carries one payload without this prefix.)
 * @throws {RangeError} if the payload is empty or longer than 65535 bytes.
 */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  if (payload.length === 0 || payload.length > MAX_PAYLOAD_BYTES) throw new RangeError(`frame payload must have 1..${MAX_PAYLOAD_BYTES} bytes, got ${payload.length}`);
  const frame = new Uint8Array(LENGTH_PREFIX_BYTES + payload.length);
  frame[0] = payload.length >> 8;
  frame[1] = payload.length & 0xff;
  frame.set(payload, LENGTH_PREFIX_BYTES);
  return frame;
}

/**
 * Cuts a byte stream into frame payloads. It holds at most one incomplete frame, so its memory is
 * bounded by `maxPayloadBytes` whatever the peer sends.
 */
export class FrameReader {
  /** Received bytes not yet returned as frames: `buffer[0 .. length)`, grown geometrically. */
  private buffer: Uint8Array = new Uint8Array(0);
  private length = 0;
  private failed: ProtocolError | undefined;

  /**
   * @param maxPayloadBytes the largest payload accepted (at most 65535, the protocol's own limit);
   *   a frame announcing more is refused before its bytes arrive.
   */
  constructor(private readonly maxPayloadBytes: number = MAX_PAYLOAD_BYTES) {
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1 || maxPayloadBytes > MAX_PAYLOAD_BYTES) {
      throw new RangeError(`maxPayloadBytes must be 1..${MAX_PAYLOAD_BYTES}`);
    }
  }

  /** Bytes received but not yet part of a complete frame. */
  get bufferedBytes(): number {
    return this.length;
  }

  /**
   * Adds received bytes and returns the payloads of the frames they complete, in order. Payloads may
   * share memory with `chunk`.
   * @throws {ProtocolError} `empty-frame` or `frame-too-large`; after that the stream is unusable and
   *   every later call throws the same error.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failed !== undefined) throw this.failed;
    const own = this.length > 0;
    const data = own ? this.append(chunk) : chunk;
    const payloads: Uint8Array[] = [];
    let at = 0;
    while (data.length - at >= LENGTH_PREFIX_BYTES) {
      const length = (data[at]! << 8) | data[at + 1]!;
      if (length === 0) throw this.fail(new ProtocolError("empty-frame", "a frame of length 0 has no opcode"));
      if (length > this.maxPayloadBytes) {
        throw this.fail(new ProtocolError("frame-too-large", `a frame of ${length} bytes exceeds the limit of ${this.maxPayloadBytes}`));
      }
      if (data.length - at - LENGTH_PREFIX_BYTES < length) break;
      payloads.push(data.subarray(at + LENGTH_PREFIX_BYTES, at + LENGTH_PREFIX_BYTES + length));
      at += LENGTH_PREFIX_BYTES + length;
    }
    this.keep(data, at, own);
    return payloads;
  }

  /** Appends `chunk` to the held bytes; returns the held bytes as one view. */
  private append(chunk: Uint8Array): Uint8Array {
    if (this.length + chunk.length > this.buffer.length) {
      // Doubling keeps a frame that arrives byte by byte linear in its size.
      const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + chunk.length, 64));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(chunk, this.length);
    this.length += chunk.length;
    return this.buffer.subarray(0, this.length);
  }

  /** Holds `data[from ..)` for the next push; `own` tells whether `data` is the held buffer. */
  private keep(data: Uint8Array, from: number, own: boolean): void {
    if (own && from === 0) return; // nothing was cut: the bytes are held already
    const rest = data.length - from;
    // Returned payloads are views into `data` (the caller's chunk, or the held buffer): the rest
    // goes to a fresh buffer, so that they never change and a large chunk is not pinned.
    this.buffer = rest === 0 ? new Uint8Array(0) : new Uint8Array(Math.max(rest * 2, 64));
    this.buffer.set(data.subarray(from));
    this.length = rest;
  }

  private fail(error: ProtocolError): ProtocolError {
    this.failed = error;
    this.buffer = new Uint8Array(0);
    this.length = 0;
    return error;
  }
}
