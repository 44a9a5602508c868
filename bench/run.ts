// npm run bench: runs workloads against systems, side by side in one run, and reports medians and
// ratios. With no arguments it runs the default matrix and writes bench/results.json and
// docs/benchmarks.md; with arguments, one configuration.
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Durability } from "shardless";
import type { LoadOptions, LoadResult } from "./loadgen.ts";
import { measureMapContention, type ContentionFigures } from "../packages/server/test/contention.ts";
import { markdown, systemLabel, writeCharts } from "./report.ts";
import type { RoomLoadOptions, RoomLoadResult, RoomStep, RoomSystemName } from "./room-loadgen.ts";
import type { CpuSample } from "./server-child.ts";
import { Latencies, median } from "./stats.ts";
import { SYSTEMS, startSystem, type SystemName, type SystemOptions, type Workload } from "./system.ts";
import { INITIAL_BALANCE, accountPicker, pickPair } from "./workload.ts";

/** One measured run: the record the JSON holds. */
export interface RunRecord {
  readonly workload: Workload;
  readonly system: SystemName;
  readonly options: {
    zipf: number;
    durability: Durability;
    placement: "network" | "in-process";
    /** Shardless's worker threads (0: tasks on the main thread); 0 for the other systems. */
    workers: number;
    /** Requests per second of an open loop; null for a closed loop. */
    rate: number | null;
    seconds: number;
    accounts: number;
    connections: number;
    window: number;
  };
  /** Requests per second (room: moves per second at the players held). */
  readonly tps: number;
  /** Every repeat's throughput (room: players held); `tps` (`players`) is their median. */
  readonly tpsRuns: number[];
  /** Room: the most players held with p99 update-to-delivery under the bound; else null. */
  readonly players: number | null;
  /** Room: every step of the chosen run. */
  readonly steps: RoomStep[] | null;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly abortsPerCommit: number;
  /** Server CPU as a fraction of one core (the whole process, in-process). */
  readonly serverCpu: number;
  /** Load generator CPU as a fraction of one core (null in-process). */
  readonly loadgenCpu: number | null;
  readonly bytesPerRequest: number | null;
  /** Requests still unanswered 10 s after the run (slow, such as long retries, or lost). */
  readonly unanswered: number;
  /** The workload's own check: money conserved (transfer), every request answered (echo), every player joined and stayed (room). */
  readonly check: { passed: boolean; what: string; detail: string };
}

interface Configuration {
  readonly workload: Workload;
  readonly rate: number | null;
  readonly system: SystemName;
  readonly durability: Durability;
  readonly zipf: number;
  readonly inProcess: boolean;
  /** Shardless's worker threads (the server's `workers`); 0 for the other systems. */
  readonly workers: number;
}

export interface Settings {
  readonly seconds: number;
  readonly repeats: number;
  readonly accounts: number;
  readonly connections: number;
  readonly window: number;
  /** Room: players in the first step, the most players tried, and seconds measured per step. */
  readonly roomStart: number;
  readonly roomMax: number;
  readonly roomStepSeconds: number;
  /** Seconds of load before each measured window of the request workloads. */
  readonly warmupSeconds: number;
  /** Where the server process writes a CPU profile (`--profile DIR`), or null. */
  readonly profileDir: string | null;
}

const HERE = fileURLToPath(new URL(".", import.meta.url));

