// The public API of Shardless. Game code imports from here only.
export {
  ERROR_CODES,
  ShardlessError,
  TransactionConflictError,
  TransactionTimeoutError,
  ResourceUnavailableError,
  MessageRejectedError,
  TransactionNotActiveError,
  NameNotBoundError,
  NameExistsError,
  ObjectNotFoundError,
  ManagedObjectError,
  DataFormatError,
  DataLockedError,
  AsyncHandlerError,
  TaskFailedError,
  WorkerLostError,
  ConfigError,
  AppLoadError,
  isRetryable,
} from "./api/errors.js";
export type { ErrorCode } from "./api/errors.js";
export { managed, registerManagedClass } from "./api/managed.js";
export type { ManagedClass } from "./api/managed.js";
export { Ref, PeriodicTaskHandle } from "./api/ref.js";
export type { AppListener, DataManager, RemovalListener, Task, TaskContext, TaskLog, TaskManager } from "./api/types.js";
export { Delivery } from "./api/session.js";
export type { Channel, ChannelListener, ChannelManager } from "./api/channel.js";
export type { ClientSession, ClientSessionListener } from "./api/session.js";
export { startServer, Server } from "./server.js";
export type { AppListenerClass, StartServerOptions, StartupProgress, StartupReport } from "./server.js";
export { AcceptAllAuthenticator, PasswordFileAuthenticator } from "./sessions/authenticator.js";
export type { Authenticator, LoginAttempt } from "./sessions/authenticator.js";
export type { SessionCounters } from "./sessions/session-service.js";
export type { KernelCounters } from "./kernel/kernel.js";
export { DEFAULT_CONFIG, resolveConfig } from "./config.js";
export type { Durability, ServerConfig } from "./config.js";
export { ManualClock, SystemClock } from "./kernel/clock.js";
export type { Clock, TimerHandle } from "./kernel/clock.js";
export { SeededRandom } from "./kernel/random.js";
export type { Random } from "./kernel/random.js";
export { JsonLineLogger, silentLogger } from "./kernel/logger.js";
export type { Logger, LogLevel } from "./kernel/logger.js";
export type { DataStore, CommitBatch, ObjectRecord, BindingRecord, StoreMeta } from "./kernel/data-store.js";
export { LmdbDataStore } from "./data/lmdb-data-store.js";
export { MemoryDataStore } from "./data/memory-data-store.js";
export { ScalableMap } from "./collections/scalable-map.js";
export type { ScalableMapOptions } from "./collections/scalable-map.js";
export { ScalableSet } from "./collections/scalable-set.js";
export type { ScalableSetOptions } from "./collections/scalable-set.js";
export type { ScalableHashOptions } from "./collections/hash-collection.js";
export { ScalableIterator } from "./collections/scalable-iterator.js";
export type { IteratorMode } from "./collections/scalable-iterator.js";
export type { ScalableKey } from "./collections/keys.js";
export { ScalableList } from "./collections/scalable-list.js";
export type { ScalableListOptions } from "./collections/scalable-list.js";
export { ScalableDeque } from "./collections/scalable-deque.js";
export type { ScalableDequeOptions } from "./collections/scalable-deque.js";
