import type { ProtocolError } from "@shardless/protocol";

/**
 * One client connection, whatever carries it (TCP, WebSocket). It moves frame payloads (opcode
 * first, no length prefix); the transport does the framing.
 */
export interface Connection {
  /** Unique within the server, for logs. */
  readonly id: number;
  /** The peer's address, for logs and limits. */
  readonly remoteAddress: string;
  /** Which transport carries it. */
  readonly transport: "tcp" | "ws";
  /** Bytes accepted by {@link send} that the operating system has not taken yet. */
  bufferedBytes(): number;
  /**
   * Queues `payload` to be written. Payloads queued in one event-loop turn leave in one write.
   * A connection whose backlog passes its write buffer is cut off (the client is not reading).
   */
  send(payload: Uint8Array): void;
  /** Writes what is queued, then closes. */
  close(): void;
  /** Closes at once, dropping what is queued. */
  destroy(): void;
  /** Stops reading from the peer (backpressure: the peer's sends then wait in its own buffers). */
  pauseReading(): void;
  /** Reads again after {@link pauseReading}. */
  resumeReading(): void;
  /** True once closed or closing. */
  readonly closed: boolean;
  /**
   * True when this side began the close (a protocol violation, a full write buffer, a limit, the
   * application), false while open or when the peer closed or the network failed.
   */
  readonly closedByServer: boolean;
}

/** What a transport reports to the layer above. */
export interface ConnectionHandler {
  /** A new connection. */
  opened(connection: Connection): void;
  /** A complete frame payload arrived. */
  payload(connection: Connection, payload: Uint8Array): void;
  /** The peer broke the framing; the transport has already destroyed the connection. */
  protocolError(connection: Connection, error: ProtocolError): void;
  /** The connection is gone (called once, after any of the above). */
  closed(connection: Connection): void;
}

/** Limits every transport applies per connection. */
export interface TransportLimits {
  /** Largest frame payload accepted from a client; a larger frame closes the connection. */
  readonly maxFrameBytes: number;
  /** Backlog of unsent bytes past which a connection is cut off. */
  readonly writeBufferBytes: number;
  /** After a graceful close, how long the peer has to close its side before the server cuts it. */
  readonly disconnectDelayMs: number;
}
