import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { AppLoadError, ConfigError, DataFormatError } from "./api/errors.js";
import { isManagedObject, managedTagOf } from "./api/managed.js";
import type { AppListener, Task, TaskContext } from "./api/types.js";
import { resolveConfig, type ServerConfig } from "./config.js";
import { LmdbDataStore } from "./data/lmdb-data-store.js";
import { MemoryDataStore } from "./data/memory-data-store.js";
import { SystemClock, type Clock } from "./kernel/clock.js";
import { serviceKey } from "./kernel/data-manager.js";
import type { DataStore } from "./kernel/data-store.js";
import { Kernel, type KernelCounters, type RunOptions } from "./kernel/kernel.js";
import { JsonLineLogger, type Logger } from "./kernel/logger.js";
import type { SessionCounters } from "./sessions/session-service.js";
import { systemRandom, type Random } from "./kernel/random.js";
import { callSync, type Transaction } from "./kernel/transaction.js";
import { objectCodec } from "./kernel/codec.js";
import { AcceptAllAuthenticator, PasswordFileAuthenticator, type Authenticator } from "./sessions/authenticator.js";
import { SessionService, zeroSessionCounters } from "./sessions/session-service.js";
import { TaskService } from "./tasks/task-service.js";
import { APP_TASK, appTaskArgs } from "./tasks/app-task.js";
import { installTransactionalServices } from "./task-services.js";
import { WorkerPool } from "./workers/worker-pool.js";
import { TcpTransport } from "./transport/tcp-transport.js";
import { HttpListener } from "./transport/http-listener.js";
import { ServerMetrics } from "./metrics/server-metrics.js";
import { DashboardData } from "./dashboard/dashboard-data.js";

/** A class whose instances are the application: managed, with a no-argument constructor. */
export type AppListenerClass = new () => AppListener;

/** Options of {@link startServer}: the configuration fields plus what only code can pass. */
export interface StartServerOptions extends Partial<ServerConfig> {
  /** The application's listener class (decorated with `@managed`). */
  readonly app: AppListenerClass;
  /**
   * The module (a path or a `file:` URL) that defines the application's managed classes, imported by
   * each worker thread. Needed when `workers` is above 0; the CLI passes the module it loaded.
   */
  readonly appModule?: string;
  /**
   * A module each worker thread imports before `appModule` (a path or a `file:` URL): loader hooks,
   * instrumentation, anything the application's module needs set up first.
   */
  readonly workerPreload?: string;
  /** The clock; a `ManualClock` lets tests drive time. */
  readonly clock?: Clock;
  /** Randomness for backoff jitter. */
  readonly random?: Random;
  /** Where log records go; JSON lines on stderr by default. */
  readonly logger?: Logger;
  /** A store to use instead of the one `durability` and `dataDir` choose. */
  readonly store?: DataStore;
  /** Called once if the store fails to write: the server can no longer commit and should be stopped. */
  readonly onFatal?: (error: unknown) => void;
  /** Decides logins; overrides `passwordFile`. */
  readonly authenticator?: Authenticator;
  /** Told how start-up's recovery work goes on a big store (the CLI shows it as a live line). */
  readonly onStartupProgress?: (progress: StartupProgress) => void;
}

/** How far a phase of start-up has got. `total` is known once the phase has counted its work. */
export interface StartupProgress {
  readonly phase: "resuming scheduled tasks" | "ending sessions from before the restart";
  readonly done: number;
  readonly total?: number;
}

const APP_BINDING = serviceKey("app");

/** The services of a running server. */
interface ServerParts {
  readonly kernel: Kernel;
  readonly tasks: TaskService;
  readonly sessions: SessionService;
  readonly store: DataStore;
  readonly tcp: TcpTransport | undefined;
  readonly http: HttpListener | undefined;
  readonly workers: WorkerPool | undefined;
}

/** What start-up found and did. */
export interface StartupReport {
  readonly initialized: boolean;
  readonly resumedTasks: number;
  /** Sessions stored before this start, ended with `disconnected(false)`. */
  readonly endedSessions: number;
  readonly tcpPort: number | null;
  readonly httpPort: number | null;
}

