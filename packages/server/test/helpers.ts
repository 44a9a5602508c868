import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { after } from "node:test";
import { ManualClock, TaskFailedError, silentLogger, startServer, type Logger, type Server, type StartServerOptions } from "shardless";

/** A fresh temporary directory, removed when the test file ends. */
export function tempDir(prefix = "shardless-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A logger that keeps every record, for assertions. */
export class CapturingLogger implements Logger {
  readonly records: { level: string; message: string; fields: Readonly<Record<string, unknown>> | undefined }[] = [];
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.records.push({ level: "debug", message, fields });
  }
  info(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.records.push({ level: "info", message, fields });
  }
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.records.push({ level: "warn", message, fields });
  }
  error(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.records.push({ level: "error", message, fields });
  }
  messages(level?: string): string[] {
    return this.records.filter((record) => level === undefined || record.level === level).map((record) => record.message);
  }
}

/**
 * Polls `probe` until it returns something that `accept` takes, or fails after `timeoutMs`
 * naming `what` and the last value seen.
 */
export async function eventually<T>(what: string, probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 6000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last seen: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Starts a server on an in-memory store and a manual clock unless told otherwise; closed after the file. */
export async function testServer(options: StartServerOptions): Promise<Server> {
  const server = await startServer({ durability: "memory", clock: new ManualClock(), logger: silentLogger, tcpPort: null, httpPort: null, ...options });
  after(() => server.close());
  return server;
}

export { silentLogger };

import { Kernel } from "../src/kernel/kernel.ts";
import { TaskService } from "../src/tasks/task-service.ts";
import type { Clock, CommitBatch, DataStore, Random } from "shardless";
import { MemoryDataStore, SeededRandom } from "shardless";

/**
 * A memory store that counts its commits and, while `held`, keeps each commit waiting until the
 * test lets it through with {@link release}: a slow disk on demand.
 */
export class ControlledStore extends MemoryDataStore {
  commits = 0;
  held = false;
  /** Commits waiting to be let through, oldest first. */
  readonly waiting: (() => void)[] = [];

  override commit(batch: CommitBatch): Promise<void> {
    this.commits++;
    if (!this.held) return super.commit(batch);
    return new Promise((resolve) => this.waiting.push(() => resolve(super.commit(batch))));
  }

  /** Lets the oldest waiting commit through. */
  release(): void {
    const next = this.waiting.shift();
    assert.ok(next !== undefined, "no commit is waiting");
    next();
  }
}

/** A kernel with its task service, for tests that need transactions below the server. */
export function testKernel(options: { store?: DataStore; clock?: Clock; random?: Random; txnTimeoutMs?: number; maxTaskAttempts?: number; logger?: Logger; onFatal?: (error: unknown) => void } = {}) {
  const logger = options.logger ?? silentLogger;
  const kernel = new Kernel({
    store: options.store ?? new MemoryDataStore(),
    clock: options.clock ?? new ManualClock(),
    random: options.random ?? new SeededRandom(1),
    logger,
    txnTimeoutMs: options.txnTimeoutMs ?? 100,
    maxTaskAttempts: options.maxTaskAttempts ?? 10,
    retryBackoffMaxMs: 0.001,
    appTimeCheckpointMs: 3_600_000,
    onFatal: options.onFatal ?? (() => undefined),
  });
  const tasks = new TaskService(kernel, logger);
  kernel.installTaskService({
    taskManagerFor: (tx) => tasks.taskManagerFor(tx),
    channelManagerFor: () => ({
      createChannel: () => assert.fail("no channels in a bare kernel"),
      getChannel: () => assert.fail("no channels in a bare kernel"),
    }),
    cancelPeriodicTask: (tx, id) => tasks.cancelPeriodicTask(tx, id),
  });
  after(() => kernel.close());
  return { kernel, tasks };
}

/** The cause of a failed task: what the handler (or the kernel) threw. Fails if the task succeeded. */
export async function failure(promise: Promise<unknown>): Promise<unknown> {
  const error = await promise.then(
    () => assert.fail("the task should have failed"),
    (rejection: unknown) => rejection,
  );
  assert.ok(error instanceof TaskFailedError, `expected TaskFailedError, got ${String(error)}`);
  return error.cause;
}
