import { ConfigError } from "./api/errors.js";
import { DEFAULT_OBJECT_CACHE_ENTRIES } from "./kernel/object-cache.js";

/** How far a commit must get before its effects are released. */
export type Durability = "sync" | "relaxed" | "memory";

/** Every tunable of a server, with its unit in its name. */
export interface ServerConfig {
  /** Directory of the embedded store (ignored with durability `memory`). */
  readonly dataDir: string;
  /** `sync`: fsync before effects (survives power loss); `relaxed`: survives a process crash; `memory`: nothing survives. */
  readonly durability: Durability;
  /** A task's time budget, checked at every data access and at commit. */
  readonly txnTimeoutMs: number;
  /** Attempts before a task that keeps hitting retryable errors is given up. */
  readonly maxTaskAttempts: number;
  /** Upper bound of the randomised backoff between attempts. */
  readonly retryBackoffMaxMs: number;
  /** How often application time is saved while nothing else commits. */
  readonly appTimeCheckpointMs: number;
  /** Application properties passed to `AppListener.initialize`. */
  readonly appProperties: Readonly<Record<string, string>>;
  /** Address the listeners bind to. */
  readonly host: string;
  /** TCP port of the Darkstar protocol; 0 picks a free port; null runs no TCP listener. */
  readonly tcpPort: number | null;
  /** HTTP port, serving WebSocket clients at `/ws`; 0 picks a free port; null runs no HTTP listener. */
  readonly httpPort: number | null;
  /** Largest frame payload accepted from a client; a larger frame closes its connection. */
  readonly maxFrameBytes: number;
  /** Backlog of unsent bytes per connection past which the client is cut off (and sends throw). */
  readonly writeBufferBytes: number;
  /** A connection that has not logged in by then is closed. */
  readonly loginTimeoutMs: number;
  /** A connection that sends nothing for this long is closed; null (the default) never closes one. */
  readonly idleTimeoutMs: number | null;
  /** After a login failure or logout reply, how long the server waits for the client to close. */
  readonly disconnectDelayMs: number;
  /** Logins one address may have in authentication at once (password checks cost CPU); more are refused. */
  readonly maxPendingLoginsPerAddress: number;
  /** Connections one address may have open at once; more are closed at once. null: no limit. */
  readonly maxConnectionsPerAddress: number | null;
  /** When a logged-in name logs in again: `refuse` the new login, or `replace` the old session. */
  readonly duplicateLogin: "refuse" | "replace";
  /** File of names and scrypt password hashes; null lets everyone in (development only). */
  readonly passwordFile: string | null;
  /** Directory whose files the HTTP port serves at `/` (a browser game's pages); null serves none. */
  readonly staticDir: string | null;
  /** Session and channel messages a session may send per second on average; null: no limit. */
  readonly maxMessagesPerSecond: number | null;
  /** Messages a session may send at once above that rate (the bucket's size). */
  readonly messageBurst: number;
  /** What happens to a session over its rate: its extra messages are `drop`ped, or it is `disconnect`ed. */
  readonly rateLimitPolicy: "drop" | "disconnect";
  /**
   * How long a session whose client dropped waits for it to reconnect (RECONNECT_REQUEST with its
   * key) before it ends with `disconnected(false)`; 0 (the default) ends it at once.
   */
  readonly reconnectWindowMs: number;
  /** Bytes of messages kept for a session while its client is away; past them the session ends. */
  readonly reconnectBufferBytes: number;
  /**
   * Worker threads that run tasks; 0 runs every task on the main thread. Workers need the module
   * that defines the application (`appModule`, which the CLI passes), to know its classes.
   */
  readonly workers: number;
  /**
   * Decoded objects each thread that runs tasks keeps between tasks, so that an object read again
   * (a session's record, a room) is not decoded again; 0 keeps none. An object is kept only while
   * unchanged, so this trades memory for CPU and changes no result.
   */
  readonly objectCacheEntries: number;
}

/** The defaults: the only place they are written down. */
export const DEFAULT_CONFIG: ServerConfig = Object.freeze({
  dataDir: "./data",
  durability: "sync",
  txnTimeoutMs: 100,
  maxTaskAttempts: 50,
  retryBackoffMaxMs: 100,
  appTimeCheckpointMs: 1000,
  appProperties: Object.freeze({}),
  host: "0.0.0.0",
  tcpPort: 62964,
  httpPort: 8080,
  maxFrameBytes: 65535,
  writeBufferBytes: 131072,
  loginTimeoutMs: 10_000,
  idleTimeoutMs: null,
  disconnectDelayMs: 1000,
  duplicateLogin: "refuse",
  maxPendingLoginsPerAddress: 16,
  maxConnectionsPerAddress: null,
  passwordFile: null,
  staticDir: null,
  maxMessagesPerSecond: null,
  messageBurst: 100,
  rateLimitPolicy: "drop",
  reconnectWindowMs: 0,
  reconnectBufferBytes: 262_144,
  workers: 0,
  objectCacheEntries: DEFAULT_OBJECT_CACHE_ENTRIES,
});

const DURABILITIES: readonly Durability[] = ["sync", "relaxed", "memory"];

