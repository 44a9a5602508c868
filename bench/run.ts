// npm run bench: runs workloads against systems, side by side in one run, and reports medians and
// ratios. With no arguments it runs the default matrix and writes bench/results.json and
// docs/benchmarks.md; with arguments, one configuration.
import { fork, type ChildProcess } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Durability } from "shardless";
import type { LoadOptions, LoadResult } from "./loadgen.ts";
import { Latencies, median } from "./stats.ts";
import { startSystem, type SystemName, type SystemOptions } from "./system.ts";
import { INITIAL_BALANCE, accountPicker, pickPair } from "./workload.ts";

/** One measured run: the record the JSON holds. */
export interface RunRecord {
  readonly workload: Workload;
  readonly system: SystemName;
  readonly options: {
    zipf: number;
    durability: Durability;
    placement: "network" | "in-process";
    /** Requests per second of an open loop; null for a closed loop. */
    rate: number | null;
    seconds: number;
    accounts: number;
    connections: number;
    window: number;
  };
  readonly tps: number;
  /** Every repeat's throughput; `tps` is their median. */
  readonly tpsRuns: number[];
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly abortsPerCommit: number;
  /** Server CPU as a fraction of one core (the whole process, in-process). */
  readonly serverCpu: number;
  /** Load generator CPU as a fraction of one core (null in-process). */
  readonly loadgenCpu: number | null;
  readonly bytesPerRequest: number | null;
  /** Requests still unanswered 2 s after the run (slow, such as long retries, or lost). */
  readonly unanswered: number;
  /** The workload's own check: money conserved (transfer), every request answered (echo). */
  readonly check: { passed: boolean; what: string; detail: string };
}

type Workload = "transfer" | "echo";

interface Configuration {
  readonly workload: Workload;
  readonly rate: number | null;
  readonly system: SystemName;
  readonly durability: Durability;
  readonly zipf: number;
  readonly inProcess: boolean;
}

interface Settings {
  readonly seconds: number;
  readonly repeats: number;
  readonly accounts: number;
  readonly connections: number;
  readonly window: number;
}

const HERE = fileURLToPath(new URL(".", import.meta.url));

function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Starts `bench/server-child.ts` and the system inside it. */
async function startChild(options: SystemOptions): Promise<{ child: ChildProcess; port: number; ask: (cmd: object) => Promise<Record<string, unknown>> }> {
  const child = fork(`${HERE}server-child.ts`, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ask = (cmd: object) =>
    new Promise<Record<string, unknown>>((resolve) => {
      child.once("message", (reply: Record<string, unknown>) => resolve(reply));
      child.send(cmd);
    });
  const ready = await ask({ cmd: "start", options });
  return { child, port: ready.port as number, ask };
}

async function loadFromChild(options: LoadOptions): Promise<LoadResult> {
  const child = fork(`${HERE}loadgen.ts`, ["--child"], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    child.on("message", (message: { progress?: number; result?: LoadResult }) => {
      if (message.progress !== undefined) process.stderr.write(`\r    ${message.progress} requests...`);
      if (message.result !== undefined) {
        process.stderr.write("\r");
        resolve(message.result);
      }
    });
    child.once("exit", (code) => code !== 0 && reject(new Error(`load generator exited with ${code}`)));
    child.send(options);
  });
}

/** One networked run: server and load generator in separate processes. */
async function runNetworked(config: Configuration, settings: Settings): Promise<Omit<RunRecord, "tpsRuns">> {
  const { child, port, ask } = await startChild({ workload: config.workload, system: config.system, accounts: settings.accounts, durability: config.durability });
  try {
    await ask({ cmd: "stats" }); // resets the CPU baseline
    const load = await loadFromChild({
      workload: config.workload,
      rate: config.rate,
      port,
      connections: settings.connections,
      window: settings.window,
      seconds: settings.seconds,
      accounts: settings.accounts,
      zipf: config.zipf,
    });
    const stats = await ask({ cmd: "stats" });
    const counters = stats.counters as { committed: number; conflicts: number };
    const total = (await ask({ cmd: "total" })).total as number;
    const serverSeconds = load.seconds + 0.5; // the stats window also covers the warm-up
    return record(config, settings, {
      tps: load.requests / load.seconds,
      percentiles: [load.p50Ms, load.p99Ms, load.p999Ms],
      abortsPerCommit: counters.committed === 0 ? 0 : counters.conflicts / counters.committed,
      serverCpu: (stats.cpuMs as number) / 1000 / serverSeconds,
      loadgenCpu: load.cpuMs / 1000 / load.seconds,
      bytesPerRequest: load.bytesPerRequest,
      total,
      unanswered: load.unanswered,
    });
  } finally {
    await ask({ cmd: "stop" });
    child.kill();
  }
}