/** A running server. */
export class Server {
  private closing: Promise<void> | undefined;

  /** @internal Made by {@link startServer}. */
  constructor(
    /** The validated configuration the server runs with. */
    readonly config: ServerConfig,
    private readonly parts: ServerParts,
    /** What happened at start-up. */
    readonly startup: StartupReport,
  ) {}

  /** The TCP port the Darkstar protocol listens on, or null without a TCP listener. */
  get tcpPort(): number | null {
    return this.startup.tcpPort;
  }

  /** The HTTP port (WebSocket clients connect to `/ws` there), or null without an HTTP listener. */
  get httpPort(): number | null {
    return this.startup.httpPort;
  }

  /** Number of scheduled tasks found in the store at start-up. */
  get resumedTasks(): number {
    return this.startup.resumedTasks;
  }

  /** True when this start ran `initialize` (the store was new). */
  get initialized(): boolean {
    return this.startup.initialized;
  }

  /** Counters of the session service (logins, failures, protocol errors, ...). */
  get sessionCounters(): Readonly<SessionCounters> {
    return this.parts.sessions.counters;
  }

  /** Counters of the kernel: tasks committed, conflicts, timeouts, failures. */
  get taskCounters(): Readonly<KernelCounters> {
    return this.parts.kernel.counters;
  }

  /** Number of sessions logged in now. */
  get sessionCount(): number {
    return this.parts.sessions.sessionCount;
  }

  /**
   * Runs `body` as a task on this server (retried like any task) and returns what it returned once
   * its commit is durable. For tools, tests and embedding code; the value must not be a managed
   * object (it is only valid inside the task).
   */
  run<T>(name: string, body: (ctx: TaskContext) => T, options?: RunOptions): Promise<T> {
    return this.parts.kernel.run(name, body, options);
  }

  /**
   * Runs the {@link Task} object `task` once, now, as a task (retried like any task), and returns
   * what its `run` returned once its commit is durable. Unlike a closure given to {@link run}, the
   * task can run on a worker thread: it is copied as it would be stored (its fields, with Refs),
   * not stored. For embedding code that submits work of its own.
   */
  async runTask(task: Task, options?: Pick<RunOptions, "timeoutMs" | "maxAttempts" | "type" | "affinity">): Promise<unknown> {
    return this.parts.kernel.submit(`${task.constructor.name}.run`, APP_TASK, appTaskArgs(task), { type: "app-task", ...options });
  }

  /** Application time now, in ms (see `TaskContext.now`). */
  appTimeMs(): number {
    return this.parts.kernel.appTimeMs();
  }

  /** Resolves when no task is queued or running and every commit is durable. */
  whenIdle(): Promise<void> {
    return this.parts.kernel.whenIdle();
  }

