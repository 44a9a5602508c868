import { performance } from "node:perf_hooks";
import type { Registry } from "prom-client";
import { assert } from "../kernel/assert.js";
import type { ConflictReport } from "../metrics/conflict-profile.js";

/** Path of the dashboard's figures, as JSON (see {@link DashboardSnapshot}). */
export const DASHBOARD_DATA_PATH = "/dashboard/data";

/** A histogram at one moment, cumulative since the server started. */
export interface HistogramSnapshot {
  /** Upper bounds of the finite buckets, ascending, in the histogram's unit (the +Inf bucket is `count`). */
  readonly bounds: readonly number[];
  /** `counts[i]` observations were at most `bounds[i]` (cumulative, like Prometheus's `le`). */
  readonly counts: readonly number[];
  /** All observations, the +Inf bucket. */
  readonly count: number;
  /** Sum of all observations, in the histogram's unit. */
  readonly sum: number;
}

/** Task attempts that did not commit, for one task type, reason and outcome, since the server started. */
export interface AbortCount {
  readonly type: string;
  /** `conflict`, `timeout` or `error`. */
  readonly reason: string;
  /** `retried` or `gave-up`. */
  readonly outcome: string;
  readonly count: number;
}

/**
 * The server's figures at one moment, served at {@link DASHBOARD_DATA_PATH}. Counters are totals
 * since the server started and gauges are values now; rates are differences between two snapshots
 * divided by the difference of their `timeMs`, so the server keeps nothing per reader.
 */
export interface DashboardSnapshot {
  /** Bumped when a field changes meaning or goes away. */
  readonly version: 1;
  /** A monotonic clock in milliseconds (this process's `performance.now()`), to divide differences by. */
  readonly timeMs: number;
  /** What `/status` says. */
  readonly status: Readonly<Record<string, unknown>>;
  readonly tasks: {
    /** Tasks whose commit became durable, by task type. */
    readonly committed: Readonly<Record<string, number>>;
    /** Attempts started (a retry counts again), by task type. */
    readonly attempts: Readonly<Record<string, number>>;
    /** Tasks that failed for good, by task type. */
    readonly failed: Readonly<Record<string, number>>;
    readonly aborts: readonly AbortCount[];
    /** Tasks submitted and not yet settled, now. */
    readonly inFlight: number;
    /** Submission to durable commit in milliseconds, by task type. */
    readonly latencyMs: Readonly<Record<string, HistogramSnapshot>>;
  };
  readonly commits: {
    /** A group commit's flush to its durability, in milliseconds. */
    readonly latencyMs: HistogramSnapshot;
    /** Tasks per group commit. */
    readonly batchTasks: HistogramSnapshot;
  };
  readonly sessions: {
    /** Logged in now. */
    readonly active: number;
    /** Channels with at least one connected member, now. */
    readonly channelsInUse: number;
    readonly logins: number;
    readonly loginFailures: number;
    readonly disconnects: number;
    readonly protocolErrors: number;
    readonly droppedMessages: number;
    readonly pausedReads: number;
    /** Client messages over their session's rate limit (`maxMessagesPerSecond`). */
    readonly rateLimited: number;
  };
  /** Frames and their payload bytes, to and from clients. */
  readonly traffic: { readonly framesIn: number; readonly bytesIn: number; readonly framesOut: number; readonly bytesOut: number };
  readonly store: {
    /** Bytes the store occupies now (0 when the store cannot say, as in memory). */
    readonly bytes: number;
    /** Objects and bindings written. */
    readonly writes: number;
  };
  /**
   * The main thread's busy and idle time in milliseconds since the process started; the share busy
   * between two snapshots is `Δactive / (Δactive + Δidle)`. It covers the whole process.
   */
  readonly eventLoop: { readonly activeMs: number; readonly idleMs: number };
  /** What `/conflicts` says, shortened to the hottest few. */
  readonly conflicts: ConflictReport;
}

/** Metrics without labels read for a snapshot, by the field each goes to. */
const UNLABELLED = {
  inFlight: "shardless_tasks_in_flight",
  active: "shardless_sessions",
  channelsInUse: "shardless_channels_in_use",
  storeBytes: "shardless_store_bytes",
  storeWrites: "shardless_store_writes_total",
} as const;
const SESSION_TOTALS = {
  logins: "shardless_logins_total",
  loginFailures: "shardless_login_failures_total",
  disconnects: "shardless_disconnects_total",
  protocolErrors: "shardless_protocol_errors_total",
  droppedMessages: "shardless_dropped_messages_total",
  pausedReads: "shardless_paused_reads_total",
  rateLimited: "shardless_rate_limited_messages_total",
} as const;
const TRAFFIC_TOTALS = {
  framesIn: "shardless_frames_in_total",
  bytesIn: "shardless_bytes_in_total",
  framesOut: "shardless_frames_out_total",
  bytesOut: "shardless_bytes_out_total",
} as const;

