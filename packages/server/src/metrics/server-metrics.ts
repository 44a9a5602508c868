import { performance, type EventLoopUtilization } from "node:perf_hooks";
import { Counter, Gauge, Registry } from "prom-client";
import type { ConflictSource } from "../api/errors.js";
import type { SessionCounters } from "../sessions/session-service.js";
import { ConflictProfile, type ConflictReport } from "./conflict-profile.js";
import { PlainHistogram, type HistogramSeries } from "./plain-histogram.js";
import type { AbortReason, BatchStats, KernelObserver } from "../kernel/observer.js";

/** What the metrics read from the server when scraped. */
export interface MetricsSources {
  /** Tasks submitted and not yet settled. */
  readonly tasksInFlight: () => number;
  readonly sessions: () => number;
  readonly channelsInUse: () => number;
  readonly sessionCounters: () => Readonly<SessionCounters>;
  /** Bytes the store occupies, or undefined when it cannot say. */
  readonly storeBytes: () => number | undefined;
  /** The class tag of a stored object, or undefined when there is no such object. */
  readonly classTagOf: (id: bigint) => string | undefined;
  /** Loads served by the decoded-object caches of every thread that runs tasks, and loads that decoded. */
  readonly objectCache: () => { readonly hits: number; readonly misses: number };
  /** Attempts run chained on the writes of the task before them (see `KernelCounters.chained`). */
  readonly chainedAttempts: () => number;
  /** Worker threads that died and were replaced. */
  readonly workerRestarts: () => number;
}

/**
 * The series of one task type that every task touches: plain counts on the hot path, turned into
 * Prometheus series at each scrape (prom-client hashes and validates labels at every call).
 */
interface TypeSeries {
  attempts: number;
  commits: number;
  readonly latency: HistogramSeries;
}

/** Latency buckets in milliseconds: 0.1 ms to 10 s. */
const LATENCY_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10_000];
/** Tasks per group commit. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/**
 * A server's metrics in Prometheus form: counted as the kernel reports (a {@link KernelObserver}),
 * and read from the server at each scrape. Each server has its own registry, so two servers in one
 * process keep separate figures.
 */
