// The long form of the crash test: the transfer workload against a real server process, killed with
// SIGKILL again and again (under load, during start-up, during recovery), checked at every start.
//
//   node --import tsx scripts/soak-crash.ts [--kills 50] [--seed N] [--clients 4] [--data-dir DIR]
//
// Prints one line per run and a summary; exits with 1 if any anomaly was found. A failing run is
// replayed, in plan, with the seed it printed.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runCrashHarness } from "../packages/server/test/crash-harness.ts";

const { values } = parseArgs({
  options: {
    kills: { type: "string", default: "50" },
    seed: { type: "string" },
    clients: { type: "string", default: "4" },
    "data-dir": { type: "string" },
    "max-load-ms": { type: "string", default: "1500" },
  },
});
const kills = Number(values.kills);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(kills) || kills < 0 || !Number.isInteger(seed)) {
  console.error("usage: soak-crash.ts [--kills N] [--seed N] [--clients N] [--data-dir DIR] [--max-load-ms N]");
  process.exit(2);
}
// A directory of our own is removed afterwards; one given on the command line is kept for study.
const dataDir = values["data-dir"] ?? mkdtempSync(join(tmpdir(), "shardless-soak-"));
console.log(`soak-crash: ${kills} kills, seed ${seed}, data in ${dataDir}`);
const began = Date.now();
const report = await runCrashHarness({
  kills,
  seed,
  dataDir,
  clients: Number(values.clients),
  maxLoadMs: Number(values["max-load-ms"]),
  log: (line) => console.log(`[${((Date.now() - began) / 1000).toFixed(1)} s] ${line}`),
});
if (values["data-dir"] === undefined) rmSync(dataDir, { recursive: true, force: true });
console.log(`
Summary (seed ${report.seed}, ${((Date.now() - began) / 1000).toFixed(0)} s)
  kills survived:            ${report.kills} (under load ${report.killsByMode.load}, at start-up ${report.killsByMode.startup} of which ${report.killsBeforeStarted} before the start completed, during recovery ${report.killsByMode.recovery})
  starts fully checked:      ${report.checkedStarts}
  transfers acknowledged:    ${report.transfersAcknowledged} of ${report.transfersSent} sent (${report.transfersRefused} refused for funds)
  acks lost to a kill:       ${report.acknowledgementsLostToKills} (committed and durable, reply cut off; the resend was answered from the record)
  timers:                    ${report.timersAcknowledged} acknowledged, ${report.timersFired} fired once each (${report.timerFiringsLogged} firing logs seen)
  heartbeats logged:         ${report.heartbeats}
  anomalies:                 ${report.anomalies.length}`);
for (const anomaly of report.anomalies) console.log(`  - ${anomaly}`);
process.exit(report.anomalies.length === 0 ? 0 : 1);
