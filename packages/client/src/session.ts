import { MAX_MESSAGE_BYTES, PROTOCOL_VERSION, decodeServerMessage, encodeMessage, type ClientMessage, type ServerMessage } from "@shardless/protocol";
import { Emitter } from "./emitter.js";
import { ClientError, ConnectError, LoginFailedError, SessionClosedError } from "./errors.js";
import { openTcpLink, openWebSocketLink, type Link, type WebSocketConstructor } from "./link.js";

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** `ws://host:port/ws` or `wss://…` (browsers and Node), or `tcp://host:port` (Node only). */
  readonly url: string;
  /** The name to log in with. */
  readonly name: string;
  /** The password, if the server checks them. */
  readonly password?: string;
  /** A WebSocket implementation, where there is no global one (Node 20: the `ws` package is tried). */
  readonly WebSocket?: WebSocketConstructor;
  /** How long to wait for the server's answer to the login (default 10 s). */
  readonly loginTimeoutMs?: number;
  /** How long to wait for the connection to open (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** Receives what an event listener throws (by default it is reported as an uncaught error). */
  readonly onListenerError?: (error: unknown) => void;
}

/** A channel this session is a member of. */
export interface ClientChannel {
  /** The channel's id, as the server numbers it. */
  readonly id: bigint;
  /** The channel's name. */
  readonly name: string;
  /** Sends `message` on the channel; the server's channel listener (if any) vets it first. */
  send(message: Uint8Array | string): void;
}

/** How a session ended. */
export interface DisconnectInfo {
  /** True after a logout the server confirmed. */
  readonly graceful: boolean;
  /** What went wrong, when something did. */
  readonly error?: Error;
}

/** The events of a {@link Session}. */
export type SessionEvents = {
  /** A session message from the server. */
  message: [message: Uint8Array];
  /** The server joined this session to a channel. */
  channelJoin: [channel: ClientChannel];
  /** The server removed this session from a channel (or closed it). */
  channelLeave: [channel: ClientChannel];
  /** A message on a channel this session is a member of. */
  channelMessage: [channel: ClientChannel, message: Uint8Array];
  /** The session ended. Emitted once. */
  disconnect: [info: DisconnectInfo];
};

/**
 * A logged-in session. Events that arrive with the login (messages, channel joins) are delivered
 * after `connect` resolves, so listeners attached right away miss nothing.
 */
export class Session extends Emitter<SessionEvents> {
  private readonly joined = new Map<bigint, ClientChannel>();
  private ended = false;
  private loggingOut: Promise<void> | undefined;
  private loggedOut: (() => void) | undefined;
  private logoutConfirmed = false;
  private backlog: (() => void)[] | undefined = [];

  /** @internal Made by {@link connect}. */
  constructor(
    /** The name this session logged in with. */
    readonly name: string,
    private readonly link: Link,
    onListenerError?: (error: unknown) => void,
  ) {
    super(onListenerError);
  }

  /** True until the session ends. */
  get connected(): boolean {
    return !this.ended;
  }

  /** The channels this session is a member of, by id. */
  get channels(): ReadonlyMap<bigint, ClientChannel> {
    return this.joined;
  }

  /** The channel named `name`, if this session is a member. */
  channel(name: string): ClientChannel | undefined {
    for (const channel of this.joined.values()) if (channel.name === name) return channel;
    return undefined;
  }

  /**
   * Sends a session message (strings are sent as UTF-8).
   * @throws {SessionClosedError} after the session ended; {@link ClientError} if the message is too long.
   */
  send(message: Uint8Array | string): void {
    this.write({ op: "SESSION_MESSAGE", message: bytesOf(message) });
  }

  /** Logs out; resolves when the server has confirmed (or the connection is gone). */
  logout(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.loggingOut ??= new Promise((resolve) => {
      this.loggedOut = resolve;
      this.write({ op: "LOGOUT_REQUEST" });
    });
    return this.loggingOut;
  }

  /** Drops the connection without logging out: the server sees the client vanish. */
  close(): void {
    this.link.close();
  }

  /** @internal Called by the link for each payload after the login. */
  receive(message: ServerMessage): void {
    // State (the channel map) is updated at once; events wait until listeners could attach.
    const event = this.apply(message);
    if (event === undefined) return;
    if (this.backlog !== undefined) this.backlog.push(event);
    else event();
  }

  /** @internal Delivers the events that arrived with the login, once listeners had a chance to attach. */
  startDelivery(): void {
    setTimeout(() => {
      const backlog = this.backlog ?? [];
      this.backlog = undefined;
      for (const event of backlog) event();
    }, 0);
  }

