// A Shardless server started as a real child process through the `shardless` command.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../bin/shardless.js", import.meta.url));

/** One JSON log record the child wrote to stderr. */
export interface LogRecord {
  readonly level: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A running child server and what it has printed so far. */
export class ChildServer {
  readonly records: LogRecord[] = [];
  stdout = "";
  stderrText = "";
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: (() => void)[] = [];

  private constructor(private readonly child: ChildProcess) {
    let pending = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderrText += chunk;
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) this.parse(line);
      this.wake();
    });
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stdout += chunk;
      this.wake();
    });
    this.exited = new Promise((resolve) => child.once("exit", (code, signal) => {
      this.wake();
      resolve({ code, signal });
    }));
  }

  /** Runs `shardless <args>`. */
  static start(args: readonly string[]): ChildServer {
    return new ChildServer(spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] }));
  }

  /** Waits until `predicate` holds (checked after every output), or fails after `timeoutMs`. */
  async waitFor(what: string, predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`child exited while waiting for ${what}; stderr:\n${this.stderrText.slice(-2000)}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; stderr:\n${this.stderrText.slice(-2000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The TCP port the child printed it listens on. */
  tcpPort(): number {
    const match = /tcp:\/\/[^:\s]+:(\d+)/.exec(this.stdout);
    if (match === null) throw new Error(`the child has not printed its TCP port; stdout:\n${this.stdout}`);
    return Number(match[1]);
  }

  /** The records with message `msg`. */
  messages(msg: string): LogRecord[] {
    return this.records.filter((record) => record.msg === msg);
  }

  /** Sends `signal` and waits for the process to end. */
  async stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill(signal);
    return this.exited;
  }

  /** Resolves when the process ends by itself. */
  exit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exited;
  }

  private parse(line: string): void {
    if (line.trim() === "") return;
    try {
      this.records.push(JSON.parse(line) as LogRecord);
    } catch {
      // not a log record (e.g. a CLI message); kept in stderrText
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