function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Starts `bench/server-child.ts` and the system inside it. */
async function startChild(options: SystemOptions, profileDir: string | null): Promise<{ child: ChildProcess; port: number; ask: (cmd: object) => Promise<Record<string, unknown>> }> {
  const profile = profileDir === null ? [] : ["--cpu-prof", "--cpu-prof-dir", profileDir];
  const child = fork(`${HERE}server-child.ts`, [], { execArgv: ["--import", "tsx", ...profile], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ask = (cmd: object) =>
    new Promise<Record<string, unknown>>((resolve) => {
      child.once("message", (reply: Record<string, unknown>) => resolve(reply));
      child.send(cmd);
    });
  const ready = await ask({ cmd: "start", options });
  return { child, port: ready.port as number, ask };
}

/** Stops the system and lets its process exit by itself (so a CPU profile gets written). */
async function stopChild(child: ChildProcess, ask: (cmd: object) => Promise<unknown>): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  await ask({ cmd: "stop" });
  const timer = setTimeout(() => child.kill(), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Runs a load generator script in its own process; progress and the result come back over IPC. */
function loadFromChild<Options extends object, Result>(script: string, options: Options, progress: (value: number | string) => void): Promise<Result> {
  const child = fork(`${HERE}${script}`, ["--child"], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    child.on("message", (message: { progress?: number | string; result?: Result }) => {
      if (message.progress !== undefined) progress(message.progress);
      if (message.result !== undefined) resolve(message.result);
    });
    child.once("exit", (code) => code !== 0 && reject(new Error(`${script} exited with ${code}`)));
    child.send(options);
  });
}

/** A request load in its own process, with a live count of requests answered. */
async function requestLoad(options: LoadOptions): Promise<LoadResult> {
  const result = await loadFromChild<LoadOptions, LoadResult>("loadgen.ts", options, (done) => process.stderr.write(`\r    ${done} requests...`));
  process.stderr.write("\r");
  return result;
}

/** The server's CPU, as a fraction of one core, between two wall-clock times. */
function cpuBetween(timeline: readonly CpuSample[], from: number, to: number): number {
  const at = (time: number) => timeline.reduce((best, sample) => (Math.abs(sample.at - time) < Math.abs(best.at - time) ? sample : best));
  const [first, last] = [at(from), at(to)];
  return last.at === first.at ? 0 : (last.cpuMs - first.cpuMs) / (last.at - first.at);
}

/** One room run: players joined step by step until the latency bound breaks. */
async function runRoom(config: Configuration, settings: Settings): Promise<Omit<RunRecord, "tpsRuns">> {
  const { child, port, ask } = await startChild({ workload: "room", system: config.system, accounts: 0, durability: config.durability, workers: config.workers }, settings.profileDir);
  try {
    const load = await loadFromChild<RoomLoadOptions, RoomLoadResult>(
      "room-loadgen.ts",
      { system: config.system as RoomSystemName, port, startPlayers: settings.roomStart, maxPlayers: settings.roomMax, growth: 1.25, stepSeconds: settings.roomStepSeconds, warmupSeconds: settings.warmupSeconds },
      (line) => say(`    ${line}`),
    );
    const stats = await ask({ cmd: "stats" });
    const counters = stats.counters as { committed: number; conflicts: number };
    const { timeline } = (await ask({ cmd: "cpuTimeline" })) as { timeline: CpuSample[] };
    const held = load.steps.filter((step) => step.held).at(-1) ?? load.steps[0];
    return {
      ...record(config, settings, {
        tps: held?.movesPerSecond ?? 0,
        percentiles: held === undefined ? [Number.NaN, Number.NaN, Number.NaN] : [held.p50Ms, held.p99Ms, held.p999Ms],
        abortsPerCommit: counters.committed === 0 ? 0 : counters.conflicts / counters.committed,
        serverCpu: held === undefined ? 0 : cpuBetween(timeline, held.wallStart, held.wallEnd),
        loadgenCpu: held?.loadgenCpu ?? 0,
        bytesPerRequest: null,
        total: 0,
        unanswered: 0,
        failure: load.failure,
      }),
      players: load.playersHeld,
      steps: load.steps,
    };
  } finally {
    await stopChild(child, ask);
  }
}

/** One networked run: server and load generator in separate processes. */
async function runNetworked(config: Configuration, settings: Settings): Promise<Omit<RunRecord, "tpsRuns">> {
  const { child, port, ask } = await startChild(
    { workload: config.workload, system: config.system, accounts: settings.accounts, durability: config.durability, workers: config.workers },
    settings.profileDir,
  );
  try {
    await ask({ cmd: "stats" }); // resets the commit counters' baseline
    const load = await requestLoad({
      workload: config.workload as LoadOptions["workload"],
      rate: config.rate,
      port,
      connections: settings.connections,
      window: settings.window,
      seconds: settings.seconds,
      accounts: settings.accounts,
      zipf: config.zipf,
      warmupSeconds: settings.warmupSeconds,
    });
    const stats = await ask({ cmd: "stats" });
    const counters = stats.counters as { committed: number; conflicts: number };
    const total = (await ask({ cmd: "total" })).total as number;
    const { timeline } = (await ask({ cmd: "cpuTimeline" })) as { timeline: CpuSample[] };
    return record(config, settings, {
      tps: load.requests / load.seconds,
      percentiles: [load.p50Ms, load.p99Ms, load.p999Ms],
      abortsPerCommit: counters.committed === 0 ? 0 : counters.conflicts / counters.committed,
      serverCpu: cpuBetween(timeline, load.wallStart, load.wallEnd),
      loadgenCpu: load.cpuMs / 1000 / load.seconds,
      bytesPerRequest: load.bytesPerRequest,
      total,
      unanswered: load.unanswered,
    });
  } finally {
    await stopChild(child, ask);
  }
}

/** One in-process run: requests generated inside the server process, no sockets: the engine alone. */
async function runInProcess(config: Configuration, settings: Settings): Promise<Omit<RunRecord, "tpsRuns">> {
  const system = await startSystem({ workload: config.workload, system: config.system, accounts: settings.accounts, durability: config.durability, workers: config.workers });
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
    /** Room: why players could not join or were dropped, or null. */
    failure?: string | null;
  },
): Omit<RunRecord, "tpsRuns"> {
  return {
    workload: config.workload,
    system: config.system,
    options: {
      zipf: config.zipf,
      durability: durabilityOf(config),
      placement: config.inProcess ? "in-process" : "network",
      workers: config.workers,
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
    players: null,
    steps: null,
    check: checkOf(config, settings, measured),
  };
}

/** What a system keeps across a crash: the baselines nothing, PostgreSQL everything (fsync on). */
function durabilityOf(config: Configuration): Durability {
  if (config.system === "shardless" || config.system === "sqlite") return config.durability;
  return config.system === "postgres" ? "sync" : "memory";
}

function checkOf(config: Configuration, settings: Settings, measured: { total: number; unanswered: number; failure?: string | null }): RunRecord["check"] {
  if (config.workload === "transfer") {
    const expected = settings.accounts * INITIAL_BALANCE;
    return { passed: measured.total === expected, what: "money conserved", detail: `total ${measured.total} of ${expected}` };
  }
  if (config.workload === "room") return { passed: measured.failure === null, what: "every player joined and stayed", detail: measured.failure ?? "" };
  return { passed: measured.unanswered === 0, what: "every request answered", detail: `${measured.unanswered} unanswered` };
}

/** Runs `config` `repeats` times; keeps the run with the median throughput. */
async function measure(config: Configuration, settings: Settings): Promise<RunRecord> {
  return (await measureTogether([config], settings))[0]!;
}

/**
 * Runs each of `configs` `repeats` times, in rounds (the first run of each, then the second of
 * each, ...): the machine is shared, and its speed drifts over the minutes a section takes, so
 * configurations compared with each other are measured interleaved rather than one after another.
 */
async function measureTogether(configs: readonly Configuration[], settings: Settings): Promise<RunRecord[]> {
  const runs = configs.map((): Omit<RunRecord, "tpsRuns">[] => []);
  for (let repeat = 0; repeat < settings.repeats; repeat++) {
    for (const [index, config] of configs.entries()) {
      say(`  ${describe(config)}: run ${repeat + 1}/${settings.repeats}`);
      const last = await runOnce(config, settings);
      runs[index]!.push(last);
      const figure = last.players === null ? `${Math.round(last.tps)} tps` : `${last.players} players held`;
      // A run that got no answer in time has no percentiles (NaN, null once it has crossed IPC).
      const p99 = Number.isFinite(last.p99Ms) ? `${last.p99Ms.toFixed(2)} ms` : "-";
      say(`    ${figure}, p99 ${p99}, ${last.check.what}: ${last.check.passed ? "yes" : `NO (${last.check.detail})`}`);
    }
  }
  return configs.map((config, index) => summarize(config, runs[index]!));
}

/**
 * The record of a configuration's runs: the median one, by players held for the room, by p99 for
 * an open loop (whose throughput is the offered rate, the same in every run), else by throughput.
 */
function summarize(config: Configuration, runs: readonly Omit<RunRecord, "tpsRuns">[]): RunRecord {
  const figure = (run: Omit<RunRecord, "tpsRuns">) => run.players ?? run.tps;
  const rank = config.rate === null ? figure : (run: Omit<RunRecord, "tpsRuns">) => run.p99Ms;
  const middle = median(runs.map(rank));
  const chosen = runs.reduce((best, run) => (Math.abs(rank(run) - middle) < Math.abs(rank(best) - middle) ? run : best));
  const failed = runs.find((run) => !run.check.passed);
  const headline = chosen.players === null ? { tps: median(runs.map((run) => run.tps)) } : { players: median(runs.map(figure)) };
  return { ...chosen, ...headline, tpsRuns: runs.map(figure), check: failed?.check ?? chosen.check };
}

function runOnce(config: Configuration, settings: Settings): Promise<Omit<RunRecord, "tpsRuns">> {
  if (config.workload === "room") return runRoom(config, settings);
  return config.inProcess ? runInProcess(config, settings) : runNetworked(config, settings);
}

function describe(config: Configuration): string {
  const system = systemLabel(config.system, durabilityOf(config), config.workers);
  const load = config.rate === null ? "" : ` at ${config.rate}/s`;
  return `${config.workload}${config.workload === "transfer" ? ` zipf=${config.zipf}` : ""} ${system} ${config.inProcess ? "in-process" : "network"}${load}`;
}

/** The transfer matrix: every system, uniform and contended, both placements. */
function transferMatrix(): Configuration[] {
  const configs: Configuration[] = [];
  for (const zipf of [0, 1.5]) {
    for (const inProcess of [true, false]) {
      const base = { workload: "transfer" as const, rate: null, zipf, inProcess, workers: 0 };
      configs.push({ ...base, system: "baseline-memory", durability: "memory" });
      configs.push({ ...base, system: "postgres", durability: "sync" });
      configs.push({ ...base, system: "sqlite", durability: "sync" });
      for (const durability of ["memory", "sync"] as const) {
        for (const workers of shardlessWorkers(zipf, inProcess, durability)) configs.push({ ...base, system: "shardless", durability, workers });
      }
    }
  }
  return configs;
}

/**
 * The worker counts Shardless runs with in the transfer matrix: 0 everywhere, and beside it what the
 * workers' targets compare: 1 and 2 in-process (memory, where the engine's CPU is the limit, not
 * fsync), and 1 and 2 over the network (uniform, sync), reported beside them. Each worker run adds over a minute to the full
 * matrix, and worker threads take longer to start; the rest is left out to hold its time.
 */
function shardlessWorkers(zipf: number, inProcess: boolean, durability: Durability): number[] {
  if (inProcess) return durability === "memory" ? [0, 1, 2] : [0];
  return zipf === 0 && durability === "sync" ? [0, 1, 2] : [0];
}

/** Open-loop rates for echo, as fractions of Shardless's closed-loop maximum; the half is the target's. */
const ECHO_RATE_STEPS = [0.25, 0.5, 0.75];

/**
 * The echo section: each system's maximum, then both systems in an open loop at a quarter, half and
 * three quarters of Shardless's maximum (latency against offered load).
 */
async function measureEcho(settings: Settings, quick: boolean): Promise<RunRecord[]> {
  const closed = (system: SystemName): Configuration => ({ workload: "echo", rate: null, system, durability: "sync", zipf: 0, inProcess: false, workers: 0 });
  const records = await measureTogether([closed("shardless"), closed("baseline-memory")], settings);
  for (const fraction of quick ? [0.5] : ECHO_RATE_STEPS) {
    const rate = Math.max(1, Math.round(records[0]!.tps * fraction));
    records.push(...(await measureTogether([{ ...closed("shardless"), rate }, { ...closed("baseline-memory"), rate }], settings)));
  }
  return records;
}

/** The room section: players held by each system, Shardless durable. */
function roomMatrix(): Configuration[] {
  const base = { workload: "room" as const, rate: null, zipf: 0, inProcess: false, workers: 0 };
  return [
    { ...base, system: "baseline-memory", durability: "memory" },
    { ...base, system: "colyseus", durability: "memory" },
    { ...base, system: "shardless", durability: "sync" },
  ];
}

/**
 * Measures one workload's section of the matrix (the transfer section without zipf 1.5 and worker
 * threads when quick). The configurations a target compares (the same zipf and placement; the
 * room's systems) are measured interleaved, run by run.
 */
async function measureWorkload(workload: Workload, settings: Settings, quick: boolean): Promise<RunRecord[]> {
  if (workload === "echo") return measureEcho(settings, quick);
  if (workload === "room") return measureTogether(roomMatrix(), settings);
  const configs = transferMatrix().filter((config) => !quick || (config.zipf === 0 && config.workers === 0));
  const groups = new Map<string, Configuration[]>();
  for (const config of configs) {
    const key = `${config.zipf} ${config.inProcess}`;
    groups.set(key, [...(groups.get(key) ?? []), config]);
  }
  const records: RunRecord[] = [];
  for (const group of groups.values()) records.push(...(await measureTogether(group, settings)));
  return records;
}

function parseWorkload(value: string | undefined): Workload | undefined {
  if (value === undefined || value === "transfer" || value === "echo" || value === "room") return value;
  throw new Error(`unknown workload ${value} (transfer, echo, room)`);
}

/** `--workers N`: a whole number of worker threads, and only Shardless has them. */
function parseWorkers(system: SystemName, value: string | undefined): number {
  const workers = Number(value ?? 0);
  if (!Number.isInteger(workers) || workers < 0) throw new Error(`--workers takes a whole number ≥ 0, got ${value}`);
  if (workers > 0 && system !== "shardless") throw new Error(`--workers applies to shardless only, not ${system}`);
  return workers;
}

function parseSystem(workload: Workload, value: string): SystemName {
  const system = SYSTEMS[workload].find((name) => name === value);
  if (system === undefined) throw new Error(`the ${workload} workload has no system ${value} (${SYSTEMS[workload].join(", ")})`);
  return system;
}

/** The collections' contention counts, for the report (deterministic: counts, not times). */
async function measureCollections(): Promise<ContentionFigures[]> {
  const figures: ContentionFigures[] = [];
  for (const writers of [4, 8, 16]) figures.push(await measureMapContention(writers, 1200));
  return figures;
}

/** Writes docs/benchmarks.md and docs/charts/ for a full run's records. */
function writeReport(records: readonly RunRecord[], settings: Settings, collections: readonly ContentionFigures[]): void {
  writeFileSync(fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url)), markdown(records, settings, collections));
  writeCharts(records, fileURLToPath(new URL("../docs/charts/", import.meta.url)));
  say("wrote docs/benchmarks.md and docs/charts/");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workload: { type: "string" },
      system: { type: "string" },
      zipf: { type: "string" },
      durability: { type: "string" },
      "in-process": { type: "boolean" },
      workers: { type: "string" },
      seconds: { type: "string" },
      repeats: { type: "string" },
      accounts: { type: "string" },
      connections: { type: "string" },
      window: { type: "string" },
      rate: { type: "string" },
      players: { type: "string" },
      "max-players": { type: "string" },
      json: { type: "string" },
      profile: { type: "string" },
      warmup: { type: "string" },
      "report-only": { type: "boolean" },
      quick: { type: "boolean" },
    },
  });
  const workload = parseWorkload(values.workload);
  const quick = values.quick === true;
  const settings: Settings = {
    seconds: Number(values.seconds ?? (quick ? 1 : 5)),
    repeats: Number(values.repeats ?? (quick ? 1 : 3)),
    accounts: Number(values.accounts ?? (quick ? 10_000 : 100_000)),
    connections: Number(values.connections ?? 32),
    window: Number(values.window ?? 8),
    roomStart: Number(values.players ?? (quick ? 20 : 100)),
    roomMax: Number(values["max-players"] ?? (quick ? 30 : 20_000)),
    roomStepSeconds: Number(values.seconds ?? (quick ? 1 : 3)),
    warmupSeconds: Number(values.warmup ?? (quick ? 0.5 : 2)),
    profileDir: values.profile ?? null,
  };
  const resultsFile = fileURLToPath(new URL("./results.json", import.meta.url));
  if (values["report-only"] === true) {
    // Re-renders the last full run's docs (after a change to the report's text or charts).
    // Records from before worker threads have no `workers`: their tasks ran on the main thread.
    type Stored = Omit<RunRecord, "options"> & { options: Omit<RunRecord["options"], "workers"> & { workers?: number } };
    const stored = JSON.parse(readFileSync(resultsFile, "utf8")) as Stored[];
    const records: RunRecord[] = stored.map((r) => ({ ...r, options: { ...r.options, workers: r.options.workers ?? 0 } }));
    writeReport(records, settings, await measureCollections());
    return;
  }
  if (values.workers !== undefined && values.system === undefined) throw new Error("--workers sets one configuration's worker threads: give --system too (the matrix sets its own)");
  const records: RunRecord[] = [];
  if (values.system !== undefined) {
    const chosen = workload ?? "transfer";
    const system = parseSystem(chosen, values.system);
    const config: Configuration = {
      workload: chosen,
      rate: values.rate === undefined ? null : Number(values.rate),
      system,
      durability: (values.durability ?? "sync") as Durability,
      zipf: Number(values.zipf ?? 0),
      inProcess: values["in-process"] === true,
      workers: parseWorkers(system, values.workers),
    };
    records.push(await measure(config, settings));
  } else {
    say(`bench: ${workload ?? "every workload"}, ${settings.repeats} run(s) of ${settings.seconds} s each, ${settings.accounts} accounts`);
    for (const each of workload === undefined ? (["transfer", "echo", "room"] as const) : [workload]) records.push(...(await measureWorkload(each, settings, quick)));
  }
  const json = JSON.stringify(records, null, 2);
  if (values.json !== undefined) writeFileSync(values.json, `${json}\n`);
  if (values.system === undefined && workload === undefined && !quick) {
    writeFileSync(resultsFile, `${json}\n`);
    writeReport(records, settings, await measureCollections());
  }
  process.stdout.write(markdown(records, settings).split("\n").filter((line) => line.startsWith("|")).join("\n") + "\n");
  const broken = records.filter((r) => !r.check.passed);
  if (broken.length > 0) {
    say(`check failed in ${broken.length} configuration(s): ${broken.map((r) => `${r.check.what}: ${r.check.detail}`).join("; ")}`);
    process.exitCode = 1;
  }
}

await main();
