import {
  PROTOCOL_VERSION,
  ProtocolError,
  decodeClientMessage,
  encodeMessage,
  type ClientMessage,
  type ServerMessage,
} from "@shardless/protocol";
import type { TimerHandle } from "../kernel/clock.js";
import type { EffectData } from "../kernel/effects.js";
import { TaskChain, type Kernel } from "../kernel/kernel.js";
import type { Logger } from "../kernel/logger.js";
import type { Connection, ConnectionHandler } from "../transport/connection.js";
import { TokenBucket } from "./rate-limiter.js";
import { AwayConnection } from "./away-connection.js";
import type { Authenticator } from "./authenticator.js";
import type { SessionEffect, SessionView } from "./session-effects.js";
import { SESSION_KEY_PREFIX, type ChannelMessageArgs, type EndArgs, type LoginArgs, type LoginOutcome, type MessageArgs } from "./session-tasks.js";

/** What happens when a name that is logged in logs in again. */
export type DuplicateLoginPolicy = "refuse" | "replace";

/** Settings of the session service. */
export interface SessionServiceOptions {
  readonly writeBufferBytes: number;
  readonly loginTimeoutMs: number;
  readonly idleTimeoutMs: number | null;
  readonly disconnectDelayMs: number;
  readonly duplicateLogin: DuplicateLoginPolicy;
  /** Logins one address may have in authentication at once; more are refused. */
  readonly maxPendingLoginsPerAddress: number;
  /** Connections one address may have open at once (null: no limit); more are closed at once. */
  readonly maxConnectionsPerAddress: number | null;
  /** Messages a session may send per second on average (null: no limit), and at once above it. */
  readonly maxMessagesPerSecond: number | null;
  readonly messageBurst: number;
  /** A session over its rate has its extra messages dropped, or is disconnected. */
  readonly rateLimitPolicy: "drop" | "disconnect";
  /** How long a session whose client dropped waits for it to reconnect; 0 ends it at once. */
  readonly reconnectWindowMs: number;
  /** Bytes kept for a session while its client is away; past them the session ends. */
  readonly reconnectBufferBytes: number;
}

const LOGIN_REFUSED = "login refused";

type InboxItem =
  | { readonly kind: "message"; readonly message: Uint8Array }
  | { readonly kind: "channel"; readonly channelId: bigint; readonly message: Uint8Array }
  | { readonly kind: "logout" }
  | { readonly kind: "drop" };

/** The session service's view of one connection. */
class LiveSession {
  state: "connected" | "authenticating" | "logging-in" | "active" | "ending" = "connected";
  id: bigint | undefined;
  name = "";
  /** Payloads sent before LOGIN_SUCCESS was written: LOGIN_SUCCESS is always the first thing a client sees. */
  held: Uint8Array[] = [];
  heldBytes = 0;
  loginAcknowledged = false;
  readonly inbox: InboxItem[] = [];
  /** Channels this session is a member of, as of the last released join or leave. */
  readonly channels = new Set<bigint>();
  /** Its message tasks submitted and not yet ordered (they are chained: they commit in order). */
  running = 0;
  /** Orders the session's message tasks one after another. */
  readonly tasks = new TaskChain();
  connectionLost = false;
  loginTimer: TimerHandle | undefined;
  /** Kernel-clock time of the last frame received. */
  lastHeard = 0;
  /** The session's message rate limit, made at login when one is configured. */
  rate: TokenBucket | undefined;
  /** True once this session went over its rate (logged once, not per message). */
  rateLimitLogged = false;
  /** Bytes of the messages waiting in the inbox. */
  inboxBytes = 0;
  readingPaused = false;
  /** Resolves once this connection has no session any more (ended, refused or never logged in). */
  readonly gone: Promise<void>;
  markGone: () => void = () => undefined;

  /** The key a client may reconnect with (hex), once logged in. */
  reconnectKey: string | undefined;
  /** While the client is away: the end of its reconnect window. */
  awayTimer: TimerHandle | undefined;

  /** The connection; an {@link AwayConnection} while the client is away. */
  constructor(public connection: Connection) {
    this.gone = new Promise((resolve) => (this.markGone = resolve));
  }
}

