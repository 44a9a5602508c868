// docs/benchmarks.md and its charts, from the records of one run of the matrix.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { barChart, lineChart } from "./charts.ts";
import { LATENCY_BOUND_MS, ROOM_SIZE, UPDATE_HZ } from "./room-workload.ts";
import type { RunRecord, Settings } from "./run.ts";
import type { SystemName } from "./system.ts";
import type { ContentionFigures } from "../packages/server/test/contention.ts";

const ms = (value: number | null) => (value !== null && Number.isFinite(value) ? value.toFixed(2) : "-");
const percent = (fraction: number | null) => (fraction === null ? "-" : `${(fraction * 100).toFixed(0)}%`);

/** A system's name with its durability where it has a choice, and Shardless's worker threads when it has any. */
export function systemLabel(system: SystemName, durability: string, workers: number): string {
  if (system === "sqlite") return `${system} (${durability})`;
  if (system !== "shardless") return system;
  return workers === 0 ? `${system} (${durability})` : `${system} (${durability}, ${workers} worker${workers === 1 ? "" : "s"})`;
}

function nameOf(r: RunRecord): string {
  return systemLabel(r.system, r.options.durability, r.options.workers);
}

/** The record of `system` (with `durability`, if given) measured under the same conditions as `r`. */
function peerOf(records: readonly RunRecord[], r: RunRecord, system: string, durability?: string): RunRecord | undefined {
  return records.find(
    (other) =>
      other.workload === r.workload &&
      other.system === system &&
      (durability === undefined || other.options.durability === durability) &&
      other.options.zipf === r.options.zipf &&
      other.options.placement === r.options.placement &&
      other.options.rate === r.options.rate,
  );
}

function ratio(numerator: number | undefined, denominator: number | undefined): string {
  return numerator === undefined || denominator === undefined || denominator === 0 ? "-" : (numerator / denominator).toFixed(2);
}

function transferSection(records: readonly RunRecord[], settings: Settings): string {
  const transfers = records.filter((r) => r.workload === "transfer");
  if (transfers.length === 0) return "";
  const rows = transfers.map((r) => {
    const against = (system: string) => ratio(r.tps, peerOf(transfers, r, system)?.tps);
    return `| ${r.options.zipf} | ${r.options.placement} | ${nameOf(r)} | ${Math.round(r.tps)} | ${against("baseline-memory")} | ${against("postgres")} | ${against("sqlite")} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${ms(r.p999Ms)} | ${r.abortsPerCommit.toFixed(3)} | ${percent(r.serverCpu)} | ${percent(r.loadgenCpu)} | ${r.check.passed ? "yes" : "NO"} |`;
  });
  return `
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
- **sqlite (sync)**: better-sqlite3 in WAL mode with \`synchronous = FULL\` (the WAL is fsync'd at
  every commit); each transfer one transaction on one connection, so one writer at a time.
- **shardless (memory)**: transactions and group commit, nothing written to disk.
- **shardless (sync)**: the default: LMDB, fsync before any reply.
- **shardless (…, N workers)**: tasks run on N worker threads (the \`workers\` option); without the
  mark, on the main thread. Server CPU counts every thread of the process. In-process, each transfer
  is handed to the server as a task object (\`server.runTask\`), copied as data so that it can run on
  a worker, with or without workers.

![transfer throughput](charts/transfer.svg)

| zipf | placement | system | tps | × baseline | × postgres | × sqlite | p50 ms | p99 ms | p99.9 ms | aborts/commit | server CPU | loadgen CPU | money conserved |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join("\n")}
`;
}

function echoSection(records: readonly RunRecord[]): string {
  const echoes = records.filter((r) => r.workload === "echo");
  if (echoes.length === 0) return "";
  const rows = echoes.map(
    (r) =>
      `| ${r.options.rate === null ? "closed loop (max)" : `open loop, ${r.options.rate}/s`} | ${nameOf(r)} | ${Math.round(r.tps)} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${ms(r.p999Ms)} | ${percent(r.serverCpu)} | ${percent(r.loadgenCpu)} | ${r.check.passed ? "yes" : "NO"} |`,
  );
  return `
## echo

A 32-byte session message, sent back by the server: the floor of the stack (framing, sessions,
per-client order, a task per message, effects on commit). First each system's maximum with the
closed loop above; then an open loop for both at a quarter, a half and three quarters of Shardless's
maximum, where latency counts from each request's scheduled send time (a stalled server cannot hide
its queue). The target compares p99 at the half.

![echo: p99 latency by offered load](charts/echo.svg)

| load | system | requests/s | p50 ms | p99 ms | p99.9 ms | server CPU | loadgen CPU | all answered |
|---|---|---|---|---|---|---|---|---|
${rows.join("\n")}
`;
}

