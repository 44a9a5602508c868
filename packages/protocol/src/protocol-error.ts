/** Why a byte sequence is not a valid frame or message. */
export type ProtocolErrorReason =
  | "empty-frame"
  | "frame-too-large"
  | "truncated"
  | "trailing-bytes"
  | "unknown-opcode"
  | "wrong-direction"
  | "malformed-string"
  | "empty-channel-id"
  | "value-out-of-range";

/**
 * Bytes from a peer that break the protocol. Decoders throw nothing else for any input, so the
 * transport can answer every malformed frame the same way: close that one connection.
 */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  /** Stable code: `ERR_PROTOCOL_` and the reason in capitals. */
  readonly code: string;

  constructor(
    /** What is wrong, as a stable token. */
    readonly reason: ProtocolErrorReason,
    message: string,
  ) {
    super(message);
    this.code = `ERR_PROTOCOL_${reason.toUpperCase().replaceAll("-", "_")}`;
  }
}
