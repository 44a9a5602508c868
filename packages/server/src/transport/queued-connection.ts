import type { Server as NetServer } from "node:net";
import type { AddressInfo } from "node:net";
import type { Logger } from "../kernel/logger.js";
import type { Connection, TransportLimits } from "./connection.js";

/**
 * What every transport's connection shares: payloads sent during one turn of the event loop are
 * queued and leave together at the end of it, and a peer whose backlog passes the write buffer is
 * cut off.
 * Subclasses say how bytes reach the socket.
 */
export abstract class QueuedConnection implements Connection {
  abstract readonly transport: "tcp" | "ws";
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  /** True once a close or destroy has begun. */
  protected ending = false;

  constructor(
    readonly id: number,
    readonly remoteAddress: string,
    protected readonly limits: TransportLimits,
    private readonly logger: Logger,
  ) {}

  /** Bytes the socket has accepted but not yet sent. */
  protected abstract socketBacklog(): number;
  /** True once the socket itself is closed. */
  protected abstract socketClosed(): boolean;
  /** Writes the queued payloads (in order) to the socket. */
  protected abstract write(payloads: Uint8Array[], bytes: number): void;
  /** Starts a graceful close of the socket, after the last write. */
  protected abstract endSocket(): void;
  /** Closes the socket at once. */
  protected abstract killSocket(): void;

  abstract pauseReading(): void;
  abstract resumeReading(): void;

  get closed(): boolean {
    return this.ending || this.socketClosed();
  }

  get closedByServer(): boolean {
    return this.ending;
  }

  bufferedBytes(): number {
    return this.socketBacklog() + this.queuedBytes;
  }

  send(payload: Uint8Array): void {
    if (this.closed) return;
    this.queued.push(payload);
    this.queuedBytes += payload.length;
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
      // Everything sent during this turn of the event loop leaves in one write. Flushing at the end
      // of each run of effects instead wrote once per group commit: with worker threads, whose
      // answers each end a small group commit, that was a write per reply, and the writes took 14%
      // of the main thread against 2% with no workers (networked transfers, 2 workers: about
      // 13-14k/s against 16-17k/s per turn).
      setImmediate(() => this.flush());
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.ending = true;
    this.endSocket();
    // A peer that never closes its side would keep the socket (and its session) forever.
    setTimeout(() => this.killSocket(), this.limits.disconnectDelayMs).unref();
  }

  destroy(): void {
    this.abandon();
    this.killSocket();
  }

  /** Drops what is queued and marks the connection as closing. */
  protected abandon(): void {
    this.queued = [];
    this.queuedBytes = 0;
    this.ending = true;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.queued.length === 0 || this.socketClosed()) return;
    const queued = this.queued;
    const bytes = this.queuedBytes;
    this.queued = [];
    this.queuedBytes = 0;
    this.write(queued, bytes);
  }
}

/** Starts `server` listening; resolves with its port (useful when `port` is 0). */
export function listen(server: NetServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