function roomSection(records: readonly RunRecord[], settings: Settings): string {
  const rooms = records.filter((r) => r.workload === "room");
  if (rooms.length === 0) return "";
  const colyseus = rooms.find((r) => r.system === "colyseus");
  const rows = rooms.map((r) => {
    const held = r.steps?.filter((step) => step.held).at(-1);
    return `| ${nameOf(r)} | ${r.players ?? 0} | ${ratio(r.players ?? 0, colyseus?.players ?? undefined)} | ${Math.round(held?.movesPerSecond ?? 0)} | ${Math.round(held?.deliveriesPerSecond ?? 0)} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${ms(r.p999Ms)} | ${percent(r.serverCpu)} | ${percent(r.loadgenCpu)} | ${r.check.passed ? "yes" : `NO: ${r.check.detail}`} |`;
  });
  return `
## room

Players in rooms of ${ROOM_SIZE} each send a 20-byte position update ${UPDATE_HZ} times a second, on a fixed schedule (open
loop); the server stores the player's position and broadcasts the update to the ${ROOM_SIZE} players of the
room, the sender included. Every system is reached over WebSocket from a separate load-generator
process, which joins players in steps (from ${settings.roomStart}, ×1.25 a step, ${settings.roomStepSeconds} s measured per step after a settling
second; the first step plays ${settings.warmupSeconds} s more before it, to warm the server up, as the request workloads do) until a step's p99 update-to-delivery latency passes ${LATENCY_BOUND_MS} ms or fewer than 99% of its
deliveries arrive. **Players held** is the largest step that met both; latency and CPU are those of
that step, and the figure is the median of ${settings.repeats} runs.

- **baseline-memory**: a hand-written \`ws\` server, positions in plain objects, one \`send\` per member.
- **colyseus**: the same game as a Colyseus 0.18 room (state in its schema, patched at its default
  rate; each move also broadcast at once, so that delivery is not held to the patch interval).
- **shardless (sync)**: each player a managed object; each move a task that stores the position and
  sends on the room's channel; the broadcast leaves when the commit is durable (fsync).

![room: p99 latency by players](charts/room.svg)

| system | players held | × colyseus | moves/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | server CPU | loadgen CPU | all joined and stayed |
|---|---|---|---|---|---|---|---|---|---|---|
${rows.join("\n")}
`;
}

