// The transfer workload on SQLite (better-sqlite3) in WAL mode: each transfer one transaction,
// committed before the reply. `sync` durability is synchronous=FULL (the WAL is fsync'd at every
// commit, as Shardless's `sync` fsyncs before any reply); `relaxed` is synchronous=NORMAL (survives
// a process crash, not a power loss), like Shardless's `relaxed`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Durability } from "shardless";
import { INITIAL_BALANCE } from "./workload.ts";

const SYNCHRONOUS: Record<Durability, string> = { sync: "FULL", relaxed: "NORMAL", memory: "OFF" };

export class SqliteBank {
  committed = 0;
  /** SQLite runs one writer at a time here (one connection, synchronous calls): nothing aborts. */
  readonly conflicts = 0;
  private readonly debit: Database.Statement<{ id: number; amount: number }>;
  private readonly credit: Database.Statement<{ id: number; amount: number }>;
  private readonly move: (from: number, to: number, amount: number) => boolean;

  private constructor(
    private readonly db: Database.Database,
    private readonly directory: string,
  ) {
    this.debit = db.prepare("UPDATE accounts SET balance = balance - @amount WHERE id = @id AND balance >= @amount");
    this.credit = db.prepare("UPDATE accounts SET balance = balance + @amount WHERE id = @id");
    this.move = db.transaction((from: number, to: number, amount: number) => {
      const ok = this.debit.run({ id: from, amount }).changes === 1;
      if (ok) this.credit.run({ id: to, amount });
      return ok;
    });
  }

  /** Creates a database in a temporary directory and loads `accounts` accounts. */
  static start(accounts: number, durability: Durability): SqliteBank {
    const directory = mkdtempSync(join(tmpdir(), "bench-sqlite-"));
    const db = new Database(join(directory, "bank.db"));
    db.pragma("journal_mode = WAL");
    db.exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)");
    const insert = db.prepare("INSERT INTO accounts (id, balance) VALUES (?, ?)");
    db.transaction(() => {
      for (let id = 0; id < accounts; id++) insert.run(id, INITIAL_BALANCE);
    })();
    db.pragma(`synchronous = ${SYNCHRONOUS[durability]}`);
    return new SqliteBank(db, directory);
  }

  /** Moves `amount` if `from` has it; committed (durably, with `sync`) when it returns. */
  transfer(from: number, to: number, amount: number): boolean {
    const ok = this.move(from, to, amount);
    this.committed++;
    return ok;
  }

  total(): number {
    return (this.db.prepare("SELECT sum(balance) AS total FROM accounts").get() as { total: number }).total;
  }

  stop(): void {
    this.db.close();
    rmSync(this.directory, { recursive: true, force: true });
  }
}
