import { decodeChannelId, encodeChannelId } from "./channel-id.js";
import { MAX_STRING_BYTES, modifiedUtf8Length, readModifiedUtf8, writeModifiedUtf8 } from "./modified-utf8.js";
import { ProtocolError } from "./protocol-error.js";

/** The protocol version this codec speaks. */
export const PROTOCOL_VERSION = 5;

/** Opcodes, as on the wire. */
export const Opcode = {
  LOGIN_REQUEST: 0x10,
  LOGIN_SUCCESS: 0x11,
  LOGIN_FAILURE: 0x12,
  LOGIN_REDIRECT: 0x13,
  SUSPEND_MESSAGES: 0x14,
  SUSPEND_MESSAGES_COMPLETE: 0x15,
  RESUME_MESSAGES: 0x16,
  RELOCATE_NOTIFICATION: 0x17,
  RELOCATE_REQUEST: 0x18,
  RELOCATE_SUCCESS: 0x19,
  RELOCATE_FAILURE: 0x1a,
  RECONNECT_REQUEST: 0x20,
  RECONNECT_SUCCESS: 0x21,
  RECONNECT_FAILURE: 0x22,
  SESSION_MESSAGE: 0x30,
  LOGOUT_REQUEST: 0x40,
  LOGOUT_SUCCESS: 0x41,
  CHANNEL_JOIN: 0x50,
  CHANNEL_LEAVE: 0x51,
  CHANNEL_MESSAGE: 0x52,
} as const;

/** The name of an opcode. */
export type OpcodeName = keyof typeof Opcode;

/** Messages a client sends. Byte arrays of decoded messages may share memory with the input. */
export type ClientMessage =
  | { readonly op: "LOGIN_REQUEST"; readonly version: number; readonly name: string; readonly password: string }
  | { readonly op: "SUSPEND_MESSAGES_COMPLETE" }
  | { readonly op: "RELOCATE_REQUEST"; readonly version: number; readonly relocationKey: Uint8Array }
  | { readonly op: "RECONNECT_REQUEST"; readonly version: number; readonly reconnectKey: Uint8Array }
  | { readonly op: "SESSION_MESSAGE"; readonly message: Uint8Array }
  | { readonly op: "LOGOUT_REQUEST" }
  | { readonly op: "CHANNEL_MESSAGE"; readonly channelId: bigint; readonly message: Uint8Array };

/** Messages the server sends. */
export type ServerMessage =
  | { readonly op: "LOGIN_SUCCESS"; readonly reconnectKey: Uint8Array }
  | { readonly op: "LOGIN_FAILURE"; readonly reason: string }
  | { readonly op: "LOGIN_REDIRECT"; readonly host: string; readonly port: number }
  | { readonly op: "SUSPEND_MESSAGES" }
  | { readonly op: "RESUME_MESSAGES" }
  | { readonly op: "RELOCATE_NOTIFICATION"; readonly host: string; readonly port: number; readonly relocationKey: Uint8Array }
  | { readonly op: "RELOCATE_SUCCESS"; readonly reconnectKey: Uint8Array }
  | { readonly op: "RELOCATE_FAILURE"; readonly reason: string }
  | { readonly op: "RECONNECT_SUCCESS"; readonly reconnectKey: Uint8Array }
  | { readonly op: "RECONNECT_FAILURE"; readonly reason: string }
  | { readonly op: "SESSION_MESSAGE"; readonly message: Uint8Array }
  | { readonly op: "LOGOUT_SUCCESS" }
  | { readonly op: "CHANNEL_JOIN"; readonly channelName: string; readonly channelId: bigint }
  | { readonly op: "CHANNEL_LEAVE"; readonly channelId: bigint }
  | { readonly op: "CHANNEL_MESSAGE"; readonly channelId: bigint; readonly message: Uint8Array };

/** Any message, either direction. */
export type Message = ClientMessage | ServerMessage;

/** Largest payload (opcode included) a frame can carry: its length prefix is an unsigned short. */
export const MAX_PAYLOAD_BYTES = 0xffff;

/** Largest application message in a SESSION_MESSAGE, leaving room for the frame's other bytes. */
export const MAX_MESSAGE_BYTES = 65524;

/** Writes fields into a growing payload. */
class PayloadWriter {
  private bytes = new Uint8Array(64);
  private length = 0;

  byte(value: number): this {
    this.ensure(1);
    this.bytes[this.length++] = value & 0xff;
    return this;
  }

  ushort(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new RangeError(`unsigned short out of range: ${value}`);
    this.ensure(2);
    this.bytes[this.length++] = value >> 8;
    this.bytes[this.length++] = value & 0xff;
    return this;
  }

