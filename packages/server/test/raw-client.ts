// A Darkstar-protocol client over a raw TCP socket, for tests that check bytes on the wire.
import { connect, type Socket } from "node:net";
import { FrameReader, decodeServerMessage, encodeFrame, encodeMessage, type ClientMessage, type ServerMessage } from "@shardless/protocol";

export class RawClient {
  readonly received: ServerMessage[] = [];
  /** Every byte received, for byte-exact assertions. */
  bytes = Buffer.alloc(0);
  private readonly reader = new FrameReader();
  private waiters: (() => void)[] = [];
  private readonly ended: Promise<void>;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.bytes = Buffer.concat([this.bytes, chunk]);
      for (const payload of this.reader.push(chunk)) this.received.push(decodeServerMessage(payload.slice()));
      this.wake();
    });
    socket.on("error", () => undefined);
    this.ended = new Promise((resolve) =>
      socket.once("close", () => {
        this.closed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static open(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: "127.0.0.1", noDelay: true, allowHalfOpen: options.allowHalfOpen ?? false }, () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  /** Opens a connection and logs in; resolves after LOGIN_SUCCESS. */
  static async login(port: number, name: string, password = "", options: { allowHalfOpen?: boolean } = {}): Promise<RawClient> {
    const client = await RawClient.open(port, options);
    client.send({ op: "LOGIN_REQUEST", version: 5, name, password });
    const reply = await client.next();
    if (reply.op !== "LOGIN_SUCCESS") throw new Error(`login of ${name} failed: ${JSON.stringify(reply)}`);
    return client;
  }

  send(message: ClientMessage): void {
    this.socket.write(encodeFrame(encodeMessage(message)));
  }

  sendRaw(bytes: Uint8Array | string): void {
    this.socket.write(typeof bytes === "string" ? Buffer.from(bytes.replaceAll(" ", ""), "hex") : bytes);
  }

  /** Sends a session message with UTF-8 text. */
  say(text: string): void {
    this.send({ op: "SESSION_MESSAGE", message: new TextEncoder().encode(text) });
  }

  private consumed = 0;

  /** The next message not yet returned by `next`. */
  async next(timeoutMs = 5000): Promise<ServerMessage> {
    await this.until(() => this.received.length > this.consumed, `message #${this.consumed + 1}`, timeoutMs);
    return this.received[this.consumed++]!;
  }

  /** The text of the next message, which must be a session message. */
  async nextText(timeoutMs = 5000): Promise<string> {
    const message = await this.next(timeoutMs);
    if (message.op !== "SESSION_MESSAGE") throw new Error(`expected SESSION_MESSAGE, got ${message.op}`);
    return new TextDecoder().decode(message.message);
  }

  /** Resolves when the server has closed the connection. */
  async whenClosed(timeoutMs = 5000): Promise<void> {
    await this.until(() => this.closed, "the connection to close", timeoutMs);
    await this.ended;
  }

  close(): void {
    this.socket.destroy();
  }

  async until(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