/** Inbox bytes past which a session's connection stops being read, and below which it resumes. */
const INBOX_HIGH_WATER_BYTES = 1024 * 1024;
const INBOX_LOW_WATER_BYTES = 256 * 1024;
const INBOX_HIGH_WATER_COUNT = 4096;
/**
 * A session's messages submitted at once, before the first of them is ordered. Enough for a client
 * that sends in bursts to keep a worker busy; a chain this long is rerun whole if its first fails.
 */
const MAX_CHAINED_MESSAGES = 16;

/** Counters for metrics and tests. */
export interface SessionCounters {
  logins: number;
  loginFailures: number;
  protocolErrors: number;
  droppedMessages: number;
  disconnects: number;
  /** Times a session's reading was paused because its inbox was full. */
  pausedReads: number;
  /** Messages over a session's rate limit (dropped, or the cause of a disconnect). */
  rateLimited: number;
  /** Connections closed at once because their address had too many open. */
  refusedConnections: number;
  /** Sessions resumed by a client that reconnected, and reconnect requests refused. */
  reconnects: number;
  reconnectFailures: number;
  /** Frames received from clients, and their payload bytes. */
  framesIn: number;
  bytesIn: number;
  /** Frames sent to clients (session and channel messages, joins, leaves, replies), and their payload bytes. */
  framesOut: number;
  bytesOut: number;
}

/** Session counters, all zero: a new service's, or those of a server not started yet. */
export function zeroSessionCounters(): SessionCounters {
  return {
    logins: 0,
    loginFailures: 0,
    protocolErrors: 0,
    droppedMessages: 0,
    disconnects: 0,
    pausedReads: 0,
    refusedConnections: 0,
    rateLimited: 0,
    reconnects: 0,
    reconnectFailures: 0,
    framesIn: 0,
    bytesIn: 0,
    framesOut: 0,
    bytesOut: 0,
  };
}

/**
 * Client sessions: login through the authenticator and the application's `loggedIn`, one task at a
 * time per session in arrival order, messages to clients released on commit, logout, drops, and
 * clean-up of sessions left over from before a restart. This is the half that holds connections, on
 * the main thread; the tasks themselves are {@link SessionTasks}'.
 */
export class SessionService implements ConnectionHandler, SessionView {
  readonly counters: SessionCounters = zeroSessionCounters();
  private readonly byConnection = new Map<Connection, LiveSession>();
  private readonly byId = new Map<bigint, LiveSession>();
  private readonly byName = new Map<string, LiveSession>();
  /** Open connections per address, and the connections counted there (with a per-address limit). */
  private readonly openByAddress = new Map<string, number>();
  private readonly counted = new Set<Connection>();
  /** Logged-in sessions by their current reconnect key (hex). */
  private readonly byReconnectKey = new Map<string, LiveSession>();
  /** Connections whose login task is running, by the number the task names them with. */
  private readonly loggingIn = new Map<number, LiveSession>();
  private lastLogin = 0;
  private idleSweep: TimerHandle | undefined;
  private stopping = false;
  private readonly authenticating = new Map<string, number>();

  constructor(
    private readonly kernel: Kernel,
    private readonly authenticator: Authenticator,
    private readonly options: SessionServiceOptions,
    private readonly logger: Logger,
  ) {}

  /** Number of sessions logged in right now. */
  get sessionCount(): number {
    return this.byId.size;
  }

  /** Channels that have at least one connected member (counted when asked: for metrics). */
  get channelsInUse(): number {
    const channels = new Set<bigint>();
    for (const live of this.byId.values()) for (const channel of live.channels) channels.add(channel);
    return channels.size;
  }

  /**
   * Ends, with `disconnected(false)`, every session stored before this start. `onProgress` hears
   * how many have ended of how many, as they end.
   */
  async cleanUpAfterRestart(onProgress: (done: number, total: number) => void = () => undefined): Promise<number> {
    const ids = await this.kernel.run(
      "find sessions left from before the restart",
      (_ctx, tx) => {
        const found: bigint[] = [];
        const prefix = SESSION_KEY_PREFIX;
        for (let key = tx.nextBoundKey(undefined, prefix); key !== undefined; key = tx.nextBoundKey(key, prefix)) found.push(BigInt(key.slice(prefix.length)));
        return found;
      },
      { timeoutMs: Infinity },
    );
    let done = 0;
    onProgress(done, ids.length);
    await Promise.all(ids.map((id) => this.endSession(id, "(restart)", false).then(() => onProgress(++done, ids.length))));
    return ids.length;
  }

