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
  private pending: Uint8Array = new Uint8Array(0);
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
    return this.pending.length;
  }

  /**
   * Adds received bytes and returns the payloads of the frames they complete, in order. Payloads may
   * share memory with `chunk`.
   * @throws {ProtocolError} `empty-frame` or `frame-too-large`; after that the stream is unusable and
   *   every later call throws the same error.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failed !== undefined) throw this.failed;
    const data = this.pending.length === 0 ? chunk : concat(this.pending, chunk);
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
    // Copy the remainder: it must not pin a large chunk in memory, nor change if the chunk is reused.
    this.pending = data.slice(at);
    return payloads;
  }

  private fail(error: ProtocolError): ProtocolError {
    this.failed = error;
    this.pending = new Uint8Array(0);
    return error;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a, 0);
  joined.set(b, a.length);
  return joined;
}
