// The long form of the kernel simulation: random seeds, one after another, for a while.
//
//   node --import tsx scripts/simulate.ts [--seconds 60 | --runs N] [--seed FIRST] [--steps 300]
//
// Prints a line per failing seed (with how to replay it) and a summary; exits with 1 if any seed
// found a violation. Seeds run with the default number of steps replay in the CI test file with
// SIM_SEED; with --steps, replay with the same --steps and --seed here and --runs 1.
import { parseArgs } from "node:util";
import { describeFailure, runSimulation } from "../packages/server/test/sim/simulation.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string" },
    runs: { type: "string" },
    seed: { type: "string" },
    steps: { type: "string", default: "300" },
  },
});
const seconds = values.seconds === undefined ? (values.runs === undefined ? 60 : Infinity) : Number(values.seconds);
const runs = values.runs === undefined ? Infinity : Number(values.runs);
const steps = Number(values.steps);
// Without --seed, each run takes a fresh random seed; with it, seeds count up from there.
const firstSeed = values.seed === undefined ? undefined : Number(values.seed);
if (!(seconds > 0) || !(runs > 0) || !Number.isInteger(steps) || steps < 1 || (firstSeed !== undefined && !Number.isInteger(firstSeed))) {
  console.error("usage: simulate.ts [--seconds N | --runs N] [--seed FIRST] [--steps N]");
  process.exit(2);
}

const began = Date.now();
const failures: number[] = [];
const totals = new Map<string, number>();
let completed = 0;
let storeFailures = 0;
console.log(`simulate: ${Number.isFinite(runs) ? `${runs} runs` : `${seconds} s`}, ${steps} steps per run${firstSeed === undefined ? "" : `, seeds from ${firstSeed}`}`);
while (completed < runs && Date.now() - began < seconds * 1000) {
  const seed = firstSeed === undefined ? Math.floor(Math.random() * 2 ** 31) : firstSeed + completed;
  const report = await runSimulation({ seed, steps });
  completed++;
  if (report.storeFailed) storeFailures++;
  for (const [key, value] of Object.entries(report.counts)) totals.set(key, (totals.get(key) ?? 0) + value);
  if (report.violations.length > 0) {
    failures.push(seed);
    console.log(`\n${describeFailure(report)}${steps === 300 ? "" : ` (with --steps ${steps}: node --import tsx scripts/simulate.ts --runs 1 --steps ${steps} --seed ${seed})`}\n`);
  }
}
const seconds_ = ((Date.now() - began) / 1000).toFixed(0);
console.log(`
Summary (${completed} runs in ${seconds_} s)
  runs with a store failure: ${storeFailures}
  workload tasks:            ${totals.get("tracked") ?? 0} (committed ${totals.get("committed") ?? 0}, given up ${totals.get("gaveUp") ?? 0})
  attempts:                  ${totals.get("attempts") ?? 0} (injected faults ${totals.get("faults") ?? 0}, overlap conflicts ${totals.get("handConflicts") ?? 0}, timeouts ${totals.get("handTimeouts") ?? 0})
  scheduled runs:            ${totals.get("runs") ?? 0} (cancels ${totals.get("cancels") ?? 0})
  store commits:             ${totals.get("storeCommits") ?? 0}; effects released ${totals.get("effects") ?? 0}
  failing seeds:             ${failures.length === 0 ? "none" : failures.join(", ")}`);
process.exit(failures.length === 0 ? 0 : 1);