  /**
   * Stops the server: no new tasks start, accepted ones finish, everything is made durable and the
   * store is closed. Scheduled tasks stay stored and resume at the next start. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    // Listeners close first, storage last: the reverse of start-up.
    this.parts.sessions.stop();
    await Promise.all([this.parts.tcp?.close(), this.parts.http?.close()]);
    this.parts.tasks.stop();
    try {
      await this.parts.kernel.close();
    } finally {
      await this.parts.workers?.close();
      await this.parts.store.close();
    }
  }
}

/**
 * Opens the store, creates the application on first use (running `initialize` once in the life of
 * the store, with no time limit), resumes scheduled tasks, and returns the running server.
 * @throws {ConfigError} for a bad option; {@link AppLoadError} for an unusable app class;
 *   `DataLockedError`/`DataFormatError` for the data directory; `TaskFailedError` if `initialize` fails.
 */
export async function startServer(options: StartServerOptions): Promise<Server> {
  const { app, appModule, workerPreload, clock = new SystemClock(), random = systemRandom, logger = stderrLogger(), store: givenStore, onFatal = () => undefined, authenticator, onStartupProgress = () => undefined, ...fields } = options;
  const config = resolveConfig(fields);
  assertAppClass(app);
  if (config.workers > 0 && appModule === undefined) {
    throw new ConfigError(`workers: ${config.workers} needs appModule, the module that defines the application's classes (worker threads import it)`);
  }
  const auth = authenticator ?? chooseAuthenticator(config, logger);
  const store = givenStore ?? openStore(config);
  let kernel: Kernel | undefined;
  let tcp: TcpTransport | undefined;
  let http: HttpListener | undefined;
  let sessions: SessionService | undefined;
  let workers: WorkerPool | undefined;
  const metrics = new ServerMetrics({
    tasksInFlight: () => kernel?.tasksInFlight ?? 0,
    sessions: () => sessions?.sessionCount ?? 0,
    channelsInUse: () => sessions?.channelsInUse ?? 0,
    sessionCounters: () => sessions?.counters ?? NO_SESSION_COUNTERS,
    objectCache: () => {
      const here = kernel?.runtime.objects;
      const elsewhere = workers?.cacheCounts;
      return { hits: (here?.hits ?? 0) + (elsewhere?.hits ?? 0), misses: (here?.misses ?? 0) + (elsewhere?.misses ?? 0) };
    },
    chainedAttempts: () => kernel?.counters.chained ?? 0,
    workerRestarts: () => workers?.restarts ?? 0,
    storeBytes: () => store.sizeBytes?.(),
    classTagOf: (id) => classTagOf(kernel, id),
  });
  try {
    kernel = new Kernel({
      observer: metrics,
      store,
      clock,
      random,
      logger,
      txnTimeoutMs: config.txnTimeoutMs,
      maxTaskAttempts: config.maxTaskAttempts,
      retryBackoffMaxMs: config.retryBackoffMaxMs,
      appTimeCheckpointMs: config.appTimeCheckpointMs,
      objectCacheEntries: config.objectCacheEntries,
      onFatal,
    });
    const tasks = new TaskService(kernel, logger);
    const sessionService = new SessionService(kernel, auth, config, logger);
    sessions = sessionService;
    installTransactionalServices(kernel, sessionService, config.writeBufferBytes);
    kernel.installEffectHandler("task", (effect) => tasks.applyEffect(effect));
    kernel.installEffectHandler("session", (effect) => sessionService.applyEffect(effect));
    // Resume first: on a new store there is nothing to resume, and the tasks initialize schedules
    // are armed by its own commit.
    const resumedTasks = await tasks.resume((done) => onStartupProgress({ phase: "resuming scheduled tasks", done }));
    const initialized = await initializeOnce(kernel, app, config.appProperties);
    const endedSessions = await sessionService.cleanUpAfterRestart((done, total) => onStartupProgress({ phase: "ending sessions from before the restart", done, total }));
    if (config.workers > 0) {
      const started = kernel;
      workers = await WorkerPool.start(
        { count: config.workers, appModule: moduleUrl(appModule!), preload: workerPreload === undefined ? undefined : moduleUrl(workerPreload), store, committer: kernel.committer, sessions: sessionService, writeBufferBytes: config.writeBufferBytes, objectCacheEntries: config.objectCacheEntries, logger, onFatal },
        (pool) => started.watchCommits(pool),
      );
      kernel.installExecutor(workers);
    }
    let connectionIds = 0;
    let tcpPort: number | null = null;
    if (config.tcpPort !== null) {
      tcp = new TcpTransport(sessionService, config, logger, () => ++connectionIds);
      tcpPort = await tcp.listen(config.tcpPort, config.host);
    }
    let httpPort: number | null = null;
    if (config.httpPort !== null) {
      const started = Date.now();
      const counters = kernel.counters;
      const status = () => ({ committedTasks: counters.committed, sessions: sessionService.sessionCount, uptimeMs: Date.now() - started });
      const dashboard = new DashboardData(metrics.registry, status, () => metrics.conflicts(DASHBOARD_HOT_SPOTS));
      http = new HttpListener(sessionService, config, logger, () => ++connectionIds, {
        staticDir: config.staticDir,
        status,
        metrics: () => metrics.render(),
        conflicts: () => metrics.conflicts(),
        dashboard: () => dashboard.snapshot(),
      });
      httpPort = await http.listen(config.httpPort, config.host);
    }
    const startup = { initialized, resumedTasks, endedSessions, tcpPort, httpPort };
    logger.info("server started", { durability: config.durability, store: store.kind, workers: config.workers, ...startup });
    return new Server(config, { kernel, tasks, sessions: sessionService, store, tcp, http, workers }, startup);
  } catch (error) {
    await tcp?.close().catch(() => undefined);
    await http?.close().catch(() => undefined);
    if (kernel !== undefined) await kernel.close().catch(() => undefined);
    await workers?.close();
    await store.close();
    throw error;
  }
}

function chooseAuthenticator(config: ServerConfig, logger: Logger): Authenticator {
  if (config.passwordFile !== null) return PasswordFileAuthenticator.fromFile(config.passwordFile);
  logger.warn("no passwordFile: every login is accepted under any name (development only)");
  return new AcceptAllAuthenticator();
}

/** The class tag of stored object `id`, for conflict reports; undefined if it is gone or unreadable. */
function classTagOf(kernel: Kernel | undefined, id: bigint): string | undefined {
  const record = kernel?.committer.readObject(id);
  if (record === undefined) return undefined;
  try {
    return managedTagOf(objectCodec.decode(record.bytes));
  } catch {
    return undefined; // a class this process does not know: the report goes without the tag
  }
}

/** Hot spots the dashboard lists; `/conflicts` has the longer list. */
const DASHBOARD_HOT_SPOTS = 10;

const NO_SESSION_COUNTERS: SessionCounters = Object.freeze(zeroSessionCounters());

function openStore(config: ServerConfig): DataStore {
  if (config.durability === "memory") return new MemoryDataStore();
  return LmdbDataStore.open({ path: config.dataDir, durability: config.durability });
}

function initializeOnce(kernel: Kernel, app: AppListenerClass, props: Readonly<Record<string, string>>): Promise<boolean> {
  return kernel.run(
    "initialize",
    (ctx, tx) => {
      if (tx.isBound(APP_BINDING)) {
        assertSameApp(tx, app);
        return false;
      }
      const listener = new app();
      tx.bind(APP_BINDING, listener);
      callSync(`${app.name}.initialize`, () => listener.initialize(ctx, props));
      return true;
    },
    // initialize has no time limit, and a failure is reported rather than retried forever.
    { timeoutMs: Infinity, maxAttempts: 3 },
  );
}

/**
 * Refuses a data store made by another application: its stored listener would never be the one
 * loaded, its tasks would fail on classes nobody loaded, and `initialize` would never run.
 * @throws {AppLoadError} naming both class tags.
 */
function assertSameApp(tx: Transaction, app: AppListenerClass): void {
  const expected = managedTagOf(Object.create(app.prototype as object) as object);
  let stored: string | undefined;
  try {
    stored = managedTagOf(tx.getBound(APP_BINDING, APP_BINDING, false));
  } catch (error) {
    if (!(error instanceof DataFormatError)) throw error;
    stored = /tag "([^"]*)"/.exec(error.message)?.[1] ?? "a class this application does not define";
  }
  if (stored !== expected) {
    throw new AppLoadError(`this data directory holds the world of another application (${stored}), not ${expected}; start ${app.name} on a directory of its own`);
  }
}

function assertAppClass(app: unknown): asserts app is AppListenerClass {
  if (typeof app !== "function") throw new AppLoadError(`the application must be a class, got ${typeof app}`);
  const prototype = (app as { prototype?: { initialize?: unknown } }).prototype;
  if (typeof prototype?.initialize !== "function") {
    throw new AppLoadError(`application class ${app.name} has no initialize(ctx, props) method`);
  }
  if (!isManagedObject(Object.create(prototype))) {
    throw new AppLoadError(`application class ${app.name} must be decorated with @managed("some.Tag")`);
  }
}

/** `module` as a URL a worker can import: `file:` URLs as they are, paths resolved from here. */
function moduleUrl(module: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.test(module) && !/^[a-z]:[\\/]/i.test(module) ? module : pathToFileURL(resolve(module)).href;
}

function stderrLogger(): Logger {
  return new JsonLineLogger((line) => process.stderr.write(line));
}