/** Each target of the benchmark issue, with the ratio measured in this run ("not measured" when a run it needs is missing). */
function targetsSection(records: readonly RunRecord[]): string {
  const find = (workload: string, system: string, durability: string | null, zipf: number, placement: string, rate: "closed" | "open" = "closed", workers = 0) =>
    records.find(
      (r) =>
        r.workload === workload &&
        r.system === system &&
        (durability === null || r.options.durability === durability) &&
        r.options.zipf === zipf &&
        r.options.placement === placement &&
        r.options.workers === workers &&
        (rate === "closed") === (r.options.rate === null),
    );
  const rows: string[] = [];
  let measured = 0;
  const target = (what: string, value: number | undefined, goal: number, better: "higher" | "lower", detail = "") => {
    const sign = better === "higher" ? "≥" : "≤";
    if (value === undefined || !Number.isFinite(value)) {
      rows.push(`| ${what} | ${sign} ${goal} | not measured | |`);
      return;
    }
    measured++;
    const met = better === "higher" ? value >= goal : value <= goal;
    rows.push(`| ${what} | ${sign} ${goal} | ${value.toFixed(2)}${detail} | ${met ? "met" : "**missed**"} |`);
  };
  /** A figure shown beside the targets, with no goal of its own. */
  const reported = (what: string, value: number | undefined) => {
    if (value !== undefined && Number.isFinite(value)) rows.push(`| ${what} | (reported) | ${value.toFixed(2)} | |`);
  };
  const over = (a: RunRecord | undefined, b: RunRecord | undefined, figure: (r: RunRecord) => number = (r) => r.tps) =>
    a === undefined || b === undefined || figure(b) === 0 ? undefined : figure(a) / figure(b);
  const sync = (zipf: number) => find("transfer", "shardless", "sync", zipf, "network");
  target("transfer uniform, sync: × postgres", over(sync(0), find("transfer", "postgres", null, 0, "network")), 10, "higher");
  target("transfer uniform, sync: × sqlite", over(sync(0), find("transfer", "sqlite", "sync", 0, "network")), 5, "higher");
  target("transfer uniform, memory: × baseline-memory", over(find("transfer", "shardless", "memory", 0, "network"), find("transfer", "baseline-memory", null, 0, "network")), 0.5, "higher");
  target("transfer zipf 1.5, sync: × postgres", over(sync(1.5), find("transfer", "postgres", null, 1.5, "network")), 30, "higher");
  target("transfer zipf 1.5, sync: × own uniform", over(sync(1.5), sync(0)), 0.5, "higher");
  // Worker threads: each ratio between two worker counts of one configuration in this run.
  const inProcess = (durability: string, zipf: number, workers: number) => find("transfer", "shardless", durability, zipf, "in-process", "closed", workers);
  const workerTarget = (durability: string, zipf: number, more: number, fewer: number, goal: number) => {
    const [a, b] = [inProcess(durability, zipf, more), inProcess(durability, zipf, fewer)];
    const name = (workers: number) => (workers === 0 ? "workers 0" : `${workers} worker${workers === 1 ? "" : "s"}`);
    // Under contention, more threads can buy throughput with aborts: both counts' are shown.
    const aborts = zipf === 0 || a === undefined || b === undefined ? "" : ` (aborts/commit: ${name(fewer)} ${b.abortsPerCommit.toFixed(3)}, ${name(more)} ${a.abortsPerCommit.toFixed(3)})`;
    target(`transfer in-process ${zipf === 0 ? "uniform" : `zipf ${zipf}`}, ${durability}: ${name(more)} ÷ ${name(fewer)}`, over(a, b), goal, "higher", aborts);
  };
  // In memory, where the engine's CPU is the limit rather than fsync.
  workerTarget("memory", 0, 2, 1, 1.6);
  // The networked figures beside it (no goal of their own): sockets, sessions and fsync included.
  const networked = (workers: number) => find("transfer", "shardless", "sync", 0, "network", "closed", workers);
  reported("transfer uniform, sync, over the network: 2 workers ÷ 1 worker", over(networked(2), networked(1)));
  reported("transfer uniform, sync, over the network: 2 workers ÷ workers 0", over(networked(2), networked(0)));
  workerTarget("memory", 1.5, 2, 1, 1);
  workerTarget("memory", 0, 1, 0, 0.9);
  workerTarget("memory", 1.5, 1, 0, 0.9);
  const players = (r: RunRecord) => r.players ?? 0;
  target("room: players held × colyseus", over(find("room", "shardless", null, 0, "network"), find("room", "colyseus", null, 0, "network"), players), 2, "higher");
  // The open-loop echo step nearest half of Shardless's closed-loop maximum.
  const echoMax = find("echo", "shardless", null, 0, "network");
  const echoAtRate = (system: string) => {
    const steps = records.filter((r) => r.workload === "echo" && r.system === system && r.options.rate !== null);
    const half = (echoMax?.tps ?? 0) / 2;
    return steps.reduce<RunRecord | undefined>((best, r) => (best === undefined || Math.abs(r.options.rate! - half) < Math.abs(best.options.rate! - half) ? r : best), undefined);
  };
  target("echo at half max: p99 × baseline's p99", over(echoAtRate("shardless"), echoAtRate("baseline-memory"), (r) => r.p99Ms), 2, "lower");
  if (measured === 0) return "";
  return `
## Targets

Measured over the network (the default placement) unless a target says in-process, as ratios
within this run; "workers" is the server's \`workers\` option (0: tasks on the main thread). Where
contention can make more threads abort more, aborts per commit are shown for both counts.

| target | goal | measured | |
|---|---|---|---|
${rows.join("\n")}
`;
}

