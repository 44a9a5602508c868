// Darkstar's SimpleSgsProtocol, version 5: the codec shared by the server and the client SDK.
export { ProtocolError } from "./protocol-error.js";
export type { ProtocolErrorReason } from "./protocol-error.js";
export { MAX_STRING_BYTES, modifiedUtf8Length, readModifiedUtf8, writeModifiedUtf8 } from "./modified-utf8.js";
export { MAX_CHANNEL_ID_BYTES, decodeChannelId, encodeChannelId } from "./channel-id.js";
export {
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD_BYTES,
  Opcode,
  PROTOCOL_VERSION,
  decodeClientMessage,
  decodeServerMessage,
  encodeMessage,
} from "./messages.js";
export type { ClientMessage, Message, OpcodeName, ServerMessage } from "./messages.js";
export { FrameReader, LENGTH_PREFIX_BYTES, encodeFrame } from "./frames.js";
