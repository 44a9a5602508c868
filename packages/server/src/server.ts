import { AppLoadError } from "./api/errors.js";
import { isManagedObject } from "./api/managed.js";
import type { AppListener, TaskContext } from "./api/types.js";
import { resolveConfig, type ServerConfig } from "./config.js";
import { LmdbDataStore } from "./data/lmdb-data-store.js";
import { MemoryDataStore } from "./data/memory-data-store.js";
import { SystemClock, type Clock } from "./kernel/clock.js";
import { serviceKey } from "./kernel/data-manager.js";
import type { DataStore } from "./kernel/data-store.js";
import { Kernel, type RunOptions } from "./kernel/kernel.js";
import { JsonLineLogger, type Logger } from "./kernel/logger.js";
import { systemRandom, type Random } from "./kernel/random.js";
import { callSync } from "./kernel/transaction.js";
import { TaskService } from "./tasks/task-service.js";

/** A class whose instances are the application: managed, with a no-argument constructor. */
export type AppListenerClass = new () => AppListener;

/** Options of {@link startServer}: the configuration fields plus what only code can pass. */
export interface StartServerOptions extends Partial<ServerConfig> {
  /** The application's listener class (decorated with `@managed`). */
  readonly app: AppListenerClass;
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
}

const APP_BINDING = serviceKey("app");

/** A running server. */
export class Server {
  private closing: Promise<void> | undefined;

  /** @internal Made by {@link startServer}. */
  constructor(
    /** The validated configuration the server runs with. */
    readonly config: ServerConfig,
    private readonly kernel: Kernel,
    private readonly tasks: TaskService,
    private readonly store: DataStore,
    /** Number of scheduled tasks found in the store at start-up. */
    readonly resumedTasks: number,
    /** True when this start ran `initialize` (the store was new). */
    readonly initialized: boolean,
  ) {}

  /**
   * Runs `body` as a task on this server (retried like any task) and returns what it returned once
   * its commit is durable. For tools, tests and embedding code; the value must not be a managed
   * object (it is only valid inside the task).
   */
  run<T>(name: string, body: (ctx: TaskContext) => T, options?: RunOptions): Promise<T> {
    return this.kernel.run(name, (ctx) => body(ctx), options);
  }

  /** Application time now, in ms (see `TaskContext.now`). */
  appTimeMs(): number {
    return this.kernel.appTimeMs();
  }

  /** Resolves when no task is queued or running and every commit is durable. */
  whenIdle(): Promise<void> {
    return this.kernel.whenIdle();
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
    this.tasks.stop();
    try {
      await this.kernel.close();
    } finally {
      await this.store.close();
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
  const { app, clock = new SystemClock(), random = systemRandom, logger = stderrLogger(), store: givenStore, onFatal = () => undefined, ...fields } = options;
  const config = resolveConfig(fields);
  assertAppClass(app);
  const store = givenStore ?? openStore(config);
  let kernel: Kernel | undefined;
  try {
    kernel = new Kernel({
      store,
      clock,
      random,
      logger,
      txnTimeoutMs: config.txnTimeoutMs,
      maxTaskAttempts: config.maxTaskAttempts,
      retryBackoffMaxMs: config.retryBackoffMaxMs,
      appTimeCheckpointMs: config.appTimeCheckpointMs,
      onFatal,
    });
    const tasks = new TaskService(kernel, logger);
    kernel.installTaskService({
      taskManagerFor: (tx) => tasks.taskManagerFor(tx),
      cancelPeriodicTask: (tx, id) => tasks.cancelPeriodicTask(tx, id),
    });
    // Resume first: on a new store there is nothing to resume, and the tasks initialize schedules
    // are armed by its own commit.
    const resumed = await tasks.resume();
    const initialized = await initializeOnce(kernel, app, config.appProperties);
    logger.info("server started", { durability: config.durability, store: store.kind, initialized, resumedTasks: resumed });
    return new Server(config, kernel, tasks, store, resumed, initialized);
  } catch (error) {
    if (kernel !== undefined) await kernel.close().catch(() => undefined);
    await store.close();
    throw error;
  }
}

function openStore(config: ServerConfig): DataStore {
  if (config.durability === "memory") return new MemoryDataStore();
  return LmdbDataStore.open({ path: config.dataDir, durability: config.durability });
}

function initializeOnce(kernel: Kernel, app: AppListenerClass, props: Readonly<Record<string, string>>): Promise<boolean> {
  return kernel.run(
    "initialize",
    (ctx, tx) => {
      if (tx.isBound(APP_BINDING)) return false;
      const listener = new app();
      tx.bind(APP_BINDING, listener);
      callSync(`${app.name}.initialize`, () => listener.initialize(ctx, props));
      return true;
    },
    // initialize has no time limit, and a failure is reported rather than retried forever.
    { timeoutMs: Infinity, maxAttempts: 3 },
  );
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

function stderrLogger(): Logger {
  return new JsonLineLogger((line) => process.stderr.write(line));
}