  // ---- ConnectionHandler ----

  opened(connection: Connection): void {
    if (!this.admit(connection)) return;
    const live = new LiveSession(connection);
    live.lastHeard = this.kernel.clock.now();
    this.byConnection.set(connection, live);
    this.armIdleSweep();
    live.loginTimer = this.kernel.clock.setTimer(this.options.loginTimeoutMs, () => {
      if (live.state === "connected" || live.state === "authenticating") {
        this.logger.info("connection closed: no login in time", { connection: connection.id, loginTimeoutMs: this.options.loginTimeoutMs });
        // Lost from now on, not from when the transport reports the close: a check that passes in
        // between must not log in a connection that is already gone.
        live.connectionLost = true;
        connection.destroy();
      }
    });
  }

  payload(connection: Connection, payload: Uint8Array): void {
    const live = this.byConnection.get(connection);
    if (live === undefined) return;
    live.lastHeard = this.kernel.clock.now();
    this.counters.framesIn++;
    this.counters.bytesIn += payload.length;
    let message: ClientMessage;
    try {
      message = decodeClientMessage(payload);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      connection.destroy();
      this.protocolError(connection, error);
      return;
    }
    this.receive(live, message);
  }

  protocolError(connection: Connection, error: ProtocolError): void {
    this.counters.protocolErrors++;
    this.logger.info("connection closed: protocol error", { connection: connection.id, peer: connection.remoteAddress, code: error.code, reason: error.message });
  }

  closed(connection: Connection): void {
    this.release(connection);
    const live = this.byConnection.get(connection);
    if (live === undefined) return;
    this.byConnection.delete(connection);
    if (live.loginTimer !== undefined) this.kernel.clock.clearTimer(live.loginTimer);
    // At shutdown, sessions are left stored: the next start ends them with disconnected(false).
    // Only a connection lost from the client's side may come back: one the server cut (a
    // violation, a full write buffer, a limit, the application) ends its session.
    if (!this.stopping && live.state === "active" && this.options.reconnectWindowMs > 0 && !connection.closedByServer) {
      this.goAway(live);
      return;
    }
    live.connectionLost = true;
    if (this.stopping) return;
    if (live.state === "active") this.enqueue(live, { kind: "drop" });
    else if (live.state !== "logging-in") live.markGone();
    // "logging-in": the login completion sees connectionLost and ends the session.
  }

  /** Counts `connection` against its address's limit; false (and closed) when over it. */
  private admit(connection: Connection): boolean {
    const limit = this.options.maxConnectionsPerAddress;
    if (limit === null) return true;
    const host = hostOf(connection.remoteAddress);
    const open = this.openByAddress.get(host) ?? 0;
    if (open >= limit) {
      this.counters.refusedConnections++;
      this.logger.debug("connection closed: too many from its address", { peer: connection.remoteAddress, maxConnectionsPerAddress: limit });
      connection.destroy();
      return false;
    }
    this.openByAddress.set(host, open + 1);
    this.counted.add(connection);
    return true;
  }

  /** Gives back the address's count of a connection {@link admit} counted. */
  private release(connection: Connection): void {
    if (!this.counted.delete(connection)) return;
    const host = hostOf(connection.remoteAddress);
    const left = (this.openByAddress.get(host) ?? 1) - 1;
    if (left === 0) this.openByAddress.delete(host);
    else this.openByAddress.set(host, left);
  }

  /** Stops ending sessions and the idle sweep: the server is shutting down. */
  stop(): void {
    this.stopping = true;
    for (const live of this.byId.values()) if (live.awayTimer !== undefined) this.kernel.clock.clearTimer(live.awayTimer);
    if (this.idleSweep !== undefined) this.kernel.clock.clearTimer(this.idleSweep);
    this.idleSweep = undefined;
  }