/**
 * Merges `input` over the defaults and checks every field.
 * @throws {ConfigError} naming the first bad field and what it must be; unknown fields are errors too.
 */
export function resolveConfig(input: Readonly<Record<string, unknown>> = {}): ServerConfig {
  for (const key of Object.keys(input)) {
    if (!(key in DEFAULT_CONFIG)) throw new ConfigError(`unknown configuration field ${JSON.stringify(key)}; known fields: ${Object.keys(DEFAULT_CONFIG).join(", ")}`);
  }
  const merged = { ...DEFAULT_CONFIG, ...dropUndefined(input) } as Record<string, unknown>;
  if (typeof merged.dataDir !== "string" || merged.dataDir.length === 0) throw new ConfigError("dataDir must be a non-empty path");
  if (!DURABILITIES.includes(merged.durability as Durability)) {
    throw new ConfigError(`durability must be one of ${DURABILITIES.join(", ")}, got ${JSON.stringify(merged.durability)}`);
  }
  positive(merged, "txnTimeoutMs", { allowInfinity: true });
  positive(merged, "maxTaskAttempts", { integer: true });
  positive(merged, "retryBackoffMaxMs");
  positive(merged, "appTimeCheckpointMs");
  if (typeof merged.host !== "string" || merged.host.length === 0) throw new ConfigError("host must be a non-empty address");
  for (const field of ["tcpPort", "httpPort"]) {
    const port = merged[field];
    if (port !== null && !(Number.isInteger(port) && (port as number) >= 0 && (port as number) <= 65535)) {
      throw new ConfigError(`${field} must be a port number (0 picks a free one) or null, got ${JSON.stringify(port)}`);
    }
  }
  positive(merged, "maxFrameBytes", { integer: true });
  if ((merged.maxFrameBytes as number) > 65535) throw new ConfigError("maxFrameBytes cannot exceed 65535, the protocol's own limit");
  positive(merged, "writeBufferBytes", { integer: true });
  positive(merged, "loginTimeoutMs");
  if (merged.idleTimeoutMs !== null) positive(merged, "idleTimeoutMs");
  positive(merged, "disconnectDelayMs");
  positive(merged, "maxPendingLoginsPerAddress", { integer: true });
  if (merged.maxConnectionsPerAddress !== null) positive(merged, "maxConnectionsPerAddress", { integer: true });
  if (merged.duplicateLogin !== "refuse" && merged.duplicateLogin !== "replace") {
    throw new ConfigError(`duplicateLogin must be "refuse" or "replace", got ${JSON.stringify(merged.duplicateLogin)}`);
  }
  if (merged.maxMessagesPerSecond !== null) positive(merged, "maxMessagesPerSecond");
  positive(merged, "messageBurst", { integer: true });
  if (!(typeof merged.reconnectWindowMs === "number" && merged.reconnectWindowMs >= 0 && Number.isFinite(merged.reconnectWindowMs))) {
    throw new ConfigError(`reconnectWindowMs must be a number ≥ 0 (0 turns reconnect off), got ${JSON.stringify(merged.reconnectWindowMs)}`);
  }
  positive(merged, "reconnectBufferBytes", { integer: true });
  if (!(Number.isInteger(merged.workers) && (merged.workers as number) >= 0 && (merged.workers as number) <= 64)) {
    throw new ConfigError(`workers must be a whole number from 0 (tasks on the main thread) to 64, got ${JSON.stringify(merged.workers)}`);
  }
  if (!(Number.isInteger(merged.objectCacheEntries) && (merged.objectCacheEntries as number) >= 0)) {
    throw new ConfigError(`objectCacheEntries must be a whole number ≥ 0 (0 keeps no decoded objects), got ${JSON.stringify(merged.objectCacheEntries)}`);
  }
  if (merged.rateLimitPolicy !== "drop" && merged.rateLimitPolicy !== "disconnect") {
    throw new ConfigError(`rateLimitPolicy must be "drop" or "disconnect", got ${JSON.stringify(merged.rateLimitPolicy)}`);
  }
  for (const field of ["passwordFile", "staticDir"]) {
    const path = merged[field];
    if (path !== null && (typeof path !== "string" || path.length === 0)) throw new ConfigError(`${field} must be a path or null`);
  }
  const props = merged.appProperties;
  if (typeof props !== "object" || props === null || Array.isArray(props) || Object.values(props).some((v) => typeof v !== "string")) {
    throw new ConfigError("appProperties must be an object whose values are strings");
  }
  return Object.freeze({ ...(merged as unknown as ServerConfig), appProperties: Object.freeze({ ...(props as Record<string, string>) }) });
}

function positive(config: Record<string, unknown>, field: string, options: { integer?: boolean; allowInfinity?: boolean } = {}): void {
  const value = config[field];
  const ok =
    typeof value === "number" &&
    value > 0 &&
    (Number.isFinite(value) || (options.allowInfinity === true && value === Infinity)) &&
    (!options.integer || Number.isInteger(value));
  if (!ok) throw new ConfigError(`${field} must be a ${options.integer ? "whole " : ""}number > 0, got ${JSON.stringify(value)}`);
}

function dropUndefined(input: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined));
}
