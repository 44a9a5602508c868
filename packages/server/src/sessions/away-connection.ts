import type { Connection } from "../transport/connection.js";

/**
 * Stands in for the connection of a session whose client dropped and may reconnect: what the
 * session is sent meanwhile is kept, in order, up to `limitBytes`, for the client to get on its
 * return. Past the limit, or when closed, it ends (`onEnd`, once): the session can no longer be
 * resumed without losing messages.
 */
export class AwayConnection implements Connection {
  readonly transport: "tcp" | "ws";
  private kept: Uint8Array[] = [];
  private keptBytes = 0;
  private ended = false;

  constructor(
    private readonly previous: Connection,
    private readonly limitBytes: number,
    private readonly onEnd: (reason: string) => void,
  ) {
    this.transport = previous.transport;
  }

  get id(): number {
    return this.previous.id;
  }

  get remoteAddress(): string {
    return this.previous.remoteAddress;
  }

  get closed(): boolean {
    return this.ended;
  }

  get closedByServer(): boolean {
    return this.ended;
  }

  /** Nothing waits on a socket: the limit is enforced here, by ending the session. */
  bufferedBytes(): number {
    return 0;
  }

  send(payload: Uint8Array): void {
    if (this.ended) return;
    this.kept.push(payload);
    this.keptBytes += payload.length + 2;
    if (this.keptBytes > this.limitBytes) this.end(`more than ${this.limitBytes} bytes were sent to it while its client was away`);
  }

  close(): void {
    this.end("the application disconnected it while its client was away");
  }

  destroy(): void {
    this.end("its client did not come back within the reconnect window");
  }

  pauseReading(): void {}

  resumeReading(): void {}

  /** Hands over what was kept, in order, and stops keeping: the client is back. */
  takeKept(): Uint8Array[] {
    const kept = this.kept;
    this.kept = [];
    this.keptBytes = 0;
    this.ended = true;
    return kept;
  }

  /** Ends with `reason` (given to `onEnd`), dropping what was kept. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.kept = [];
    this.onEnd(reason);
  }
}
