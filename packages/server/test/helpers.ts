import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { after } from "node:test";
import { bareKernel, type BareKernelOptions } from "./kernel-helpers.ts";
import { ManualClock, TaskFailedError, silentLogger, startServer, type Logger, type Server, type StartServerOptions } from "shardless";
import { withWorkers } from "./test-workers.ts";

/** A fresh temporary directory, removed when the test file ends. */
export function tempDir(prefix = "shardless-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * What test tasks did, recorded outside the data (which an aborted or failed attempt never changes)
 * and outside any one thread's memory (a task runs on the main thread or on a worker): each record
 * is a line appended to a file. Tasks keep the file's {@link path} in a field and call
 * {@link RunTally.record}; the test reads the records back.
 */
export class RunTally {
  /** The file: what tasks store and pass to {@link RunTally.record}. */
  readonly path = join(tempDir("shardless-tally-"), "tally");

  /** Appends `entry` to the tally at `path`; returns how many times it is there now, this time included. */
  static record(path: string, entry: string): number {
    appendFileSync(path, `${JSON.stringify(entry)}\n`);
    return RunTally.read(path).filter((each) => each === entry).length;
  }

  /** Every entry recorded, in the order recorded. */
  entries(): string[] {
    return RunTally.read(this.path);
  }

  /** How many times `entry` was recorded. */
  count(entry: string): number {
    return this.entries().filter((each) => each === entry).length;
  }

  /** How many times each entry was recorded. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const entry of this.entries()) counts[entry] = (counts[entry] ?? 0) + 1;
    return counts;
  }

  private static read(path: string): string[] {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    return text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as string);
  }
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

/**
 * Starts a server on an in-memory store and a manual clock unless told otherwise; closed after the
 * file. It runs its tasks on this run's worker threads (see {@link withWorkers}), which import
 * `appModule`: the calling test file's `import.meta.url`.
 */
export async function testServer(options: StartServerOptions, appModule: string): Promise<Server> {
  const server = await startServer(withWorkers({ durability: "memory", clock: new ManualClock(), logger: silentLogger, tcpPort: null, httpPort: null, ...options }, appModule));
  after(() => server.close());
  return server;
}

export { silentLogger };

export { TEST_WORKERS, withWorkers } from "./test-workers.ts";

export { ControlledStore } from "./kernel-helpers.ts";

/** A kernel with its task service, for tests that need transactions below the server; closed after the file. */
export function testKernel(options: BareKernelOptions = {}): ReturnType<typeof bareKernel> {
  const made = bareKernel(options);
  after(() => made.kernel.close());
  return made;
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