export class ServerMetrics implements KernelObserver {
  readonly registry = new Registry();
  private readonly aborts: Counter<"type" | "reason" | "outcome">;
  private readonly failures: Counter<"type">;
  private readonly taskLatency: PlainHistogram;
  private readonly batchTasks: PlainHistogram;
  private readonly batchDurableMs: PlainHistogram;
  private readonly batchWrites: Counter;
  private eventLoop: EventLoopUtilization = performance.eventLoopUtilization();
  private readonly conflictProfile = new ConflictProfile();
  private readonly typeSeries = new Map<string, TypeSeries>();

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    this.perTypeTotal("shardless_task_attempts_total", "Task attempts started, by task type.", "attempts");
    this.aborts = new Counter({
      name: "shardless_task_aborts_total",
      help: "Task attempts that did not commit, by task type, reason (conflict, timeout, error, chain) and outcome (retried, gave-up).",
      labelNames: ["type", "reason", "outcome"],
      registers,
    });
    this.perTypeTotal("shardless_tasks_committed_total", "Tasks whose commit became durable, by task type.", "commits");
    this.failures = new Counter({ name: "shardless_tasks_failed_total", help: "Tasks that failed for good, by task type.", labelNames: ["type"], registers });
    this.taskLatency = new PlainHistogram(
      "shardless_task_latency_ms",
      "From a task's submission to its durable commit, in milliseconds, retries included.",
      "type",
      LATENCY_BUCKETS_MS,
      this.registry,
    );
    this.batchTasks = new PlainHistogram("shardless_commit_batch_tasks", "Tasks per group commit.", undefined, BATCH_BUCKETS, this.registry);
    this.batchDurableMs = new PlainHistogram(
      "shardless_commit_latency_ms",
      "From a group commit's flush to its durability (store write and fsync), in milliseconds.",
      undefined,
      LATENCY_BUCKETS_MS,
      this.registry,
    );
    this.batchWrites = new Counter({ name: "shardless_store_writes_total", help: "Objects and bindings written to the store.", registers });
    this.gauge("shardless_tasks_in_flight", "Tasks submitted and not yet settled: queued, waiting to retry, or waiting for their commit to be durable.", sources.tasksInFlight);
    this.gauge("shardless_sessions", "Logged-in sessions.", sources.sessions);
    this.gauge("shardless_channels_in_use", "Channels with at least one connected member.", sources.channelsInUse);
    this.gauge("shardless_store_bytes", "Bytes the data store occupies.", () => sources.storeBytes() ?? 0);
    this.gauge("shardless_event_loop_utilization", "Share of the last scrape interval the main thread spent running (0..1).", () => this.eventLoopSinceLastScrape());
    this.sessionCounters(sources.sessionCounters);
    this.total("shardless_object_cache_hits_total", "Object loads served by a thread's decoded-object cache (objectCacheEntries).", () => sources.objectCache().hits);
    this.total("shardless_object_cache_misses_total", "Object loads that decoded the stored bytes.", () => sources.objectCache().misses);
    this.total("shardless_task_chained_attempts_total", "Attempts run on a worker right after the task before them in their session, on its writes.", sources.chainedAttempts);
    this.total("shardless_worker_restarts_total", "Worker threads that died and were replaced by fresh ones.", sources.workerRestarts);
  }

  /** The metrics in Prometheus text format, and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  attemptStarted(type: string): void {
    this.perType(type).attempts++;
  }

  attemptAborted(type: string, reason: AbortReason, retried: boolean, on?: ConflictSource): void {
    this.aborts.inc({ type, reason, outcome: retried ? "retried" : "gave-up" });
    if (on !== undefined) this.conflictProfile.record(on, type);
  }

  /** The objects, bindings and ranges that caused the most aborts in the last minute. */
  conflicts(limit = 20): ConflictReport {
    return this.conflictProfile.report(limit, this.sources.classTagOf);
  }

  taskCommitted(type: string, latencyMs: number): void {
    const series = this.perType(type);
    series.commits++;
    series.latency.observe(latencyMs);
  }

  /**
   * The labelled series of a task type, looked up once: these are called for every task, and
   * prom-client would otherwise hash the label object at each call.
   */
  private perType(type: string): TypeSeries {
    let series = this.typeSeries.get(type);
    if (series === undefined) {
      series = { attempts: 0, commits: 0, latency: this.taskLatency.labelled(type) };
      this.typeSeries.set(type, series);
    }
    return series;
  }

  taskFailed(type: string): void {
    this.failures.inc({ type });
  }

  batchDurable(stats: BatchStats): void {
    this.batchTasks.observe(stats.tasks);
    this.batchDurableMs.observe(stats.durableMs);
    this.batchWrites.inc(stats.writes);
  }

  private gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** The session service's running totals as Prometheus counters (advanced by their growth at each scrape). */
  private sessionCounters(read: () => Readonly<SessionCounters>): void {
    const described: [keyof SessionCounters, string, string][] = [
      ["logins", "shardless_logins_total", "Logins that succeeded."],
      ["loginFailures", "shardless_login_failures_total", "Logins refused (authentication, duplicate, application)."],
      ["protocolErrors", "shardless_protocol_errors_total", "Connections closed for breaking the protocol."],
      ["droppedMessages", "shardless_dropped_messages_total", "Client messages dropped (before login, to a channel not joined)."],
      ["disconnects", "shardless_disconnects_total", "Sessions ended."],
      ["pausedReads", "shardless_paused_reads_total", "Times a session's reading paused on a full inbox."],
      ["refusedConnections", "shardless_refused_connections_total", "Connections closed at once: their address had maxConnectionsPerAddress open."],
      ["reconnects", "shardless_reconnects_total", "Sessions resumed by a client that reconnected."],
      ["reconnectFailures", "shardless_reconnect_failures_total", "Reconnect requests refused (unknown or expired key)."],
      ["rateLimited", "shardless_rate_limited_messages_total", "Client messages over their session's rate limit."],
      ["framesIn", "shardless_frames_in_total", "Frames received from clients."],
      ["bytesIn", "shardless_bytes_in_total", "Frame payload bytes received from clients."],
      ["framesOut", "shardless_frames_out_total", "Frames sent to clients."],
      ["bytesOut", "shardless_bytes_out_total", "Frame payload bytes sent to clients."],
    ];
    for (const [field, name, help] of described) this.total(name, help, () => read()[field]);
  }

  /** A count kept per task type in {@link TypeSeries}, as a Prometheus counter labelled by type. */
  private perTypeTotal(name: string, help: string, field: "attempts" | "commits"): void {
    const typeSeries = this.typeSeries;
    const reported = new Map<string, number>();
    new Counter({
      name,
      help,
      labelNames: ["type"],
      registers: [this.registry],
      collect() {
        for (const [type, series] of typeSeries) {
          const before = reported.get(type) ?? 0;
          if (series[field] > before) this.inc({ type }, series[field] - before);
          reported.set(type, series[field]);
        }
      },
    });
  }

  /** A running total kept elsewhere, as a Prometheus counter (advanced by its growth at each scrape). */
  private total(name: string, help: string, read: () => number): void {
    let reported = 0;
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        const now = read();
        this.inc(now - reported);
        reported = now;
      },
    });
  }

  private eventLoopSinceLastScrape(): number {
    const now = performance.eventLoopUtilization();
    const since = performance.eventLoopUtilization(now, this.eventLoop);
    this.eventLoop = now;
    return since.utilization;
  }
}