/** One in-process run: requests generated inside the server process, no sockets: the engine alone. */
async function runInProcess(config: Configuration, settings: Settings): Promise<Omit<RunRecord, "tpsRuns">> {
  const system = await startSystem({ workload: config.workload, system: config.system, accounts: settings.accounts, durability: config.durability });
  try {
    const pick = accountPicker(settings.accounts, config.zipf);
    const latencies = new Latencies();
    const outstanding = settings.connections * settings.window;
    let running = true;
    let measuring = false;
    const loop = async (): Promise<void> => {
      for (let i = 1; running; i++) {
        const [from, to] = pickPair(pick);
        const started = performance.now();
        await system.transfer(from, to, 1);
        if (measuring) latencies.add(performance.now() - started);
        // A system that answers synchronously would otherwise starve the timers that end the run.
        if (i % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const loops = Array.from({ length: outstanding }, loop);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = system.counters();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    measuring = true;
    await new Promise((resolve) => setTimeout(resolve, settings.seconds * 1000));
    measuring = false;
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const after = system.counters();
    running = false;
    await Promise.all(loops);
    const committed = after.committed - before.committed;
    return record(config, settings, {
      tps: latencies.size / seconds,
      percentiles: latencies.percentiles(0.5, 0.99, 0.999),
      abortsPerCommit: committed === 0 ? 0 : (after.conflicts - before.conflicts) / committed,
      serverCpu: (cpu.user + cpu.system) / 1e6 / seconds,
      loadgenCpu: null,
      bytesPerRequest: null,
      total: await system.total(),
      unanswered: 0,
    });
  } finally {
    await system.stop();
  }
}

function record(
  config: Configuration,
  settings: Settings,
  measured: {
    tps: number;
    percentiles: number[];
    abortsPerCommit: number;
    serverCpu: number;
    loadgenCpu: number | null;
    bytesPerRequest: number | null;
    total: number;
    unanswered: number;
  },
): Omit<RunRecord, "tpsRuns"> {
  const expected = settings.accounts * INITIAL_BALANCE;
  const check =
    config.workload === "transfer"
      ? { passed: measured.total === expected, what: "money conserved", detail: `total ${measured.total} of ${expected}` }
      : { passed: measured.unanswered === 0, what: "every request answered", detail: `${measured.unanswered} unanswered` };
  return {
    workload: config.workload,
    system: config.system,
    options: {
      zipf: config.zipf,
      durability: config.system === "shardless" ? config.durability : "memory",
      placement: config.inProcess ? "in-process" : "network",
      rate: config.rate,
      seconds: settings.seconds,
      accounts: settings.accounts,
      connections: settings.connections,
      window: settings.window,
    },
    tps: measured.tps,
    p50Ms: measured.percentiles[0]!,
    p99Ms: measured.percentiles[1]!,
    p999Ms: measured.percentiles[2]!,
    abortsPerCommit: measured.abortsPerCommit,
    serverCpu: measured.serverCpu,
    loadgenCpu: measured.loadgenCpu,
    bytesPerRequest: measured.bytesPerRequest,
    unanswered: measured.unanswered,
    check,
  };
}

/** Runs `config` `repeats` times; keeps the run with the median throughput. */
async function measure(config: Configuration, settings: Settings): Promise<RunRecord> {
  const runs: Omit<RunRecord, "tpsRuns">[] = [];
  for (let repeat = 0; repeat < settings.repeats; repeat++) {
    say(`  ${describe(config)}: run ${repeat + 1}/${settings.repeats}`);
    runs.push(config.inProcess ? await runInProcess(config, settings) : await runNetworked(config, settings));
    const last = runs.at(-1)!;
    say(`    ${Math.round(last.tps)} tps, p99 ${last.p99Ms.toFixed(2)} ms, ${last.check.what}: ${last.check.passed ? "yes" : `NO (${last.check.detail})`}`);
  }
  const tpsRuns = runs.map((run) => run.tps);
  const middle = median(tpsRuns);
  const chosen = runs.reduce((best, run) => (Math.abs(run.tps - middle) < Math.abs(best.tps - middle) ? run : best));
  const failed = runs.find((run) => !run.check.passed);
  return { ...chosen, tps: middle, tpsRuns, check: failed?.check ?? chosen.check };
}

function describe(config: Configuration): string {
  const system = config.system === "shardless" ? `shardless (${config.durability})` : config.system;
  const load = config.rate === null ? "" : ` at ${config.rate}/s`;
  return `${config.workload}${config.workload === "transfer" ? ` zipf=${config.zipf}` : ""} ${system} ${config.inProcess ? "in-process" : "network"}${load}`;
}

/** The default matrix: every system, uniform and contended, both placements. */
function defaultMatrix(): Configuration[] {
  const configs: Configuration[] = [];
  for (const zipf of [0, 1.5]) {
    for (const inProcess of [true, false]) {
      const base = { workload: "transfer" as const, rate: null, zipf, inProcess };
      configs.push({ ...base, system: "baseline-memory", durability: "memory" });
      configs.push({ ...base, system: "postgres", durability: "sync" });
      configs.push({ ...base, system: "shardless", durability: "memory" });
      configs.push({ ...base, system: "shardless", durability: "sync" });
    }
  }
  return configs;
}

function markdown(records: readonly RunRecord[], settings: Settings): string {
  const transfers = records.filter((r) => r.workload === "transfer");
  const echoes = records.filter((r) => r.workload === "echo");
  const name = (r: RunRecord) => (r.system === "shardless" ? `shardless (${r.options.durability})` : r.system);
  const ms = (value: number) => value.toFixed(2);
  const cpu = (r: RunRecord) => `${(r.serverCpu * 100).toFixed(0)}% | ${r.loadgenCpu === null ? "-" : `${(r.loadgenCpu * 100).toFixed(0)}%`}`;
  const transferRows = transfers.map((r) => {
    const ratioTo = (system: string) => {
      const other = transfers.find((b) => b.system === system && b.options.zipf === r.options.zipf && b.options.placement === r.options.placement);
      return other === undefined ? "-" : (r.tps / other.tps).toFixed(2);
    };
    return `| ${r.options.zipf} | ${r.options.placement} | ${name(r)} | ${Math.round(r.tps)} | ${ratioTo("baseline-memory")} | ${ratioTo("postgres")} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${ms(r.p999Ms)} | ${r.abortsPerCommit.toFixed(3)} | ${cpu(r)} | ${r.check.passed ? "yes" : "NO"} |`;
  });
  const echoRows = echoes.map(
    (r) =>
      `| ${r.options.rate === null ? "closed loop (max)" : `open loop, ${r.options.rate}/s`} | ${name(r)} | ${Math.round(r.tps)} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${ms(r.p999Ms)} | ${cpu(r)} | ${r.check.passed ? "yes" : "NO"} |`,
  );
  const echoSection =
    echoes.length === 0
      ? ""
      : `
## echo

A 32-byte session message, sent back by the server: the floor of the stack (framing, sessions,
per-client order, a task per message, effects on commit). First each system's maximum with the
closed loop above; then an open loop at half of Shardless's maximum for both, where latency counts
from each request's scheduled send time (a stalled server cannot hide its queue).

| load | system | requests/s | p50 ms | p99 ms | p99.9 ms | server CPU | loadgen CPU | all answered |
|---|---|---|---|---|---|---|---|---|
${echoRows.join("\n")}
`;
  return `# Benchmarks

Measured with \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.
The machine is shared and noisy: each figure is the median of ${settings.repeats} runs of ${settings.seconds} s, and
comparisons are ratios against the baselines measured in the same run. Raw records: \`bench/results.json\`.

## transfer

SpacetimeDB's keynote benchmark shape: ${settings.accounts.toLocaleString("en")} accounts; each request moves 1 unit between
two accounts chosen uniformly (zipf 0) or with Zipf α = 1.5 (heavy contention on a few accounts). The
total balance is checked after every run. Over the network, ${settings.connections} connections each keep ${settings.window}
requests outstanding (closed loop), from a separate load-generator process; in-process, the same
number of requests are kept outstanding inside the server process (the engine alone, no sockets).
A Shardless request is answered only after its commit is durable (fsync with \`sync\`).

- **baseline-memory**: a hand-written Node server holding balances in an array: no transactions, no
  persistence (the "no framework" upper bound).
- **postgres**: PostgreSQL 15 (Debian's package, started by the benchmark on loopback, fsync on);
  each transfer is one SERIALIZABLE transaction from a Node front end with a pool of 16
  connections, retried on serialization failure (the aborts column). Its server CPU counts the
  Node front end only, not the PostgreSQL processes.
- **shardless (memory)**: transactions and group commit, nothing written to disk.
- **shardless (sync)**: the default: LMDB, fsync before any reply.

| zipf | placement | system | tps | × baseline | × postgres | p50 ms | p99 ms | p99.9 ms | aborts/commit | server CPU | loadgen CPU | money conserved |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
${transferRows.join("\n")}
${echoSection}
CPU is a fraction of one core; with 2 cores the load generator competes with the server for them.
Where the time goes, and what limits each placement: [performance.md](performance.md).
Workers on every core, the room workload, rate stepping, and the SQLite and Colyseus comparisons
are not measured yet.
`;
}

/** The echo section: each system's maximum, then both at half of Shardless's maximum. */
async function measureEcho(settings: Settings): Promise<RunRecord[]> {
  const closed = (system: SystemName): Configuration => ({ workload: "echo", rate: null, system, durability: "sync", zipf: 0, inProcess: false });
  const shardlessMax = await measure(closed("shardless"), settings);
  const baselineMax = await measure(closed("baseline-memory"), settings);
  const rate = Math.max(1, Math.round(shardlessMax.tps / 2));
  const atRate = (system: SystemName): Configuration => ({ ...closed(system), rate });
  return [shardlessMax, baselineMax, await measure(atRate("shardless"), settings), await measure(atRate("baseline-memory"), settings)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workload: { type: "string", default: "transfer" },
      system: { type: "string" },
      zipf: { type: "string" },
      durability: { type: "string" },
      "in-process": { type: "boolean" },
      seconds: { type: "string" },
      repeats: { type: "string" },
      accounts: { type: "string" },
      connections: { type: "string" },
      window: { type: "string" },
      rate: { type: "string" },
      json: { type: "string" },
      quick: { type: "boolean" },
    },
  });
  if (values.workload !== "transfer" && values.workload !== "echo") throw new Error(`workload ${values.workload} is not implemented yet (transfer and echo are)`);
  const workload: Workload = values.workload;
  const quick = values.quick === true;
  const settings: Settings = {
    seconds: Number(values.seconds ?? (quick ? 1 : 5)),
    repeats: Number(values.repeats ?? (quick ? 1 : 3)),
    accounts: Number(values.accounts ?? (quick ? 10_000 : 100_000)),
    connections: Number(values.connections ?? 32),
    window: Number(values.window ?? 8),
  };
  const single = values.system !== undefined;
  const configs: Configuration[] = single
    ? [
        {
          workload,
          rate: values.rate === undefined ? null : Number(values.rate),
          system: values.system as SystemName,
          durability: (values.durability ?? "sync") as Durability,
          zipf: Number(values.zipf ?? 0),
          inProcess: values["in-process"] === true,
        },
      ]
    : defaultMatrix().filter((config) => !quick || config.zipf === 0);
  say(`bench: ${configs.length} configuration(s), ${settings.repeats} run(s) of ${settings.seconds} s each, ${settings.accounts} accounts`);
  const records: RunRecord[] = [];
  for (const config of configs) records.push(await measure(config, settings));
  if (!single) records.push(...(await measureEcho(settings)));
  const json = JSON.stringify(records, null, 2);
  if (values.json !== undefined) writeFileSync(values.json, `${json}\n`);
  if (!single && !quick) {
    writeFileSync(fileURLToPath(new URL("./results.json", import.meta.url)), `${json}\n`);
    writeFileSync(fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url)), markdown(records, settings));
    say("wrote bench/results.json and docs/benchmarks.md");
  }
  process.stdout.write(markdown(records, settings).split("\n").filter((line) => line.startsWith("|")).join("\n") + "\n");
  const broken = records.filter((r) => !r.check.passed);
  if (broken.length > 0) {
    say(`check failed in ${broken.length} configuration(s): ${broken.map((r) => `${r.check.what}: ${r.check.detail}`).join("; ")}`);
    process.exitCode = 1;
  }
}

await main();
