// The transfer workload on PostgreSQL 15 (Debian's package, started here on loopback): each
// transfer one SERIALIZABLE transaction, retried on serialization failure, with fsync on.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { INITIAL_BALANCE } from "./workload.ts";

const BIN = "/usr/lib/postgresql/15/bin";

/** SQLSTATEs that mean "run the transaction again". */
const RETRYABLE = new Set(["40001", "40P01"]);

export class PostgresBank {
  committed = 0;
  conflicts = 0;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly directory: string,
  ) {}

  /** Creates a cluster in a temporary directory, starts it, and loads `accounts` accounts. */
  static async start(accounts: number, connections = 16): Promise<PostgresBank> {
    const directory = mkdtempSync(join(tmpdir(), "bench-pg-"));
    chmodSync(directory, 0o755);
    execFileSync("chown", ["postgres:postgres", directory]);
    const asPostgres = (command: string, args: string[]) => execFileSync("runuser", ["-u", "postgres", "--", join(BIN, command), ...args], { stdio: "pipe" });
    asPostgres("initdb", ["-D", join(directory, "data"), "-A", "trust", "-U", "postgres", "--no-sync"]);
    const port = await freePort();
    asPostgres("pg_ctl", ["-D", join(directory, "data"), "-l", join(directory, "log"), "-w", "-o", `-c listen_addresses=127.0.0.1 -p ${port} -k ${directory} -c max_connections=100 -c shared_buffers=256MB`, "start"]);
    const pool = new pg.Pool({ host: "127.0.0.1", port, user: "postgres", database: "postgres", max: connections });
    // Idle pooled connections report the server's shutdown as an error event; without a listener
    // it would end the process.
    pool.on("error", () => undefined);
    await pool.query("CREATE TABLE accounts (id integer PRIMARY KEY, balance integer NOT NULL)");
    await pool.query("INSERT INTO accounts SELECT i, $1 FROM generate_series(0, $2 - 1) AS i", [INITIAL_BALANCE, accounts]);
    await pool.query("VACUUM ANALYZE accounts");
    return new PostgresBank(pool, directory);
  }

  async transfer(from: number, to: number, amount: number): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      try {
        await client.query("BEGIN ISOLATION LEVEL SERIALIZABLE");
        const debit = await client.query("UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance >= $2", [from, amount]);
        const ok = debit.rowCount === 1;
        if (ok) await client.query("UPDATE accounts SET balance = balance + $2 WHERE id = $1", [to, amount]);
        await client.query("COMMIT");
        this.committed++;
        return ok;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        if (!RETRYABLE.has((error as { code?: string }).code ?? "")) throw error;
        this.conflicts++;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 ** attempt)));
      } finally {
        client.release();
      }
    }
  }

  async total(): Promise<number> {
    const result = await this.pool.query<{ total: string }>("SELECT sum(balance) AS total FROM accounts");
    return Number(result.rows[0]!.total); // bigint sums come back as strings
  }

  async stop(): Promise<void> {
    await this.pool.end();
    execFileSync("runuser", ["-u", "postgres", "--", join(BIN, "pg_ctl"), "-D", join(this.directory, "data"), "-m", "fast", "-w", "stop"], { stdio: "pipe" });
    rmSync(this.directory, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