/**
 * Builds {@link DashboardSnapshot}s from a server's metrics registry. It reads only the metrics it
 * shows, one by one, rather than the whole registry: the event-loop gauge measures the time since it
 * was last read, so reading it here would take that interval from the Prometheus scraper.
 */
export class DashboardData {
  constructor(
    private readonly registry: Registry,
    private readonly status: () => Readonly<Record<string, unknown>>,
    private readonly conflicts: () => ConflictReport,
  ) {}

  /** The figures now. Cheap: a few dozen label sets, no I/O beyond the store's size. */
  async snapshot(): Promise<DashboardSnapshot> {
    const [committed, attempts, failed, aborts, latency] = await Promise.all([
      this.values("shardless_tasks_committed_total"),
      this.values("shardless_task_attempts_total"),
      this.values("shardless_tasks_failed_total"),
      this.values("shardless_task_aborts_total"),
      this.values("shardless_task_latency_ms"),
    ]);
    const [commitLatency, batchTasks] = await Promise.all([this.values("shardless_commit_latency_ms"), this.values("shardless_commit_batch_tasks")]);
    const [figures, sessionTotals, traffic] = await Promise.all([this.singles(UNLABELLED), this.singles(SESSION_TOTALS), this.singles(TRAFFIC_TOTALS)]);
    const loop = performance.eventLoopUtilization();
    return {
      version: 1,
      timeMs: performance.now(),
      status: this.status(),
      tasks: {
        committed: byType(committed),
        attempts: byType(attempts),
        failed: byType(failed),
        aborts: aborts.map(({ labels, value }) => ({ type: String(labels.type), reason: String(labels.reason), outcome: String(labels.outcome), count: value })),
        inFlight: figures.inFlight,
        latencyMs: histogramsByType(latency),
      },
      commits: { latencyMs: histogram(commitLatency), batchTasks: histogram(batchTasks) },
      sessions: { active: figures.active, channelsInUse: figures.channelsInUse, ...sessionTotals },
      traffic,
      store: { bytes: figures.storeBytes, writes: figures.storeWrites },
      eventLoop: { activeMs: loop.active, idleMs: loop.idle },
      conflicts: this.conflicts(),
    };
  }

  private async values(name: string): Promise<MetricValueWithName[]> {
    const metric = this.registry.getSingleMetric(name);
    assert(metric !== undefined, `the metrics registry has ${name}`);
    return (await metric.get()).values;
  }

  /** The values of metrics without labels, by the field each is reported as. */
  private async singles<K extends string>(names: Readonly<Record<K, string>>): Promise<Record<K, number>> {
    const entries = await Promise.all(Object.entries<string>(names).map(async ([field, name]) => [field, await this.single(name)] as const));
    return Object.fromEntries(entries) as Record<K, number>;
  }

  /** The value of a metric without labels (0 before anything was counted). */
  private async single(name: string): Promise<number> {
    const values = await this.values(name);
    return values[0]?.value ?? 0;
  }
}

/** One series of a metric as prom-client reports it (`metricName` tells a histogram's `_bucket`, `_sum` and `_count` apart). */
interface MetricValueWithName {
  readonly value: number;
  readonly labels: Partial<Record<string, string | number>>;
  readonly metricName?: string;
}

function byType(values: readonly MetricValueWithName[]): Record<string, number> {
  const result: Record<string, number> = {};
  for (const { labels, value } of values) result[String(labels.type)] = value;
  return result;
}

/** Splits a labelled histogram's series (`_bucket`, `_sum`, `_count` for each type) by type. */
function histogramsByType(values: readonly MetricValueWithName[]): Record<string, HistogramSnapshot> {
  const groups = new Map<string, MetricValueWithName[]>();
  for (const value of values) {
    const type = String(value.labels.type);
    let group = groups.get(type);
    if (group === undefined) groups.set(type, (group = []));
    group.push(value);
  }
  return Object.fromEntries([...groups].map(([type, group]) => [type, histogram(group)]));
}

/** One histogram from prom-client's series: buckets in ascending order (as prom-client lists them). */
function histogram(values: readonly MetricValueWithName[]): HistogramSnapshot {
  const bounds: number[] = [];
  const counts: number[] = [];
  let count = 0;
  let sum = 0;
  for (const { labels, value, metricName } of values) {
    if (metricName?.endsWith("_sum") === true) sum = value;
    else if (metricName?.endsWith("_count") === true) count = value;
    else if (labels.le !== undefined && labels.le !== "+Inf") {
      bounds.push(Number(labels.le));
      counts.push(value);
    }
  }
  return { bounds, counts, count, sum };
}
