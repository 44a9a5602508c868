// The echo server of fuzz-server-child.ts in a process of its own, spoken to over IPC, so that
// tests measure the server's memory apart from the clients that load it.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FuzzServerCommand, FuzzServerStats } from "./fuzz-server-child.ts";

const CHILD = fileURLToPath(new URL("./fuzz-server-child.ts", import.meta.url));

/** The echo server child, spoken to over IPC. */
export class FuzzServer {
  private readonly replies: ((stats: FuzzServerStats) => void)[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    private readonly child: ChildProcess,
    readonly tcpPort: number,
    readonly httpPort: number,
  ) {
    child.on("message", (message: { stats?: FuzzServerStats }) => {
      if (message.stats !== undefined) this.replies.shift()?.(message.stats);
    });
    this.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  }

  static async start(): Promise<FuzzServer> {
    const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", CHILD], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const ready = await new Promise<{ tcpPort: number; httpPort: number }>((resolve, reject) => {
      child.once("message", (message: { ready?: { tcpPort: number; httpPort: number } }) => (message.ready ? resolve(message.ready) : reject(new Error("unexpected first message"))));
      child.once("exit", (code) => reject(new Error(`the server child exited with code ${code} before it was ready`)));
    });
    return new FuzzServer(child, ready.tcpPort, ready.httpPort);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  stats(gc: boolean): Promise<FuzzServerStats> {
    return new Promise((resolve, reject) => {
      if (!this.running) return reject(new Error("the server child is not running"));
      this.replies.push(resolve);
      this.child.send({ cmd: "stats", gc } satisfies FuzzServerCommand);
    });
  }

  async close(): Promise<void> {
    if (this.running) this.child.send({ cmd: "close" } satisfies FuzzServerCommand);
    await this.exited;
  }
}

