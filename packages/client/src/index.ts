// The Shardless client SDK: one API for browsers (WebSocket) and Node (TCP or WebSocket).
export { connect, Session } from "./session.js";
export type { ClientChannel, ConnectOptions, DisconnectInfo, ReconnectOptions, SessionEvents } from "./session.js";
export { ClientError, ConnectError, LoginFailedError, SessionClosedError } from "./errors.js";
export type { WebSocketConstructor } from "./link.js";
