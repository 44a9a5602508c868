// The systems under test, started in this process.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger, startServer, type Durability, type Server } from "shardless";
import { MemoryBank, startFramedServer, transferHandler } from "./baseline-server.ts";
import EchoApp from "./echo-app.ts";
import { PostgresBank } from "./postgres-bank.ts";
import Bank, { totalBalance, transfer } from "./transfer-app.ts";

export type SystemName = "shardless" | "baseline-memory" | "postgres";

/** A started system: a way to run one transfer in-process, a port for the network, and its total. */
export interface RunningSystem {
  readonly port: number;
  /** Runs one transfer; resolves when it is done (durable, for Shardless). */
  transfer(from: number, to: number, amount: number): Promise<boolean>;
  total(): Promise<number>;
  /** Commits and aborted attempts so far (0 for systems without transactions). */
  counters(): { committed: number; conflicts: number };
  stop(): Promise<void>;
}

export interface SystemOptions {
  readonly workload: "transfer" | "echo";
  readonly system: SystemName;
  readonly accounts: number;
  readonly durability: Durability;
}

export async function startSystem(options: SystemOptions): Promise<RunningSystem> {
  if (options.workload === "echo") return startEchoSystem(options);
  if (options.system === "postgres") {
    const bank = await PostgresBank.start(options.accounts);
    const { port, server } = await startFramedServer(transferHandler((from, to, amount) => bank.transfer(from, to, amount)));
    return {
      port,
      transfer: (from, to, amount) => bank.transfer(from, to, amount),
      total: () => bank.total(),
      counters: () => ({ committed: bank.committed, conflicts: bank.conflicts }),
      stop: async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await bank.stop();
      },
    };
  }
  if (options.system === "baseline-memory") {
    const bank = new MemoryBank(options.accounts);
    const { port, server } = await startFramedServer(transferHandler((from, to, amount) => bank.transfer(from, to, amount)));
    return {
      port,
      transfer: (from, to, amount) => Promise.resolve(bank.transfer(from, to, amount)),
      total: () => Promise.resolve(bank.total()),
      counters: () => ({ committed: 0, conflicts: 0 }),
      stop: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }
  const dataDir = mkdtempSync(join(tmpdir(), "shardless-bench-"));
  const server: Server = await startServer({
    app: Bank,
    dataDir,
    durability: options.durability,
    logger: silentLogger,
    tcpPort: 0,
    httpPort: null,
    host: "127.0.0.1",
    appProperties: { accounts: String(options.accounts) },
    writeBufferBytes: 4 * 1024 * 1024,
  });
  return {
    port: server.tcpPort!,
    transfer: (from, to, amount) => server.run("transfer", (ctx) => transfer(ctx, from, to, amount)),
    total: () => server.run("total", (ctx) => totalBalance(ctx, options.accounts), { timeoutMs: Infinity }),
    counters: () => ({ committed: server.taskCounters.committed, conflicts: server.taskCounters.conflicts }),
    stop: async () => {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The echo workload: every session message comes back. No data changes, so no money to check. */
async function startEchoSystem(options: SystemOptions): Promise<RunningSystem> {
  const noTransfers = () => Promise.reject(new Error("the echo workload runs over the network only"));
  if (options.system === "baseline-memory") {
    const { port, server } = await startFramedServer((request) => request);
    return { port, transfer: noTransfers, total: () => Promise.resolve(0), counters: () => ({ committed: 0, conflicts: 0 }), stop: () => new Promise((resolve) => server.close(() => resolve())) };
  }
  if (options.system !== "shardless") throw new Error(`the echo workload has no ${options.system} system`);
  const dataDir = mkdtempSync(join(tmpdir(), "shardless-bench-"));
  const server = await startServer({ app: EchoApp, dataDir, durability: options.durability, logger: silentLogger, tcpPort: 0, httpPort: null, host: "127.0.0.1", writeBufferBytes: 4 * 1024 * 1024 });
  return {
    port: server.tcpPort!,
    transfer: noTransfers,
    total: () => Promise.resolve(0),
    counters: () => ({ committed: server.taskCounters.committed, conflicts: server.taskCounters.conflicts }),
    stop: async () => {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
