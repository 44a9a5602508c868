// The transfer workload's systems keep the same rule: a transfer that would overdraw is refused,
// and money is never created or lost. Checked through the same interface the benchmark drives.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startSystem, type SystemName } from "./system.ts";
import { INITIAL_BALANCE, accountPicker, pickPair } from "./workload.ts";

const ACCOUNTS = 100;

// Shardless also with worker threads, which run each transfer from the task object they are handed.
const BANKS: { system: SystemName; workers: number }[] = [
  { system: "baseline-memory", workers: 0 },
  { system: "sqlite", workers: 0 },
  { system: "shardless", workers: 0 },
  { system: "shardless", workers: 2 },
];

for (const { system, workers } of BANKS) {
  describe(`the ${system} bank${workers === 0 ? "" : ` with ${workers} workers`}`, () => {
    it("refuses overdrafts and conserves money across many transfers", async (t) => {
      const bank = await startSystem({ workload: "transfer", system, accounts: ACCOUNTS, durability: "sync", workers });
      t.after(() => bank.stop());
      assert.equal(await bank.transfer(0, 1, INITIAL_BALANCE + 1), false, "an overdraft is refused");
      assert.equal(await bank.transfer(0, 1, INITIAL_BALANCE), true, "the whole balance can move");
      assert.equal(await bank.transfer(0, 2, 1), false, "an empty account pays nothing");
      const pick = accountPicker(ACCOUNTS, 1.5);
      const results = await Promise.all(
        Array.from({ length: 500 }, () => {
          const [from, to] = pickPair(pick);
          return bank.transfer(from, to, 1 + Math.floor(Math.random() * 300));
        }),
      );
      assert.ok(results.includes(true), "some transfers went through");
      assert.equal(await bank.total(), ACCOUNTS * INITIAL_BALANCE);
    });
  });
}
