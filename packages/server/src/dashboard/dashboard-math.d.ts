// Types of dashboard-math.js, which browsers load as plain JavaScript.

/** A cumulative histogram as `/dashboard/data` serves it (see `HistogramSnapshot`). */
export interface Histogram {
  readonly bounds: readonly number[];
  readonly counts: readonly number[];
  readonly count: number;
  readonly sum: number;
}

/** Per-key growth between two records of totals; absent keys count from 0, a total that went down from 0. */
export function growth(older: Readonly<Record<string, number>> | undefined, newer: Readonly<Record<string, number>>): Record<string, number>;

/** The sum of a record's values. */
export function total(record: Readonly<Record<string, number>>): number;

/** Histograms with the same buckets added together; undefined for none. */
export function mergeHistograms(histograms: readonly Histogram[]): Histogram | undefined;

/**
 * The `q` quantile (0..1) of the observations between two snapshots, interpolated within buckets as
 * Prometheus's histogram_quantile does; null when nothing was observed. `older` undefined means the start.
 */
export function quantile(q: number, older: Histogram | undefined, newer: Histogram | undefined): number | null;

/** The event loop's busy share (0..1) between two snapshots, or null when no time passed. */
export function busyShare(older: { activeMs: number; idleMs: number } | undefined, newer: { activeMs: number; idleMs: number }): number | null;

/** The least of 1, 2 or 5 times a power of ten that is at least `value` (1 for nothing positive). */
export function niceCeiling(value: number): number;

/** A count or rate, shortened, whole numbers below 10,000 as they are (`–` for null or not finite). */
export function formatNumber(value: number | null | undefined): string;

/** Milliseconds as `0.42 ms`, `12 ms`, `1.5 s` (`–` for null). */
export function formatMs(ms: number | null | undefined): string;

/** Bytes in binary units (`–` for null). */
export function formatBytes(bytes: number | null | undefined): string;

/** A duration as `45 s`, `12 min`, `3 h 20 min`, `2 d 4 h`. */
export function formatDuration(ms: number): string;