  int(value: number): this {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) throw new RangeError(`int out of range: ${value}`);
    this.ensure(4);
    new DataView(this.bytes.buffer).setInt32(this.length, value);
    this.length += 4;
    return this;
  }

  string(text: string): this {
    const size = modifiedUtf8Length(text);
    if (size > MAX_STRING_BYTES) throw new RangeError(`string of ${size} encoded bytes exceeds ${MAX_STRING_BYTES}`);
    this.ushort(size);
    this.ensure(size);
    this.length = writeModifiedUtf8(text, this.bytes, this.length);
    return this;
  }

  raw(data: Uint8Array): this {
    this.ensure(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
    return this;
  }

  finish(): Uint8Array {
    if (this.length > MAX_PAYLOAD_BYTES) throw new RangeError(`payload of ${this.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
    return this.bytes.subarray(0, this.length);
  }

  private ensure(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + extra));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
}

/**
 * The payload (opcode first, no length prefix) of `message`.
 * @throws {RangeError} if a field is out of range or the payload exceeds {@link MAX_PAYLOAD_BYTES}.
 */
export function encodeMessage(message: Message): Uint8Array {
  const out = new PayloadWriter().byte(Opcode[message.op]);
  switch (message.op) {
    case "LOGIN_REQUEST":
      return out.byte(message.version).string(message.name).string(message.password).finish();
    case "RELOCATE_REQUEST":
      return out.byte(message.version).raw(message.relocationKey).finish();
    case "RECONNECT_REQUEST":
      return out.byte(message.version).raw(message.reconnectKey).finish();
    case "LOGIN_SUCCESS":
    case "RELOCATE_SUCCESS":
    case "RECONNECT_SUCCESS":
      return out.raw(message.reconnectKey).finish();
    case "LOGIN_FAILURE":
    case "RELOCATE_FAILURE":
    case "RECONNECT_FAILURE":
      return out.string(message.reason).finish();
    case "LOGIN_REDIRECT":
      return out.string(message.host).int(message.port).finish();
    case "RELOCATE_NOTIFICATION":
      return out.string(message.host).int(message.port).raw(message.relocationKey).finish();
    case "SESSION_MESSAGE":
      return out.raw(message.message).finish();
    case "CHANNEL_JOIN":
      return out.string(message.channelName).raw(encodeChannelId(message.channelId)).finish();
    case "CHANNEL_LEAVE":
      return out.raw(encodeChannelId(message.channelId)).finish();
    case "CHANNEL_MESSAGE": {
      const id = encodeChannelId(message.channelId);
      return out.ushort(id.length).raw(id).raw(message.message).finish();
    }
    case "SUSPEND_MESSAGES":
    case "SUSPEND_MESSAGES_COMPLETE":
    case "RESUME_MESSAGES":
    case "LOGOUT_REQUEST":
    case "LOGOUT_SUCCESS":
      return out.finish();
  }
}

/** Reads fields from a payload, throwing only {@link ProtocolError}. */
class PayloadReader {
  private at = 1; // past the opcode

  constructor(private readonly bytes: Uint8Array) {}

  byte(): number {
    this.need(1, "a byte");
    return this.bytes[this.at++]!;
  }

  ushort(): number {
    this.need(2, "an unsigned short");
    const value = (this.bytes[this.at]! << 8) | this.bytes[this.at + 1]!;
    this.at += 2;
    return value;
  }

  int(): number {
    this.need(4, "an int");
    const value = ((this.bytes[this.at]! << 24) | (this.bytes[this.at + 1]! << 16) | (this.bytes[this.at + 2]! << 8) | this.bytes[this.at + 3]!) | 0;
    this.at += 4;
    return value;
  }

  string(): string {
    const length = this.ushort();
    this.need(length, `a string of ${length} bytes`);
    const text = readModifiedUtf8(this.bytes, this.at, length);
    this.at += length;
    return text;
  }

  bytesOf(length: number): Uint8Array {
    this.need(length, `${length} bytes`);
    const slice = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return slice;
  }

  /** The rest of the payload: a trailing ByteArray. */
  rest(): Uint8Array {
    const slice = this.bytes.subarray(this.at);
    this.at = this.bytes.length;
    return slice;
  }

  /** Asserts the whole payload was read. */
  end<T>(message: T): T {
    if (this.at !== this.bytes.length) {
      throw new ProtocolError("trailing-bytes", `${this.bytes.length - this.at} unexpected byte(s) after the fields of opcode 0x${hex(this.bytes[0]!)}`);
    }
    return message;
  }

  private need(count: number, what: string): void {
    if (this.at + count > this.bytes.length) {
      throw new ProtocolError("truncated", `frame ends where ${what} was expected (opcode 0x${hex(this.bytes[0]!)})`);
    }
  }
}

const CLIENT_OPCODES = new Set<number>([
  Opcode.LOGIN_REQUEST,
  Opcode.SUSPEND_MESSAGES_COMPLETE,
  Opcode.RELOCATE_REQUEST,
  Opcode.RECONNECT_REQUEST,
  Opcode.SESSION_MESSAGE,
  Opcode.LOGOUT_REQUEST,
  Opcode.CHANNEL_MESSAGE,
]);
const KNOWN_OPCODES = new Set<number>(Object.values(Opcode));

/**
 * Decodes a payload a client sent (opcode first, no length prefix).
 * @throws {ProtocolError} for an empty payload, an unknown opcode, a server-only opcode, a truncated
 *   field, malformed text, or bytes left over.
 */
export function decodeClientMessage(payload: Uint8Array): ClientMessage {
  const op = opcodeOf(payload);
  if (!CLIENT_OPCODES.has(op)) throw new ProtocolError("wrong-direction", `opcode 0x${hex(op)} is sent by servers only`);
  const read = new PayloadReader(payload);
  switch (op) {
    case Opcode.LOGIN_REQUEST:
      return read.end({ op: "LOGIN_REQUEST", version: read.byte(), name: read.string(), password: read.string() });
    case Opcode.RELOCATE_REQUEST:
      return { op: "RELOCATE_REQUEST", version: read.byte(), relocationKey: read.rest() };
    case Opcode.RECONNECT_REQUEST:
      return { op: "RECONNECT_REQUEST", version: read.byte(), reconnectKey: read.rest() };
    case Opcode.SESSION_MESSAGE:
      return { op: "SESSION_MESSAGE", message: read.rest() };
    case Opcode.CHANNEL_MESSAGE:
      return readChannelMessage(read);
    case Opcode.SUSPEND_MESSAGES_COMPLETE:
      return read.end({ op: "SUSPEND_MESSAGES_COMPLETE" });
    default:
      return read.end({ op: "LOGOUT_REQUEST" });
  }
}

/**
 * Decodes a payload a server sent (opcode first, no length prefix).
 * @throws {ProtocolError} as {@link decodeClientMessage}, with client-only opcodes refused.
 */
export function decodeServerMessage(payload: Uint8Array): ServerMessage {
  const op = opcodeOf(payload);
  if (CLIENT_OPCODES.has(op) && op !== Opcode.SESSION_MESSAGE && op !== Opcode.CHANNEL_MESSAGE) {
    throw new ProtocolError("wrong-direction", `opcode 0x${hex(op)} is sent by clients only`);
  }
  const read = new PayloadReader(payload);
  switch (op) {
    case Opcode.LOGIN_SUCCESS:
      return { op: "LOGIN_SUCCESS", reconnectKey: read.rest() };
    case Opcode.RELOCATE_SUCCESS:
      return { op: "RELOCATE_SUCCESS", reconnectKey: read.rest() };
    case Opcode.RECONNECT_SUCCESS:
      return { op: "RECONNECT_SUCCESS", reconnectKey: read.rest() };
    case Opcode.LOGIN_FAILURE:
      return read.end({ op: "LOGIN_FAILURE", reason: read.string() });
    case Opcode.RELOCATE_FAILURE:
      return read.end({ op: "RELOCATE_FAILURE", reason: read.string() });
    case Opcode.RECONNECT_FAILURE:
      return read.end({ op: "RECONNECT_FAILURE", reason: read.string() });
    case Opcode.LOGIN_REDIRECT:
      return read.end({ op: "LOGIN_REDIRECT", host: read.string(), port: read.int() });
    case Opcode.RELOCATE_NOTIFICATION:
      return { op: "RELOCATE_NOTIFICATION", host: read.string(), port: read.int(), relocationKey: read.rest() };
    case Opcode.SESSION_MESSAGE:
      return { op: "SESSION_MESSAGE", message: read.rest() };
    case Opcode.CHANNEL_JOIN:
      return { op: "CHANNEL_JOIN", channelName: read.string(), channelId: decodeChannelId(read.rest()) };
    case Opcode.CHANNEL_LEAVE:
      return { op: "CHANNEL_LEAVE", channelId: decodeChannelId(read.rest()) };
    case Opcode.CHANNEL_MESSAGE:
      return readChannelMessage(read);
    case Opcode.SUSPEND_MESSAGES:
      return read.end({ op: "SUSPEND_MESSAGES" });
    case Opcode.RESUME_MESSAGES:
      return read.end({ op: "RESUME_MESSAGES" });
    default:
      return read.end({ op: "LOGOUT_SUCCESS" });
  }
}

function readChannelMessage(read: PayloadReader): { op: "CHANNEL_MESSAGE"; channelId: bigint; message: Uint8Array } {
  const idLength = read.ushort();
  const channelId = decodeChannelId(read.bytesOf(idLength));
  return { op: "CHANNEL_MESSAGE", channelId, message: read.rest() };
}

function opcodeOf(payload: Uint8Array): number {
  if (payload.length === 0) throw new ProtocolError("empty-frame", "a frame needs at least an opcode byte");
  const op = payload[0]!;
  if (!KNOWN_OPCODES.has(op)) throw new ProtocolError("unknown-opcode", `unknown opcode 0x${hex(op)}`);
  return op;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0").toUpperCase();
}