  /** While connections exist, checks every half idle timeout for connections that went quiet. */
  private armIdleSweep(): void {
    const timeout = this.options.idleTimeoutMs;
    if (timeout === null || this.idleSweep !== undefined) return;
    this.idleSweep = this.kernel.clock.setTimer(timeout / 2, () => {
      this.idleSweep = undefined;
      const now = this.kernel.clock.now();
      for (const live of this.byConnection.values()) {
        if (now - live.lastHeard < timeout || live.connection.closed) continue;
        this.logger.info("connection closed: idle", { connection: live.connection.id, session: live.name, idleTimeoutMs: timeout });
        live.connection.destroy();
      }
      if (this.byConnection.size > 0) this.armIdleSweep();
    });
  }

  // ---- SessionView (asked by the session tasks) ----

  backlogOf(id: bigint): number | undefined {
    const live = this.byId.get(id);
    if (live === undefined || live.connectionLost || live.state === "ending") return undefined;
    return live.connection.bufferedBytes() + live.heldBytes;
  }

  cutOff(id: bigint, backlog: number): void {
    const live = this.byId.get(id);
    if (live === undefined) return;
    this.logger.warn("client is not reading; connection cut off at its write buffer", {
      session: live.name,
      bufferedBytes: backlog,
      writeBufferBytes: this.options.writeBufferBytes,
    });
    live.connection.destroy();
  }

  /** Sessions whose clients have at least `bytes` waiting to be written to them, with how many. */
  backlogsOver(bytes: number): [bigint, number][] {
    const found: [bigint, number][] = [];
    for (const id of this.byId.keys()) {
      const backlog = this.backlogOf(id);
      if (backlog !== undefined && backlog >= bytes) found.push([id, backlog]);
    }
    return found;
  }

  // ---- effects (released on commit) ----

  /** Releases one effect of a committed task. */
  applyEffect(data: EffectData): void {
    const effect = data as SessionEffect;
    switch (effect.op) {
      case "send":
        this.deliverTo(effect.session, effect.payload);
        return;
      case "fan-out":
        for (const id of effect.sessions) this.deliverTo(id, effect.payload);
        return;
      case "joined":
        this.channelJoined(effect.session, effect.channel, effect.payload);
        return;
      case "left":
        this.channelLeft(effect.session, effect.channel, effect.payload);
        return;
      case "attach": {
        const live = this.loggingIn.get(effect.login);
        if (live !== undefined) this.attach(live, effect.session);
        return;
      }
      case "detach": {
        const live = this.byId.get(effect.session);
        if (live !== undefined) this.detach(live);
        return;
      }
      case "disconnect": {
        const live = this.byId.get(effect.session);
        if (live === undefined) return;
        this.logger.info("session disconnected by the application", { session: live.name });
        live.connection.close(); // the drop that follows runs disconnected(false)
        return;
      }
      case "close": {
        const live = this.byId.get(effect.session);
        if (live === undefined) return;
        this.detach(live);
        live.state = "ending";
        live.connection.close();
        return;
      }
    }
  }

  // ---- incoming messages ----

