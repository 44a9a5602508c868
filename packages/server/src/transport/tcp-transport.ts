import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { FrameReader, ProtocolError, encodeFrame } from "@shardless/protocol";
import type { Logger } from "../kernel/logger.js";
import type { Connection, ConnectionHandler, TransportLimits } from "./connection.js";

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
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
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

class TcpConnection implements Connection {
  readonly transport = "tcp";
  readonly remoteAddress: string;
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  private ending = false;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly limits: TransportLimits,
    private readonly logger: Logger,
  ) {
    this.remoteAddress = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
  }

  get closed(): boolean {
    return this.ending || this.socket.destroyed;
  }

  bufferedBytes(): number {
    return this.socket.writableLength + this.queuedBytes;
  }

  send(payload: Uint8Array): void {
    if (this.closed) return;
    const frame = encodeFrame(payload);
    this.queued.push(frame);
    this.queuedBytes += frame.length;
    if (this.bufferedBytes() > this.limits.writeBufferBytes) {
      this.logger.warn("client is not reading; connection cut off at its write buffer", {
        connection: this.id,
        bufferedBytes: this.bufferedBytes(),
        writeBufferBytes: this.limits.writeBufferBytes,
      });
      this.destroy();
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Everything sent during this run of effects leaves in one write.
      queueMicrotask(() => this.flush());
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.ending = true;
    this.socket.end();
    // A peer that never closes its side would keep the socket (and its session) forever.
    setTimeout(() => this.socket.destroy(), this.limits.disconnectDelayMs).unref();
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.socket.destroyed) this.socket.resume();
  }

  destroy(): void {
    this.queued = [];
    this.queuedBytes = 0;
    this.ending = true;
    this.socket.destroy();
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.queued.length === 0 || this.socket.destroyed) return;
    const data = this.queued.length === 1 ? this.queued[0]! : Buffer.concat(this.queued, this.queuedBytes);
    this.queued = [];
    this.queuedBytes = 0;
    this.socket.write(data);
  }
}
