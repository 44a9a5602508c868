import { createServer, type Server, type Socket } from "node:net";
import { FrameReader, ProtocolError, encodeFrame } from "@shardless/protocol";
import type { Logger } from "../kernel/logger.js";
import type { ConnectionHandler, TransportLimits } from "./connection.js";
import { listen, QueuedConnection } from "./queued-connection.js";

/** Darkstar's frames over TCP: a 2-byte big-endian length, then the payload. */
export class TcpTransport {
  private readonly server: Server;
  private readonly connections = new Set<TcpConnection>();

  constructor(
    private readonly handler: ConnectionHandler,
    private readonly limits: TransportLimits,
    private readonly logger: Logger,
    private readonly nextId: () => number,
  ) {
    // Keep-alive probes notice peers that vanished without closing (a dead network path).
    this.server = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 }, (socket) => this.accept(socket));
  }

  /** Starts listening; resolves with the port (useful when `port` is 0). */
  listen(port: number, host: string): Promise<number> {
    return listen(this.server, port, host);
  }

  /** Stops accepting and destroys every connection. */
  async close(): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.destroy();
    await stopped;
  }

  private accept(socket: Socket): void {
    const connection = new TcpConnection(this.nextId(), socket, this.limits, this.logger);
    this.connections.add(connection);
    const reader = new FrameReader(this.limits.maxFrameBytes);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.connections.delete(connection);
      this.handler.closed(connection);
    };
    socket.on("close", end);
    socket.on("error", (error) => this.logger.debug("tcp connection error", { connection: connection.id, error }));
    this.handler.opened(connection);
    socket.on("data", (chunk: Buffer) => {
      let payloads: Uint8Array[];
      try {
        payloads = reader.push(chunk);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        connection.destroy();
        this.handler.protocolError(connection, error);
        return;
      }
      for (const payload of payloads) {
        if (connection.closed) return;
        this.handler.payload(connection, payload);
      }
    });
  }
}

class TcpConnection extends QueuedConnection {
  readonly transport = "tcp";

  constructor(
    id: number,
    private readonly socket: Socket,
    limits: TransportLimits,
    logger: Logger,
  ) {
    super(id, `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`, limits, logger);
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.socket.destroyed) this.socket.resume();
  }

  protected socketBacklog(): number {
    return this.socket.writableLength;
  }

  protected socketClosed(): boolean {
    return this.socket.destroyed;
  }

  protected write(payloads: Uint8Array[]): void {
    // One write for everything queued: length-prefixed frames back to back.
    const frames = payloads.map(encodeFrame);
    this.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  }

  protected endSocket(): void {
    this.socket.end();
  }

  protected killSocket(): void {
    this.socket.destroy();
  }
}