  private receive(live: LiveSession, message: ClientMessage): void {
    switch (message.op) {
      case "LOGIN_REQUEST":
        if (live.state !== "connected") {
          this.violation(live, "LOGIN_REQUEST on a connection that already logged in");
          return;
        }
        if (message.version !== PROTOCOL_VERSION) {
          // The reference server's behaviour, which clients rely on: close without a reply.
          this.logger.info("connection closed: unsupported protocol version", { connection: live.connection.id, version: message.version });
          live.connection.destroy();
          return;
        }
        void this.login(live, message.name, message.password);
        return;
      case "SESSION_MESSAGE":
        if (live.state !== "active") {
          this.counters.droppedMessages++;
          return;
        }
        if (!this.withinRate(live)) return;
        // The payload is a view into the receive buffer: copy what the task will keep.
        this.enqueue(live, { kind: "message", message: message.message.slice() });
        return;
      case "CHANNEL_MESSAGE":
        // Only members may send on a channel; anything else is dropped, as the protocol says.
        if (live.state !== "active" || !live.channels.has(message.channelId)) {
          this.counters.droppedMessages++;
          return;
        }
        if (!this.withinRate(live)) return;
        this.enqueue(live, { kind: "channel", channelId: message.channelId, message: message.message.slice() });
        return;
      case "LOGOUT_REQUEST":
        if (live.state !== "active") {
          live.connection.destroy();
          return;
        }
        this.enqueue(live, { kind: "logout" });
        return;
      case "RECONNECT_REQUEST":
      case "RELOCATE_REQUEST":
        // Only a fresh connection may ask; on a session it is a protocol violation (and must not
        // leave that session half-ended).
        if (live.state !== "connected") {
          this.violation(live, `${message.op} on a connection that already logged in`);
          return;
        }
        if (message.version !== PROTOCOL_VERSION) {
          live.connection.destroy(); // as for a login with another version: no reply
          return;
        }
        if (message.op === "RECONNECT_REQUEST") this.reconnect(live, message.reconnectKey);
        else this.refuseAndClose(live, { op: "RELOCATE_FAILURE", reason: "relocation refused" }, "relocation is not supported on a single node");
        return;
      case "SUSPEND_MESSAGES_COMPLETE":
        return; // no suspension is ever requested on a single node
    }
  }

  /**
   * Takes one message from the session's rate; false when it is over (the message is dropped, or
   * the session disconnected, as configured). Reported once per session, then counted.
   */
  private withinRate(live: LiveSession): boolean {
    if (live.rate === undefined || live.rate.take(this.kernel.clock.now())) return true;
    this.counters.rateLimited++;
    const disconnect = this.options.rateLimitPolicy === "disconnect";
    if (!live.rateLimitLogged || disconnect) {
      live.rateLimitLogged = true;
      this.logger.warn(disconnect ? "session disconnected: over its message rate" : "session over its message rate; extra messages dropped", {
        session: live.name,
        maxMessagesPerSecond: this.options.maxMessagesPerSecond,
        messageBurst: this.options.messageBurst,
      });
    }
    if (disconnect) live.connection.destroy();
    else this.counters.droppedMessages++;
    return false;
  }