  /** @internal The link closed. */
  linkClosed(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    // Graceful only when the server confirmed the logout: it may have ended the session otherwise.
    const graceful = this.logoutConfirmed && error === undefined;
    this.loggedOut?.();
    const finish = () => this.emit("disconnect", error === undefined ? { graceful } : { graceful, error });
    if (this.backlog !== undefined) this.backlog.push(finish);
    else finish();
  }

  /** Applies `message` to the session's state; returns the event to emit, if any. */
  private apply(message: ServerMessage): (() => void) | undefined {
    switch (message.op) {
      case "SESSION_MESSAGE":
        return () => this.emit("message", message.message);
      case "CHANNEL_JOIN": {
        const channel = this.makeChannel(message.channelId, message.channelName);
        this.joined.set(channel.id, channel);
        return () => this.emit("channelJoin", channel);
      }
      case "CHANNEL_LEAVE": {
        const channel = this.joined.get(message.channelId);
        if (channel === undefined) return undefined;
        this.joined.delete(message.channelId);
        return () => this.emit("channelLeave", channel);
      }
      case "CHANNEL_MESSAGE": {
        const channel = this.joined.get(message.channelId) ?? this.makeChannel(message.channelId, "");
        return () => this.emit("channelMessage", channel, message.message);
      }
      case "LOGOUT_SUCCESS":
        this.logoutConfirmed = true;
        this.link.close();
        return undefined;
      default:
        return undefined; // suspend/relocate are not used by a single-node server
    }
  }

  private makeChannel(id: bigint, name: string): ClientChannel {
    return { id, name, send: (message) => this.write({ op: "CHANNEL_MESSAGE", channelId: id, message: bytesOf(message) }) };
  }

  private write(message: ClientMessage): void {
    if (this.ended) throw new SessionClosedError();
    let payload: Uint8Array;
    try {
      payload = encodeMessage(message);
    } catch (cause) {
      throw new ClientError("ERR_CLIENT_ARGUMENT", (cause as Error).message, { cause });
    }
    this.link.send(payload);
  }
}

/**
 * Connects and logs in.
 * @throws {LoginFailedError} if the server refuses the login; {@link ConnectError} if the connection
 *   cannot be opened or closes before the login completes.
 */
export async function connect(options: ConnectOptions): Promise<Session> {
  const link = await openLink(options);
  return new Promise<Session>((resolve, reject) => {
    let session: Session | undefined;
    const timer = setTimeout(() => {
      link.close();
      reject(new ConnectError(`no answer to the login within ${options.loginTimeoutMs ?? 10_000} ms`));
    }, options.loginTimeoutMs ?? 10_000);
    link.onPayload = (payload) => {
      let message: ServerMessage;
      try {
        message = decodeServerMessage(payload);
      } catch (error) {
        link.close();
        if (session === undefined) reject(new ClientError("ERR_CLIENT_PROTOCOL", (error as Error).message, { cause: error }));
        else session.linkClosed(error as Error);
        return;
      }
      if (session !== undefined) {
        session.receive(message);
        return;
      }
      clearTimeout(timer);
      if (message.op === "LOGIN_SUCCESS") {
        session = new Session(options.name, link, options.onListenerError);
        resolve(session);
        session.startDelivery();
      } else if (message.op === "LOGIN_FAILURE") {
        link.close();
        reject(new LoginFailedError(message.reason));
      } else {
        link.close();
        reject(new ClientError("ERR_CLIENT_PROTOCOL", `expected the login's answer, got ${message.op}`));
      }
    };
    link.onClose = (error) => {
      if (session !== undefined) {
        session.linkClosed(error);
        return;
      }
      clearTimeout(timer);
      reject(new ConnectError("the server closed the connection before the login completed", { cause: error }));
    };
    link.send(encodeMessage({ op: "LOGIN_REQUEST", version: PROTOCOL_VERSION, name: options.name, password: options.password ?? "" }));
  });
}

async function openLink(options: ConnectOptions): Promise<Link> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new ClientError("ERR_CLIENT_ARGUMENT", `not a URL: ${options.url}`);
  }
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  if (url.protocol === "tcp:") return openTcpLink(url.hostname, Number(url.port), timeoutMs);
  if (url.protocol === "ws:" || url.protocol === "wss:") return openWebSocketLink(options.url, timeoutMs, options.WebSocket);
  throw new ClientError("ERR_CLIENT_ARGUMENT", `unsupported URL scheme ${url.protocol} (use ws://, wss:// or tcp://)`);
}

function bytesOf(message: Uint8Array | string): Uint8Array {
  const bytes = typeof message === "string" ? new TextEncoder().encode(message) : message;
  if (bytes.length > MAX_MESSAGE_BYTES) throw new ClientError("ERR_CLIENT_ARGUMENT", `message of ${bytes.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  return bytes;
}
