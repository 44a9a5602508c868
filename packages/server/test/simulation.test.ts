// Deterministic simulation of the kernel (see test/sim/simulation.ts): a fixed set of seeds in CI,
// each a few hundred loop iterations of seeded workloads, faults and checkers. A failure prints its
// seed; `SIM_SEED=<seed>` runs that seed alone. The long random run is scripts/simulate.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeFailure, replayHint, runSimulation, type SimReport } from "./sim/simulation.ts";

/** Seeds run in CI. A seed that finds a kernel defect is replayed with SIM_SEED while it is fixed. */
const CI_SEEDS = Array.from({ length: 50 }, (_, i) => i + 1);

const only = process.env.SIM_SEED;

function assertClean(report: SimReport): void {
  assert.equal(report.violations.length, 0, describeFailure(report));
}

if (only !== undefined) {
  describe("simulation (one seed)", () => {
    it(`seed ${only}`, async (t) => {
      const seed = Number(only);
      assert.ok(Number.isInteger(seed), `SIM_SEED must be an integer, got ${only}`);
      const report = await runSimulation({ seed });
      t.diagnostic(`seed ${seed}: ${report.iterations} iterations, ${report.storeFailed ? "store failed" : "store healthy"}, digest ${report.digest}, ${JSON.stringify(report.counts)}`);
      t.diagnostic(`profile: ${JSON.stringify(report.profile)}`);
      assertClean(report);
    });
  });
} else {
  describe("simulation", () => {
    const reports: SimReport[] = [];

    for (const seed of CI_SEEDS) {
      it(`seed ${seed}`, async () => {
        const report = await runSimulation({ seed });
        reports.push(report);
        assertClean(report);
      });
    }

    it("exercised every fault and workload across the seeds", (t) => {
      assert.equal(reports.length, CI_SEEDS.length, "every seed ran");
      const total = (key: string): number => reports.reduce((sum, report) => sum + (report.counts[key] ?? 0), 0);
      const failed = reports.filter((report) => report.storeFailed).length;
      const slow = reports.filter((report) => report.profile.maxLatencySteps > 0).length;
      t.diagnostic(
        `store failures ${failed}, slow stores ${slow}, tasks ${total("tracked")}, committed ${total("committed")}, given up ${total("gaveUp")}, ` +
          `injected faults ${total("faults")}, overlap conflicts ${total("handConflicts")}, timeouts ${total("handTimeouts")}, ` +
          `scheduled runs ${total("runs")}, cancels ${total("cancels")}, effects ${total("effects")}`,
      );
      assert.ok(failed >= 3, `store failures in ${failed} runs`);
      assert.ok(slow >= 10, `slow stores in ${slow} runs`);
      for (const key of ["faults", "handConflicts", "handTimeouts", "runs", "cancels", "censuses", "audits", "messages", "gaveUp"]) {
        assert.ok(total(key) > 0, `no ${key} in any run`);
      }
      assert.ok(Math.max(...reports.map((report) => report.counts.largestBatch ?? 0)) > 1, "some batch grouped several commits");
    });

    it("is deterministic: one seed, one execution", async () => {
      const first = await runSimulation({ seed: 7, steps: 150 });
      const second = await runSimulation({ seed: 7, steps: 150 });
      assert.equal(second.digest, first.digest, replayHint(7));
      assert.deepEqual(second.counts, first.counts);
      const other = await runSimulation({ seed: 8, steps: 150 });
      assert.notEqual(other.digest, first.digest, "different seeds give different executions");
    });
  });

  describe("simulation checkers catch defects", () => {
    // Each run puts a deliberate defect (a test double) under the real kernel; a checker must see it.
    const cases = [
      { name: "a store that loses a write", options: { storeDefect: "lose-write", failAtCommit: null }, finds: /store holds \d+ in total|commit order gives|durable commits give/ },
      { name: "a store that applies a failed batch", options: { storeDefect: "apply-failed-batch", failAtCommit: 10 }, finds: /durable commits give/ },
      { name: "effects released out of order", options: { effectDefect: "reorder" }, finds: /out of commit order|released when effect|resolved with 0 of/ },
      { name: "effects released twice", options: { effectDefect: "duplicate" }, finds: /out of commit order or twice|ran again|twice/ },
    ] as const;
    for (const { name, options, finds } of cases) {
      it(`reports ${name}`, async () => {
        for (const seed of [1, 3, 4]) {
          const report = await runSimulation({ seed, steps: 150, ...options });
          assert.ok(report.violations.length > 0, `seed ${seed}: ${name} went unnoticed`);
          assert.match(report.violations.join("\n"), finds, `seed ${seed}`);
        }
      });
    }

    it("reports effects released after their task settled, and after the store failed", async () => {
      for (const seed of [1, 3, 4]) {
        const report = await runSimulation({ seed, steps: 150, effectDefect: "late", failAtCommit: 12 });
        assert.ok(report.storeFailed, `seed ${seed}: the store failed`);
        const found = report.violations.join("\n");
        assert.match(found, /resolved with 0 of/, `seed ${seed}`);
        assert.match(found, /after the store failed/, `seed ${seed}`);
      }
    });

    it("passes the same runs without the defect", async () => {
      // The seeds above are clean with an honest store and effects: the defect is what was found.
      for (const seed of [1, 3, 4]) {
        assertClean(await runSimulation({ seed, steps: 150, failAtCommit: null }));
        const failing = await runSimulation({ seed, steps: 150, failAtCommit: 12 });
        assert.ok(failing.storeFailed, `seed ${seed}: the store failed`);
        assertClean(failing);
      }
    });
  });
}