function collectionsSection(figures: readonly ContentionFigures[]): string {
  if (figures.length === 0) return "";
  const rows = figures.map(
    (f) =>
      `| ${f.writers} | ${f.keys} | ${f.plain.conflicts} | ${f.plain.waves} | ${f.scalable.conflicts} | ${f.scalable.waves} | ${ratio(f.plain.conflicts, f.scalable.conflicts)} |`,
  );
  return `
## collections: contention

Distinct keys inserted by overlapping writers into a \`Map\` inside one managed object and into a
\`ScalableMap\` (default options): in each wave, that many transactions open on one snapshot and
commit one after the other; each that read what an earlier one wrote is refused and retried in a
later wave. Counts, not times: the same in every run. How the map is built:
[collections.md](collections.md).

| writers | keys | Map in one object: conflicts | waves | ScalableMap: conflicts | waves | × fewer conflicts |
|---|---|---|---|---|---|---|
${rows.join("\n")}
`;
}

/** docs/benchmarks.md for `records` (and the collections' contention counts, when measured). */
export function markdown(records: readonly RunRecord[], settings: Settings, collections: readonly ContentionFigures[] = []): string {
  return `# Benchmarks

Measured with \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.
The machine is shared and noisy: each figure is the median of ${settings.repeats} runs of ${settings.seconds} s (for an open loop, whose
throughput is the offered rate, the run with the median p99), and comparisons are ratios against the
baselines measured in the same run. Configurations that a target compares run interleaved (the
first run of each, then the second of each, ...), so that the machine's drift over minutes does not
favour whichever ran first. Raw records: \`bench/results.json\`.
Request workloads (transfer, echo) load the server for ${settings.warmupSeconds} s before each measured window; a request
belongs to the window it was scheduled in, and its latency counts from that time (replies to the
warm-up's requests are not measured, late replies to the window's are, for up to 10 s).
${targetsSection(records)}${transferSection(records, settings)}${echoSection(records)}${roomSection(records, settings)}${collectionsSection(collections)}
CPU is a fraction of one core; with 2 cores the load generator competes with the server for them.
Where the time goes, and what limits each placement: [performance.md](performance.md).
`;
}

/** Writes transfer.svg, echo.svg and room.svg into `directory`. */
export function writeCharts(records: readonly RunRecord[], directory: string): void {
  mkdirSync(directory, { recursive: true });
  const transfers = records.filter((r) => r.workload === "transfer");
  const systems = [...new Set(transfers.map(nameOf))];
  const conditions = [...new Set(transfers.map((r) => `zipf ${r.options.zipf}, ${r.options.placement}`))];
  const transferGroups = conditions.map((label) => ({
    label,
    values: systems.map((system) => transfers.find((r) => nameOf(r) === system && `zipf ${r.options.zipf}, ${r.options.placement}` === label)?.tps ?? null),
  }));
  writeFileSync(join(directory, "transfer.svg"), barChart("transfer: transactions per second", "transfers/s", systems, transferGroups));
  const echoes = records.filter((r) => r.workload === "echo" && r.options.rate !== null);
  const echoLines = [...new Set(echoes.map(nameOf))].map((name) => ({
    name,
    points: echoes.filter((r) => nameOf(r) === name).map((r) => ({ x: r.options.rate!, y: r.p99Ms })),
  }));
  writeFileSync(join(directory, "echo.svg"), lineChart("echo: p99 latency by offered load (open loop)", "requests/s offered", "p99 ms (log scale)", echoLines, null));
  const rooms = records.filter((r) => r.workload === "room");
  const lines = rooms.map((r) => ({ name: nameOf(r), points: (r.steps ?? []).map((step) => ({ x: step.players, y: step.p99Ms })) }));
  writeFileSync(join(directory, "room.svg"), lineChart("room: p99 update-to-delivery latency", "players", "p99 ms (log scale)", lines, LATENCY_BOUND_MS));
}
