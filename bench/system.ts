// The systems under test, started in this process.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { silentLogger, startServer, type AppListenerClass, type Durability, type Server } from "shardless";
import { MemoryBank, startFramedServer, transferHandler } from "./baseline-server.ts";
import EchoApp from "../packages/server/test/fixtures/echo-app.ts";
import { PostgresBank } from "./postgres-bank.ts";
import RoomApp from "./room-app.ts";
import { startBaselineRoomServer, type RoomServer } from "./room-baseline.ts";
import { SqliteBank } from "./sqlite-bank.ts";
import Bank, { TransferTask, totalBalance } from "./transfer-app.ts";

export type SystemName = "shardless" | "baseline-memory" | "postgres" | "sqlite" | "colyseus";
export type Workload = "transfer" | "echo" | "room";

/** The systems each workload has. */
export const SYSTEMS: Readonly<Record<Workload, readonly SystemName[]>> = {
  transfer: ["shardless", "baseline-memory", "postgres", "sqlite"],
  echo: ["shardless", "baseline-memory"],
  room: ["shardless", "baseline-memory", "colyseus"],
};

/** A started system: a way to run one transfer in-process, a port for the network, and its total. */
export interface RunningSystem {
  /** The TCP port (transfer, echo) or the WebSocket server's HTTP port (room). */
  readonly port: number;
  /** Runs one transfer; resolves when it is done (durable, for Shardless). */
  transfer(from: number, to: number, amount: number): Promise<boolean>;
  total(): Promise<number>;
  /** Commits and aborted attempts so far (0 for systems without transactions). */
  counters(): { committed: number; conflicts: number };
  stop(): Promise<void>;
}

export interface SystemOptions {
  readonly workload: Workload;
  readonly system: SystemName;
  readonly accounts: number;
  readonly durability: Durability;
  /** Shardless: worker threads that run tasks (the server's `workers`); 0 or absent runs them on the main thread. */
  readonly workers?: number;
}

const noCounters = () => ({ committed: 0, conflicts: 0 });
const noTransfers = () => Promise.reject(new Error("this workload has no in-process transfers"));

export async function startSystem(options: SystemOptions): Promise<RunningSystem> {
  if (!SYSTEMS[options.workload].includes(options.system)) throw new Error(`the ${options.workload} workload has no ${options.system} system`);
  if ((options.workers ?? 0) > 0 && options.system !== "shardless") throw new Error(`${options.system} has no worker threads; workers apply to shardless only`);
  if (options.system === "shardless") return startShardless(options);
  if (options.workload === "transfer") return startBank(options);
  if (options.workload === "echo") {
    const { port, server } = await startFramedServer((request) => request);
    return { port, transfer: noTransfers, total: () => Promise.resolve(0), counters: noCounters, stop: () => new Promise((resolve) => server.close(() => resolve())) };
  }
  const room: RoomServer = options.system === "colyseus" ? await (await import("./colyseus-room.ts")).startColyseusRoomServer() : await startBaselineRoomServer();
  return { port: room.port, transfer: noTransfers, total: () => Promise.resolve(0), counters: noCounters, stop: () => room.stop() };
}

/** The transfer workload's other systems: the same framed TCP front end over each bank. */
async function startBank(options: SystemOptions): Promise<RunningSystem> {
  const bank = await openBank(options);
  const { port, server } = await startFramedServer(transferHandler((from, to, amount) => bank.transfer(from, to, amount)));
  return {
    port,
    transfer: (from, to, amount) => Promise.resolve(bank.transfer(from, to, amount)),
    total: () => Promise.resolve(bank.total()),
    counters: () => ({ committed: bank.committed, conflicts: bank.conflicts }),
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await bank.stop();
    },
  };
}

interface AccountStore {
  readonly committed: number;
  readonly conflicts: number;
  transfer(from: number, to: number, amount: number): boolean | Promise<boolean>;
  total(): number | Promise<number>;
  stop(): void | Promise<void>;
}

function openBank(options: SystemOptions): AccountStore | Promise<AccountStore> {
  if (options.system === "postgres") return PostgresBank.start(options.accounts);
  if (options.system === "sqlite") return SqliteBank.start(options.accounts, options.durability);
  const bank = new MemoryBank(options.accounts);
  return { committed: 0, conflicts: 0, transfer: (from, to, amount) => bank.transfer(from, to, amount), total: () => bank.total(), stop: () => undefined };
}

/** Each workload's application, and the module that defines its classes (worker threads import it). */
const APPS: Readonly<Record<Workload, { readonly app: AppListenerClass; readonly module: string }>> = {
  transfer: { app: Bank, module: fileURLToPath(new URL("./transfer-app.ts", import.meta.url)) },
  echo: { app: EchoApp, module: fileURLToPath(new URL("../packages/server/test/fixtures/echo-app.ts", import.meta.url)) },
  room: { app: RoomApp, module: fileURLToPath(new URL("./room-app.ts", import.meta.url)) },
};

/** Shardless with the workload's application, in a fresh data directory. */
async function startShardless(options: SystemOptions): Promise<RunningSystem> {
  const dataDir = mkdtempSync(join(tmpdir(), "shardless-bench-"));
  const room = options.workload === "room";
  const { app, module } = APPS[options.workload];
  const server: Server = await startServer({
    app,
    appModule: module,
    workers: options.workers ?? 0,
    dataDir,
    durability: options.durability,
    logger: silentLogger,
    tcpPort: room ? null : 0,
    httpPort: room ? 0 : null,
    host: "127.0.0.1",
    appProperties: { accounts: String(options.accounts) },
    writeBufferBytes: 4 * 1024 * 1024,
  });
  return {
    port: room ? server.httpPort! : server.tcpPort!,
    // A task object rather than a closure, so that with workers the transfer runs on one of them.
    transfer: options.workload === "transfer" ? (from, to, amount) => server.runTask(new TransferTask(from, to, amount)) as Promise<boolean> : noTransfers,
    total: () => (options.workload === "transfer" ? server.run("total", (ctx) => totalBalance(ctx, options.accounts), { timeoutMs: Infinity }) : Promise.resolve(0)),
    counters: () => ({ committed: server.taskCounters.committed, conflicts: server.taskCounters.conflicts }),
    stop: async () => {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
