// When do worker threads pay? In-process transfers whose handlers also do CPU work, with workers 0,
// 1 and 2: transfers per second (median of the runs) and the ratio to workers 0.
//
//   node --import tsx bench/heavy-tasks.ts [--work 0,20000,100000] [--runs 3] [--seconds 4]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { silentLogger, startServer } from "shardless";
import Bank from "./transfer-app.ts";
import { HeavyTransfer } from "./heavy-app.ts";

const APP_MODULE = fileURLToPath(new URL("./heavy-app.ts", import.meta.url));
const ACCOUNTS = 100_000;
const OUTSTANDING = 256;

const { values } = parseArgs({ options: { work: { type: "string" }, runs: { type: "string" }, seconds: { type: "string" } } });
const works = (values.work ?? "0,20000,100000").split(",").map(Number);
const runs = Number(values.runs ?? 3);
const seconds = Number(values.seconds ?? 4);

/** Transfers per second with `workers`, each transfer doing `work` rounds. */
async function measure(workers: number, work: number): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), "shardless-heavy-"));
  const server = await startServer({ app: Bank, appModule: APP_MODULE, workers, durability: "memory", dataDir, tcpPort: null, httpPort: null, logger: silentLogger, appProperties: { accounts: String(ACCOUNTS) } });
  let done = 0;
  let stop = false;
  const lane = async () => {
    while (!stop) {
      const from = Math.floor(Math.random() * ACCOUNTS);
      await server.runTask(new HeavyTransfer(from, (from + 1 + Math.floor(Math.random() * (ACCOUNTS - 1))) % ACCOUNTS, work));
      done++;
    }
  };
  const started = performance.now();
  const lanes = Array.from({ length: OUTSTANDING }, lane);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  stop = true;
  await Promise.all(lanes);
  const rate = done / ((performance.now() - started) / 1000);
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
  return rate;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

console.log(`| rounds of work per transfer | workers 0 | 1 worker | 2 workers | 2 workers ÷ workers 0 |`);
console.log(`|---|---|---|---|---|`);
for (const work of works) {
  const rates: number[] = [];
  for (const workers of [0, 1, 2]) {
    const samples: number[] = [];
    for (let run = 0; run < runs; run++) samples.push(await measure(workers, work));
    rates.push(median(samples));
  }
  const [zero, one, two] = rates as [number, number, number];
  console.log(`| ${work} | ${Math.round(zero)} | ${Math.round(one)} | ${Math.round(two)} | ${(two / zero).toFixed(2)} |`);
}
