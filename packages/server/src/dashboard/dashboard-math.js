// The dashboard's arithmetic on snapshots of /dashboard/data: rates, histogram quantiles and the
// formats figures are shown in. Plain JavaScript because browsers load it as it is; the types are
// in dashboard-math.d.ts, and Node tests import it too.

/**
 * Per-key growth between two records of totals; a key absent before counts from 0. A total that
 * went down (a restarted server) counts as grown from 0.
 * @param {Readonly<Record<string, number>> | undefined} older
 * @param {Readonly<Record<string, number>>} newer
 * @returns {Record<string, number>}
 */
export function growth(older, newer) {
  /** @type {Record<string, number>} */
  const result = {};
  for (const [key, value] of Object.entries(newer)) {
    const before = older?.[key] ?? 0;
    result[key] = value >= before ? value - before : value;
  }
  return result;
}

/**
 * The sum of a record's values.
 * @param {Readonly<Record<string, number>>} record
 */
export function total(record) {
  let sum = 0;
  for (const value of Object.values(record)) sum += value;
  return sum;
}

/**
 * Several histograms with the same buckets as one (all task types together). Undefined when
 * there are none.
 * @param {readonly import("./dashboard-math.js").Histogram[]} histograms
 * @returns {import("./dashboard-math.js").Histogram | undefined}
 */
export function mergeHistograms(histograms) {
  const first = histograms[0];
  if (first === undefined) return undefined;
  const counts = first.counts.map((_, i) => histograms.reduce((sum, each) => sum + (each.counts[i] ?? 0), 0));
  return {
    bounds: first.bounds,
    counts,
    count: histograms.reduce((sum, each) => sum + each.count, 0),
    sum: histograms.reduce((sum, each) => sum + each.sum, 0),
  };
}

/**
 * The `q` quantile (0..1) of what was observed between two snapshots of a histogram, estimated
 * as Prometheus's histogram_quantile does: linear within the bucket the rank falls in, the
 * highest finite bound when it falls in the +Inf bucket. Null when nothing was observed between
 * them. `older` undefined means the histogram's start.
 * @param {number} q
 * @param {import("./dashboard-math.js").Histogram | undefined} older
 * @param {import("./dashboard-math.js").Histogram | undefined} newer
 * @returns {number | null}
 */
export function quantile(q, older, newer) {
  if (newer === undefined) return null;
  const restarted = older !== undefined && older.count > newer.count;
  const base = older === undefined || restarted ? undefined : older;
  const observed = newer.count - (base?.count ?? 0);
  if (observed <= 0) return null;
  const rank = q * observed;
  let below = 0;
  for (let i = 0; i < newer.bounds.length; i++) {
    const upTo = (newer.counts[i] ?? 0) - (base?.counts[i] ?? 0);
    if (upTo >= rank && upTo > below) {
      const lower = i === 0 ? 0 : (newer.bounds[i - 1] ?? 0);
      const upper = newer.bounds[i] ?? lower;
      return lower + ((upper - lower) * (rank - below)) / (upTo - below);
    }
    below = upTo;
  }
  return newer.bounds.at(-1) ?? null;
}

/**
 * The share of time the event loop was busy between two snapshots (0..1), or null when no time
 * passed between them.
 * @param {{ activeMs: number, idleMs: number } | undefined} older
 * @param {{ activeMs: number, idleMs: number }} newer
 * @returns {number | null}
 */
export function busyShare(older, newer) {
  if (older === undefined) return null;
  const active = newer.activeMs - older.activeMs;
  const idle = newer.idleMs - older.idleMs;
  return active + idle > 0 ? active / (active + idle) : null;
}

/**
 * A round number at least `value` (1, 2 or 5 times a power of ten), for a chart's top line.
 * @param {number} value
 */
export function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/**
 * A count or a rate, shortened: 3, 0.42, 7.5, 1,234, 12.3 k, 4.5 M (whole numbers stay whole).
 * @param {number | null | undefined} value
 */
export function formatNumber(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const size = Math.abs(value);
  if (size < 10_000 && Number.isInteger(value)) return value.toLocaleString("en-US");
  if (size < 1) return value.toFixed(2);
  if (size < 10) return value.toFixed(1);
  if (size < 10_000) return Math.round(value).toLocaleString("en-US");
  if (size < 10_000_000) return `${(value / 1000).toFixed(1)} k`;
  return `${(value / 1_000_000).toFixed(1)} M`;
}

/**
 * Milliseconds as 0.42 ms, 12 ms, 1.5 s.
 * @param {number | null | undefined} ms
 */
export function formatMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms === 0) return "0 ms";
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)} s`;
  if (ms >= 10) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(ms >= 1 ? 1 : 2)} ms`;
}

/**
 * Bytes in binary units: 512 B, 1.5 KiB, 20 MiB.
 * @param {number | null | undefined} bytes
 */
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/**
 * A duration as 45 s, 12 min, 3 h 20 min, 2 d 4 h.
 * @param {number} ms
 */
export function formatDuration(ms) {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}