  private async login(live: LiveSession, name: string, password: string): Promise<void> {
    live.state = "authenticating";
    live.name = name;
    const address = hostOf(live.connection.remoteAddress);
    const inProgress = this.authenticating.get(address) ?? 0;
    if (inProgress >= this.options.maxPendingLoginsPerAddress) {
      this.refuseLogin(live, `more than ${this.options.maxPendingLoginsPerAddress} logins in progress from ${address}`);
      return;
    }
    this.authenticating.set(address, inProgress + 1);
    let accepted: boolean;
    try {
      accepted = await this.authenticator.authenticate({ name, password, remoteAddress: live.connection.remoteAddress });
    } catch (error) {
      this.logger.warn("authenticator failed", { name, error });
      accepted = false;
    } finally {
      const left = (this.authenticating.get(address) ?? 1) - 1;
      if (left === 0) this.authenticating.delete(address);
      else this.authenticating.set(address, left);
    }
    if (live.connectionLost) return;
    if (!accepted) {
      this.refuseLogin(live, "authentication failed");
      return;
    }
    const existing = this.byName.get(name);
    if (existing !== undefined) {
      if (existing.connection instanceof AwayConnection) {
        // Its client left without a way back (or chose to log in afresh): the same identity is
        // here now, so the session waiting for it ends, whatever the duplicate-login policy.
        existing.connection.end("a new login of the same name replaced it");
        await Promise.race([existing.gone, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
        if (live.connectionLost) return;
      } else if (this.options.duplicateLogin === "refuse") {
        this.refuseLogin(live, "already logged in");
        return;
      } else {
        this.logger.info("session replaced by a new login of the same name", { session: name });
        existing.connection.destroy();
        // The old session's disconnected() commits before the new loggedIn runs, so game state
        // kept by name is not overwritten by the old session's end (bounded, should that end fail).
        await Promise.race([existing.gone, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
        if (live.connectionLost) return;
      }
    }
    this.byName.set(name, live);
    live.state = "logging-in";
    let outcome: LoginOutcome;
    const login = ++this.lastLogin;
    this.loggingIn.set(login, live);
    try {
      const args: LoginArgs = { login, name };
      outcome = (await this.kernel.submit(`login ${name}`, "session.login", args, { type: "login", logFields: { session: name } })) as LoginOutcome;
    } catch (error) {
      this.logger.warn("login task failed", { session: name, error });
      outcome = { refused: "the application's loggedIn failed" };
    } finally {
      this.loggingIn.delete(login);
    }
    if ("refused" in outcome) {
      if (this.byName.get(name) === live) this.byName.delete(name);
      live.markGone();
      if (!live.connectionLost) this.refuseLogin(live, outcome.refused);
      return;
    }
    if (live.loginTimer !== undefined) this.kernel.clock.clearTimer(live.loginTimer);
    this.counters.logins++;
    if (live.connectionLost) {
      await this.endSession(outcome.id, name, false);
      return;
    }
    live.state = "active";
    live.loginAcknowledged = true;
    if (this.options.maxMessagesPerSecond !== null) live.rate = new TokenBucket(this.options.maxMessagesPerSecond, this.options.messageBurst, this.kernel.clock.now());
    this.write(live, encodeMessage({ op: "LOGIN_SUCCESS", reconnectKey: this.newReconnectKey(live) }));
    for (const payload of live.held) this.write(live, payload);
    live.held = [];
    live.heldBytes = 0;
    this.pump(live);
  }

  private enqueue(live: LiveSession, item: InboxItem): void {
    live.inbox.push(item);
    if (item.kind === "message" || item.kind === "channel") live.inboxBytes += item.message.length;
    // A client that sends faster than its tasks run is slowed down, not buffered without limit.
    if (!live.readingPaused && (live.inboxBytes > INBOX_HIGH_WATER_BYTES || live.inbox.length > INBOX_HIGH_WATER_COUNT)) {
      live.readingPaused = true;
      this.counters.pausedReads++;
      live.connection.pauseReading();
    }
    this.pump(live);
  }

  /**
   * Submits the session's inbox items as tasks. Messages go at once, up to
   * {@link MAX_CHAINED_MESSAGES} not yet ordered, on the session's task chain, so they commit in
   * arrival order (on worker threads a message may run before the one before it is validated, on
   * its writes); a logout or drop waits until every message before it is ordered.
   */
  private pump(live: LiveSession): void {
    while (live.state === "active" && live.running < MAX_CHAINED_MESSAGES) {
      const item = live.inbox[0];
      if (item === undefined || ((item.kind === "logout" || item.kind === "drop") && live.running > 0)) return;
      live.inbox.shift();
      this.startItem(live, item);
    }
  }

  /** Runs one inbox item as a task. */
  private startItem(live: LiveSession, item: InboxItem): void {
    if (item.kind === "message" || item.kind === "channel") live.inboxBytes -= item.message.length;
    if (live.readingPaused && live.inboxBytes < INBOX_LOW_WATER_BYTES && live.inbox.length < INBOX_HIGH_WATER_COUNT / 4) {
      live.readingPaused = false;
      live.connection.resumeReading();
    }
    const id = live.id!;
    if (item.kind === "logout" || item.kind === "drop") {
      live.state = "ending";
      const graceful = item.kind === "logout";
      void this.endSession(id, live.name, graceful).then(() => {
        if (graceful && !live.connectionLost) {
          this.write(live, encodeMessage({ op: "LOGOUT_SUCCESS" }));
          this.closeAfterDelay(live);
        }
      });
      return;
    }
    live.running++;
    // An item is done as soon as its place in commit order is fixed (it committed, or failed for
    // good), not only once its batch is durable: effects are released in commit order anyway.
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      live.running--;
      this.pump(live);
    };
    const options = { onOrdered: done, logFields: { session: live.name }, affinity: id.toString(), chain: live.tasks };
    if (item.kind === "message") {
      const args: MessageArgs = { session: id, message: item.message };
      this.kernel
        .submit(`message from ${live.name}`, "session.message", args, { ...options, type: "session-message" })
        .catch((error: unknown) => this.logger.warn("a session's message task failed", { session: live.name, error }))
        .finally(done);
      return;
    }
    const args: ChannelMessageArgs = { session: id, channel: item.channelId, message: item.message };
    this.kernel
      .submit(`channel message from ${live.name}`, "session.channel", args, { ...options, type: "channel-message" })
      .then((delivered) => {
        if (!delivered) this.counters.droppedMessages++;
      })
      .catch((error: unknown) => this.logger.warn("a channel message task failed", { session: live.name, error }))
      .finally(done);
  }

  /** Runs `disconnected(graceful)` and removes the stored session; a failing listener is logged and skipped. */
  private async endSession(id: bigint, name: string, graceful: boolean): Promise<void> {
    try {
      const args: EndArgs = { session: id, graceful, notify: true };
      await this.kernel.submit(`disconnect ${name}`, "session.end", args, { type: "disconnect", logFields: { session: name }, affinity: id.toString() });
    } catch (error) {
      this.logger.warn("disconnected() failed; removing the session anyway", { session: name, error });
      const args: EndArgs = { session: id, graceful, notify: false };
      await this.kernel.submit(`remove session ${name}`, "session.end", args, { type: "disconnect", logFields: { session: name } }).catch((cleanupError: unknown) =>
        this.logger.error("could not remove a session", { session: name, error: cleanupError }),
      );
    }
    this.counters.disconnects++;
  }

  // ---- outgoing ----

  /** Delivers an already-encoded payload to session `sessionId` if it is live (effects only). */
  deliverTo(sessionId: bigint, payload: Uint8Array): void {
    const live = this.byId.get(sessionId);
    if (live !== undefined) this.deliver(live, payload);
  }

  /** A released join: the session may now send on the channel (effects only). */
  channelJoined(sessionId: bigint, channelId: bigint, payload: Uint8Array): void {
    const live = this.byId.get(sessionId);
    if (live === undefined) return;
    live.channels.add(channelId);
    this.deliver(live, payload);
  }

  /** A released leave (effects only). */
  channelLeft(sessionId: bigint, channelId: bigint, payload: Uint8Array): void {
    const live = this.byId.get(sessionId);
    if (live === undefined) return;
    live.channels.delete(channelId);
    this.deliver(live, payload);
  }

  private deliver(live: LiveSession, payload: Uint8Array): void {
    if (live.connectionLost || live.connection.closed) return;
    if (!live.loginAcknowledged) {
      live.held.push(payload);
      live.heldBytes += payload.length + 2;
      return;
    }
    this.write(live, payload);
  }

  /** Writes a frame to the session's connection, counted. */
  private write(live: LiveSession, payload: Uint8Array): void {
    this.counters.framesOut++;
    this.counters.bytesOut += payload.length;
    live.connection.send(payload);
  }

  private attach(live: LiveSession, id: bigint): void {
    live.id = id;
    this.byId.set(id, live);
  }

  private detach(live: LiveSession): void {
    if (live.id !== undefined && this.byId.get(live.id) === live) this.byId.delete(live.id);
    if (live.reconnectKey !== undefined && this.byReconnectKey.get(live.reconnectKey) === live) this.byReconnectKey.delete(live.reconnectKey);
    if (live.awayTimer !== undefined) this.kernel.clock.clearTimer(live.awayTimer);
    if (this.byName.get(live.name) === live) this.byName.delete(live.name);
    live.markGone();
  }

  // ---- reconnect ----

  /** A fresh reconnect key for `live`, replacing its previous one. */
  private newReconnectKey(live: LiveSession): Uint8Array {
    if (live.reconnectKey !== undefined && this.byReconnectKey.get(live.reconnectKey) === live) this.byReconnectKey.delete(live.reconnectKey);
    const key = randomKey();
    live.reconnectKey = hex(key);
    this.byReconnectKey.set(live.reconnectKey, live);
    return key;
  }

  /**
   * The client dropped: the session waits for it to reconnect, keeping what it is sent, for the
   * reconnect window. Its tasks go on meanwhile (its inbox is processed to the end).
   */
  private goAway(live: LiveSession): void {
    const away = new AwayConnection(live.connection, this.options.reconnectBufferBytes, (reason) => this.awayEnded(live, away, reason));
    live.connection = away;
    live.awayTimer = this.kernel.clock.setTimer(this.options.reconnectWindowMs, () => away.destroy());
    this.logger.info("client away; the session waits for it to reconnect", { session: live.name, reconnectWindowMs: this.options.reconnectWindowMs });
  }

  /** The session's wait for its client ended without it: it ends as a dropped session does. */
  private awayEnded(live: LiveSession, away: AwayConnection, reason: string): void {
    if (live.connection !== away) return;
    if (live.awayTimer !== undefined) this.kernel.clock.clearTimer(live.awayTimer);
    live.awayTimer = undefined;
    this.logger.info("session ended while its client was away", { session: live.name, reason });
    live.connectionLost = true;
    if (this.stopping) return;
    if (live.state === "active") this.enqueue(live, { kind: "drop" });
    else live.markGone();
  }

  /**
   * RECONNECT_REQUEST on a fresh connection: the session with that key continues on it (no
   * disconnected/loggedIn pair), after RECONNECT_SUCCESS with a fresh key and everything it was
   * sent while away, in order. A session whose old connection still looks open (the client saw the
   * drop first) is taken over the same way. Anything else is refused with the generic reason.
   */
  private reconnect(fresh: LiveSession, keyBytes: Uint8Array): void {
    const target = this.options.reconnectWindowMs > 0 ? this.byReconnectKey.get(hex(keyBytes)) : undefined;
    if (target === undefined || target.state !== "active" || target.connectionLost) {
      this.counters.reconnectFailures++;
      this.refuseAndClose(fresh, { op: "RECONNECT_FAILURE", reason: "reconnect refused" }, target === undefined ? "unknown or expired reconnect key" : "the session is ending");
      return;
    }
    if (fresh.loginTimer !== undefined) this.kernel.clock.clearTimer(fresh.loginTimer);
    const previous = target.connection;
    let kept: Uint8Array[] = [];
    if (previous instanceof AwayConnection) {
      kept = previous.takeKept();
      if (target.awayTimer !== undefined) this.kernel.clock.clearTimer(target.awayTimer);
      target.awayTimer = undefined;
    } else {
      // Forget the old connection before closing it, so that its close does not end the session.
      this.byConnection.delete(previous);
      previous.destroy();
    }
    this.byConnection.set(fresh.connection, target);
    fresh.markGone(); // the fresh connection's own placeholder session is never used
    target.connection = fresh.connection;
    target.lastHeard = this.kernel.clock.now();
    this.counters.reconnects++;
    this.logger.info("client reconnected; the session continues", { session: target.name, replayed: kept.length });
    this.write(target, encodeMessage({ op: "RECONNECT_SUCCESS", reconnectKey: this.newReconnectKey(target) }));
    for (const payload of kept) target.connection.send(payload); // counted when they were sent
    if (target.readingPaused) target.connection.pauseReading();
    this.pump(target);
  }

  private refuseLogin(live: LiveSession, reason: string): void {
    this.counters.loginFailures++;
    this.refuseAndClose(live, { op: "LOGIN_FAILURE", reason: LOGIN_REFUSED }, reason);
  }

  private refuseAndClose(live: LiveSession, reply: ServerMessage, reason: string): void {
    // The real reason is for the log only: an unauthenticated peer learns nothing from it.
    this.logger.info("request refused", { connection: live.connection.id, peer: live.connection.remoteAddress, name: live.name, reply: reply.op, reason });
    live.state = "ending";
    this.write(live, encodeMessage(reply));
    this.closeAfterDelay(live);
  }

  /** The client is expected to close; if it has not after the disconnect delay, the server does. */
  private closeAfterDelay(live: LiveSession): void {
    this.kernel.clock.setTimer(this.options.disconnectDelayMs, () => live.connection.close());
  }

  private violation(live: LiveSession, what: string): void {
    this.counters.protocolErrors++;
    this.logger.info("connection closed: protocol violation", { connection: live.connection.id, what });
    live.connection.destroy();
  }
}

/** The host part of `host:port` (IPv6 hosts contain colons too). */
function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function hostOf(address: string): string {
  const colon = address.lastIndexOf(":");
  return colon <= 0 ? address : address.slice(0, colon);
}

function randomKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(16));
}
