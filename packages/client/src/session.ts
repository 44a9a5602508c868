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
  /**
   * Reconnecting after the connection drops (not after `logout()` or `close()`): the session
   * resumes with its reconnect key if the server still holds it, missing nothing the server sent
   * meanwhile. `false` turns it off. Default: 4 attempts, the first at once, then after 100, 200
   * and 400 ms (doubling, at most `maxDelayMs`).
   */
  readonly reconnect?: ReconnectOptions | false;
}

/** How {@link connect}'s sessions reconnect. */
export interface ReconnectOptions {
  /** Attempts before the session is given up (default 4). */
  readonly attempts?: number;
  /** Delay before the second attempt (default 100 ms); it doubles at each attempt after. */
  readonly initialDelayMs?: number;
  /** Longest delay between attempts (default 2000 ms). */
  readonly maxDelayMs?: number;
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
  /** The connection dropped; the session is trying to resume (attempt 1, 2, ...). */
  reconnecting: [attempt: number];
  /** The session resumed on a new connection; nothing the server sent meanwhile was lost. */
  reconnected: [];
  /** The session ended. Emitted once. */
  disconnect: [info: DisconnectInfo];
};

/** Bytes of messages `send` keeps while reconnecting; past them it throws. */
const MAX_QUEUED_BYTES = 1024 * 1024;

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
  /** True once the user closed or logged out: a drop then is the end, not a reason to reconnect. */
  private leaving = false;
  /** While reconnecting: what `send` was given meanwhile, to write once resumed. */
  private queued: Uint8Array[] | undefined;
  private queuedBytes = 0;

  /** @internal Made by {@link connect}. */
  constructor(
    /** The name this session logged in with. */
    readonly name: string,
    private link: Link,
    private reconnectKey: Uint8Array,
    private readonly options: ConnectOptions,
  ) {
    super(options.onListenerError);
    this.attach(link);
  }

  /** True until the session ends (also while it reconnects). */
  get connected(): boolean {
    return !this.ended;
  }

  /** True while the connection is down and the session is trying to resume. */
  get reconnecting(): boolean {
    return this.queued !== undefined;
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
    this.leaving = true;
    this.loggingOut ??= new Promise((resolve) => {
      this.loggedOut = resolve;
      this.write({ op: "LOGOUT_REQUEST" });
    });
    return this.loggingOut;
  }

  /** Drops the connection without logging out (and without reconnecting): the server sees the client vanish. */
  close(): void {
    this.leaving = true;
    if (this.queued !== undefined) this.linkClosed(); // no link to close: end now
    else this.link.close();
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

  /** The link closed: the session resumes on a new one if it may, else it ends. */
  private linkClosed(error?: Error): void {
    if (this.ended) return;
    if (!this.leaving && !this.logoutConfirmed && error === undefined && this.options.reconnect !== false && this.queued === undefined) {
      void this.resume();
      return;
    }
    this.end(error);
  }

  private end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.queued = undefined;
    // Graceful only when the server confirmed the logout: it may have ended the session otherwise.
    const graceful = this.logoutConfirmed && error === undefined;
    this.loggedOut?.();
    const finish = () => this.emit("disconnect", error === undefined ? { graceful } : { graceful, error });
    if (this.backlog !== undefined) this.backlog.push(finish);
    else finish();
  }

  /** Takes `link` as the session's connection: its payloads are the session's from now on. */
  private attach(link: Link, early: readonly ServerMessage[] = []): void {
    this.link = link;
    link.onPayload = (payload) => {
      let message: ServerMessage;
      try {
        message = decodeServerMessage(payload);
      } catch (error) {
        link.onClose = () => undefined;
        link.close();
        this.end(new ClientError("ERR_CLIENT_PROTOCOL", (error as Error).message, { cause: error }));
        return;
      }
      this.receive(message);
    };
    link.onClose = (error) => this.linkClosed(error);
    for (const message of early) this.receive(message);
  }

  /** Tries to resume the session on new connections, with backoff; ends it if it cannot. */
  private async resume(): Promise<void> {
    this.queued = [];
    this.queuedBytes = 0;
    const settings = { attempts: 4, initialDelayMs: 100, maxDelayMs: 2000, ...(this.options.reconnect === false ? {} : this.options.reconnect) };
    for (let attempt = 1; attempt <= settings.attempts && !this.ended; attempt++) {
      if (attempt > 1) await delay(Math.min(settings.maxDelayMs, settings.initialDelayMs * 2 ** (attempt - 2)));
      if (this.ended) return;
      this.emitNow("reconnecting", attempt);
      let outcome: { link: Link; reply: ServerMessage; early: ServerMessage[] } | undefined;
      try {
        outcome = await handshake(await openLink(this.options), { op: "RECONNECT_REQUEST", version: PROTOCOL_VERSION, reconnectKey: this.reconnectKey }, this.options.loginTimeoutMs ?? 10_000);
      } catch {
        continue; // the server is unreachable for now: try again after the backoff
      }
      if (this.ended) {
        outcome.link.close();
        return;
      }
      if (outcome.reply.op !== "RECONNECT_SUCCESS") {
        outcome.link.close();
        break; // the server no longer holds the session: it ended there
      }
      this.reconnectKey = outcome.reply.reconnectKey;
      const queued = this.queued;
      this.queued = undefined;
      this.emitNow("reconnected"); // before the messages the server kept, which follow at once
      this.attach(outcome.link, outcome.early);
      for (const payload of queued) this.link.send(payload);
      return;
    }
    this.end();
  }

  /** Emits at once, or after the login's backlog if that has not been delivered yet. */
  private emitNow<E extends "reconnecting" | "reconnected">(event: E, ...args: SessionEvents[E]): void {
    const emit = () => this.emit(event, ...args);
    if (this.backlog !== undefined) this.backlog.push(emit);
    else emit();
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
    if (this.queued === undefined) {
      this.link.send(payload);
      return;
    }
    if (this.queuedBytes + payload.length > MAX_QUEUED_BYTES) {
      throw new ClientError("ERR_CLIENT_ARGUMENT", `more than ${MAX_QUEUED_BYTES} bytes sent while reconnecting`);
    }
    this.queued.push(payload);
    this.queuedBytes += payload.length;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Sends `request` on `link` and waits for the server's first answer. Payloads that arrive after it
 * (in the same read) are kept for whoever takes the link next.
 * @throws {ConnectError} if the link closes or nothing comes within `timeoutMs`;
 *   {@link ClientError} if the answer cannot be decoded.
 */
function handshake(link: Link, request: ClientMessage, timeoutMs: number): Promise<{ link: Link; reply: ServerMessage; early: ServerMessage[] }> {
  return new Promise((resolve, reject) => {
    let reply: ServerMessage | undefined;
    const early: ServerMessage[] = [];
    const timer = setTimeout(() => {
      link.onClose = () => undefined;
      link.close();
      reject(new ConnectError(`no answer from the server within ${timeoutMs} ms`));
    }, timeoutMs);
    link.onPayload = (payload) => {
      let message: ServerMessage;
      try {
        message = decodeServerMessage(payload);
      } catch (error) {
        clearTimeout(timer);
        link.onClose = () => undefined;
        link.close();
        reject(new ClientError("ERR_CLIENT_PROTOCOL", (error as Error).message, { cause: error }));
        return;
      }
      if (reply !== undefined) {
        early.push(message);
        return;
      }
      clearTimeout(timer);
      reply = message;
      // Resolved on a later microtask: messages read with the answer are collected in `early` first.
      queueMicrotask(() => resolve({ link, reply: message, early }));
    };
    link.onClose = (error) => {
      if (reply !== undefined) return;
      clearTimeout(timer);
      reject(new ConnectError("the server closed the connection before answering", { cause: error }));
    };
    link.send(encodeMessage(request));
  });
}

/**
 * Connects and logs in.
 * @throws {LoginFailedError} if the server refuses the login; {@link ConnectError} if the connection
 *   cannot be opened or closes before the login completes.
 */
export async function connect(options: ConnectOptions): Promise<Session> {
  const link = await openLink(options);
  const timeoutMs = options.loginTimeoutMs ?? 10_000;
  let answer: { reply: ServerMessage; early: ServerMessage[] };
  try {
    answer = await handshake(link, { op: "LOGIN_REQUEST", version: PROTOCOL_VERSION, name: options.name, password: options.password ?? "" }, timeoutMs);
  } catch (error) {
    if (error instanceof ConnectError && error.message.startsWith("no answer")) throw new ConnectError(`no answer to the login within ${timeoutMs} ms`);
    if (error instanceof ConnectError) throw new ConnectError("the server closed the connection before the login completed", { cause: error.cause });
    throw error;
  }
  const { reply, early } = answer;
  if (reply.op === "LOGIN_FAILURE") {
    link.close();
    throw new LoginFailedError(reply.reason);
  }
  if (reply.op !== "LOGIN_SUCCESS") {
    link.close();
    throw new ClientError("ERR_CLIENT_PROTOCOL", `expected the login's answer, got ${reply.op}`);
  }
  const session = new Session(options.name, link, reply.reconnectKey, options);
  for (const message of early) session.receive(message);
  session.startDelivery();
  return session;
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
