import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import type { Logger } from "../kernel/logger.js";
import { ProtocolError } from "@shardless/protocol";
import type { ConnectionHandler, TransportLimits } from "./connection.js";
import { QueuedConnection } from "./queued-connection.js";

/** WebSocket close code for a message type the endpoint cannot accept (RFC 6455). */
const UNSUPPORTED_DATA = 1003;

/**
 * Darkstar's frames over WebSocket, for browsers: each binary message carries one frame payload
 * (no length prefix: the WebSocket frame has one). A text message closes the connection.
 */
export class WsTransport {
  private readonly server: WebSocketServer;

  constructor(
    http: HttpServer,
    path: string,
    private readonly handler: ConnectionHandler,
    private readonly limits: TransportLimits,
    private readonly logger: Logger,
    private readonly nextId: () => number,
  ) {
    // ws itself refuses (close 1009) a message over maxPayload before buffering it whole.
    this.server = new WebSocketServer({ server: http, path, maxPayload: limits.maxFrameBytes, perMessageDeflate: false });
    this.server.on("connection", (socket, request) => this.accept(socket, request));
    // The HTTP server's errors (a port in use) are reported by its listen(); ws re-emits them here.
    this.server.on("error", (error) => this.logger.debug("websocket server error", { error }));
  }

  /** Closes every WebSocket connection (the HTTP server is closed by its owner). */
  async close(): Promise<void> {
    for (const client of this.server.clients) client.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: WebSocket, request: IncomingMessage): void {
    const address = `${request.socket.remoteAddress ?? "?"}:${request.socket.remotePort ?? "?"}`;
    const connection = new WsConnection(this.nextId(), socket, request.socket, address, this.limits, this.logger);
    let ended = false;
    socket.on("close", () => {
      if (ended) return;
      ended = true;
      this.handler.closed(connection);
    });
    socket.on("error", (error) => {
      // ws reports oversized and malformed WebSocket frames here, then closes the socket.
      this.logger.debug("websocket error", { connection: connection.id, error });
      if (!ended) this.handler.protocolError(connection, new ProtocolError("frame-too-large", error.message));
    });
    this.handler.opened(connection);
    socket.on("message", (data: RawData, isBinary: boolean) => {
      if (connection.closed) return;
      if (!isBinary) {
        connection.closeWith(UNSUPPORTED_DATA, "text messages are not part of the protocol");
        this.handler.protocolError(connection, new ProtocolError("unknown-opcode", "a text WebSocket message"));
        return;
      }
      this.handler.payload(connection, toBytes(data));
    });
  }
}

class WsConnection extends QueuedConnection {
  readonly transport = "ws";

  constructor(
    id: number,
    private readonly socket: WebSocket,
    /** The TCP socket under the WebSocket, corked while a batch of messages is written. */
    private readonly stream: Duplex,
    remoteAddress: string,
    limits: TransportLimits,
    logger: Logger,
  ) {
    super(id, remoteAddress, limits, logger);
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.resume();
  }

  /** Closes with a WebSocket close code (for a protocol violation), or at once without one. */
  closeWith(code: number, reason: string): void {
    this.abandon();
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.socket.close(code, reason);
    setTimeout(() => this.killSocket(), this.limits.disconnectDelayMs).unref();
  }

  protected socketBacklog(): number {
    return this.socket.bufferedAmount;
  }

  protected socketClosed(): boolean {
    return this.socket.readyState !== this.socket.OPEN;
  }

  protected write(payloads: Uint8Array[]): void {
    // One WebSocket message per frame, as the protocol says; but one system call for them all:
    // ws writes each message's header and body under its own cork, and ours, around the batch,
    // holds them until the last. A write per message cost about a third of the server's CPU when
    // channels fanned out to many clients.
    this.stream.cork();
    try {
      for (const payload of payloads) this.socket.send(payload, { binary: true });
    } finally {
      this.stream.uncork();
    }
  }

  protected endSocket(): void {
    this.socket.close(1000);
  }

  protected killSocket(): void {
    this.socket.terminate();
  }
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
