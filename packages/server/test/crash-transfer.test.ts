// The transfer workload against a real server process killed with SIGKILL at random moments:
// money conserved, nothing acknowledged lost, no effect twice, timers still firing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runCrashHarness } from "./crash-harness.ts";
import { TEST_WORKERS, tempDir } from "./helpers.ts";

const KILLS = 6;
// A fixed seed in CI; CRASH_SEED replays another plan.
const SEED = Number(process.env.CRASH_SEED ?? 20_240_606);

describe("crash safety of the transfer workload", () => {
  it(`survives ${KILLS} kill -9s under load, at start-up and during recovery (seed ${SEED})`, { timeout: 120_000 }, async () => {
    const lines: string[] = [];
    const report = await runCrashHarness({ kills: KILLS, seed: SEED, dataDir: tempDir(), maxLoadMs: 900, workers: TEST_WORKERS, log: (line) => lines.push(line) });
    assert.deepEqual(report.anomalies, [], `seed ${SEED}:\n${lines.join("\n")}`);
    // A run that checked nothing proves nothing: each kind of kill happened, and the checks ran.
    assert.ok(report.killsByMode.load >= 1 && report.killsByMode.startup >= 1 && report.killsByMode.recovery >= 1, JSON.stringify(report.killsByMode));
    assert.ok(report.checkedStarts >= 3, `checks ran at ${report.checkedStarts} starts`);
    assert.ok(report.transfersAcknowledged > 0 && report.transfersAcknowledged === report.transfersSent, `${report.transfersAcknowledged} of ${report.transfersSent} acknowledged`);
    assert.ok(report.timersAcknowledged > 0 && report.timersFired === report.timersAcknowledged, `${report.timersFired} of ${report.timersAcknowledged} timers fired`);
    assert.ok(report.heartbeats > 0);
  });
});
