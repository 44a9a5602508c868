// The live dashboard: fetches /dashboard/data once a second, keeps the last two minutes of figures
// in the page (the server keeps nothing per reader) and draws them with a small canvas chart.
import { busyShare, formatBytes, formatDuration, formatMs, formatNumber, growth, mergeHistograms, niceCeiling, quantile, total } from "/dashboard/dashboard-math.js";

const DATA_URL = "/dashboard/data";
const PERIOD_MS = 1000;
const HISTORY_MS = 120_000;
/** The shortest time axis, while the history is younger than that. */
const MIN_SPAN_MS = 20_000;
/** Quantiles and aborts per commit span this many intervals: one second holds too few tasks. */
const WINDOW_SAMPLES = 10;

const TYPE_COLORS = {
  login: "#2563eb",
  "session-message": "#16a34a",
  "channel-message": "#9333ea",
  disconnect: "#f59e0b",
  "scheduled-task": "#0891b2",
  run: "#64748b",
};
const REASON_COLORS = { conflict: "#dc2626", timeout: "#f59e0b", error: "#7c3aed" };
const SPARE_COLORS = ["#db2777", "#65a30d", "#ea580c", "#0d9488", "#4f46e5"];

/** The last WINDOW_SAMPLES + 1 snapshots, oldest first. */
let snapshots = [];
/** One point per interval between snapshots, for the charts, oldest first. */
let points = [];

function colorOf(table, key) {
  if (table[key] !== undefined) return table[key];
  let hash = 0;
  for (const char of key) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return SPARE_COLORS[hash % SPARE_COLORS.length];
}

/** Abort totals by reason (all task types and outcomes together). */
function abortsByReason(snapshot) {
  const result = {};
  for (const { reason, count } of snapshot.tasks.aborts) result[reason] = (result[reason] ?? 0) + count;
  return result;
}

/** Abort totals by task type. */
function abortsByType(snapshot) {
  const result = {};
  for (const { type, count } of snapshot.tasks.aborts) result[type] = (result[type] ?? 0) + count;
  return result;
}

function perSecond(record, seconds) {
  const result = {};
  for (const [key, value] of Object.entries(record)) result[key] = value / seconds;
  return result;
}

function allLatency(snapshot) {
  return mergeHistograms(Object.values(snapshot.tasks.latencyMs));
}

/** A new server answers at the same address (a restart): its totals start again. */
function isRestart(previous, snapshot) {
  return snapshot.timeMs < previous.timeMs || Number(snapshot.status.uptimeMs) < Number(previous.status.uptimeMs);
}

function accept(snapshot) {
  const previous = snapshots.at(-1);
  if (previous !== undefined && isRestart(previous, snapshot)) {
    snapshots = [];
    points = [];
  }
  const last = snapshots.at(-1);
  snapshots.push(snapshot);
  if (snapshots.length > WINDOW_SAMPLES + 1) snapshots.shift();
  const windowStart = snapshots[0];
  if (last === undefined || snapshot.timeMs <= last.timeMs) return;

  const seconds = (snapshot.timeMs - last.timeMs) / 1000;
  const committedByType = perSecond(growth(last.tasks.committed, snapshot.tasks.committed), seconds);
  const abortReasons = perSecond(growth(abortsByReason(last), abortsByReason(snapshot)), seconds);
  const windowCommits = total(growth(windowStart.tasks.committed, snapshot.tasks.committed));
  const windowAborts = total(growth(abortsByReason(windowStart), abortsByReason(snapshot)));
  const traffic = perSecond(growth(last.traffic, snapshot.traffic), seconds);
  const started = windowStart === snapshot ? undefined : windowStart;
  points.push({
    t: snapshot.timeMs,
    committedByType,
    committed: total(committedByType),
    abortReasons,
    aborts: total(abortReasons),
    abortsPerCommit: windowCommits > 0 ? windowAborts / windowCommits : windowAborts > 0 ? null : 0,
    taskP50: quantile(0.5, started && allLatency(started), allLatency(snapshot)),
    taskP99: quantile(0.99, started && allLatency(started), allLatency(snapshot)),
    commitP50: quantile(0.5, started?.commits.latencyMs, snapshot.commits.latencyMs),
    commitP99: quantile(0.99, started?.commits.latencyMs, snapshot.commits.latencyMs),
    traffic,
    sessions: snapshot.sessions.active,
    channels: snapshot.sessions.channelsInUse,
    inFlight: snapshot.tasks.inFlight,
    busy: busyShare(last.eventLoop, snapshot.eventLoop),
  });
  while (points.length > 0 && points[0].t < snapshot.timeMs - HISTORY_MS) points.shift();
}

// ---- figures ----

function show(id, value, text) {
  const element = document.getElementById(id);
  element.textContent = text;
  element.dataset.value = value === null || value === undefined ? "" : String(value);
}

function renderTiles(snapshot, point) {
  show("commits-rate", point?.committed, formatNumber(point?.committed));
  show("task-p50", point?.taskP50, formatMs(point?.taskP50));
  show("task-p99", point?.taskP99, formatMs(point?.taskP99));
  show("commit-p50", point?.commitP50, formatMs(point?.commitP50));
  show("commit-p99", point?.commitP99, formatMs(point?.commitP99));
  show("aborts-rate", point?.aborts, formatNumber(point?.aborts));
  show("aborts-per-commit", point?.abortsPerCommit, point?.abortsPerCommit === undefined ? "–" : point.abortsPerCommit === null ? "all abort" : point.abortsPerCommit.toFixed(3));
  show("in-flight", snapshot.tasks.inFlight, formatNumber(snapshot.tasks.inFlight));
  show("sessions", snapshot.sessions.active, formatNumber(snapshot.sessions.active));
  show("channels", snapshot.sessions.channelsInUse, formatNumber(snapshot.sessions.channelsInUse));
  show("frames-in-rate", point?.traffic.framesIn, formatNumber(point?.traffic.framesIn));
  show("frames-out-rate", point?.traffic.framesOut, formatNumber(point?.traffic.framesOut));
  show("bytes-in-rate", point?.traffic.bytesIn, point === undefined ? "–" : `${formatBytes(point.traffic.bytesIn)}/s`);
  show("bytes-out-rate", point?.traffic.bytesOut, point === undefined ? "–" : `${formatBytes(point.traffic.bytesOut)}/s`);
  show("store-bytes", snapshot.store.bytes, snapshot.store.bytes > 0 ? formatBytes(snapshot.store.bytes) : "in memory");
  show("event-loop", point?.busy, point?.busy === null || point?.busy === undefined ? "–" : `${(point.busy * 100).toFixed(0)} %`);
  document.getElementById("uptime").textContent = `up ${formatDuration(Number(snapshot.status.uptimeMs ?? 0))}`;
  document.getElementById("committed-total").textContent = `${formatNumber(total(snapshot.tasks.committed))} tasks committed`;
}

// ---- tables, built with textContent: class tags and binding names come from the game ----

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (typeof cell === "object" && cell !== null) {
      if (cell.color !== undefined) {
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = cell.color;
        td.append(swatch);
      }
      td.append(cell.text);
      if (cell.className !== undefined) td.className = cell.className;
    } else {
      td.textContent = cell;
    }
    tr.append(td);
  }
  return tr;
}

function fill(tableId, rows, emptyText, columns) {
  const body = document.querySelector(`#${tableId} tbody`);
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = columns;
    td.className = "empty";
    td.textContent = emptyText;
    tr.append(td);
    rows = [tr];
  }
  body.replaceChildren(...rows);
  body.parentElement.dataset.rows = String(rows.length);
}

function renderTaskTypes(snapshot, last, windowStart) {
  const types = new Set([...Object.keys(snapshot.tasks.committed), ...Object.keys(snapshot.tasks.attempts), ...Object.keys(snapshot.tasks.failed)]);
  const seconds = last === undefined ? 0 : (snapshot.timeMs - last.timeMs) / 1000;
  const committed = last === undefined ? {} : perSecond(growth(last.tasks.committed, snapshot.tasks.committed), seconds);
  const aborts = last === undefined ? {} : perSecond(growth(abortsByType(last), abortsByType(snapshot)), seconds);
  const started = windowStart === snapshot ? undefined : windowStart;
  const rows = [...types].sort().map((type) => {
    const latency = snapshot.tasks.latencyMs[type];
    const before = started?.tasks.latencyMs[type];
    return row([
      { text: type, color: colorOf(TYPE_COLORS, type) },
      formatNumber(committed[type] ?? (last === undefined ? null : 0)),
      formatMs(quantile(0.5, before, latency)),
      formatMs(quantile(0.99, before, latency)),
      formatNumber(aborts[type] ?? (last === undefined ? null : 0)),
      formatNumber(snapshot.tasks.committed[type] ?? 0),
      formatNumber(snapshot.tasks.failed[type] ?? 0),
    ]);
  });
  fill("task-types", rows, "no tasks yet", 7);
}

function renderAborts(snapshot, point) {
  const totals = {};
  for (const { reason, outcome, count } of snapshot.tasks.aborts) {
    totals[reason] ??= { retried: 0, "gave-up": 0 };
    totals[reason][outcome] = (totals[reason][outcome] ?? 0) + count;
  }
  const rows = Object.keys(totals)
    .sort()
    .map((reason) => row([{ text: reason, color: colorOf(REASON_COLORS, reason) }, formatNumber(point?.abortReasons[reason] ?? null), formatNumber(totals[reason].retried), formatNumber(totals[reason]["gave-up"])]));
  fill("aborts", rows, "no aborts since the server started", 4);
}

function renderHot(report) {
  document.getElementById("hot-summary").textContent = `${formatNumber(report.totalAborts)} aborts by conflict in the last ${Math.round(report.windowMs / 1000)} s`;
  const rows = report.hot.map((spot) => {
    const types = Object.entries(spot.taskTypes)
      .sort((a, b) => b[1] - a[1])
      .map(([type, count]) => `${type} ${count}`)
      .join(", ");
    const binding = spot.kind === "range" ? `${spot.prefix}…` : (spot.binding ?? "");
    return row([spot.kind, spot.id ?? "", { text: spot.classTag ?? "", className: "text" }, { text: binding, className: "text" }, formatNumber(spot.aborts), { text: types, className: "text" }]);
  });
  fill("hot-objects", rows, "no conflicts in the last minute", 6);
}

// ---- charts ----

/**
 * Draws lines of [t, value] pairs over the last two minutes, with a 0 line, a top line at a round
 * value and a legend. A null value breaks its line.
 */
function drawChart(canvas, lines, format, fixedTop) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const left = 58;
  const right = 8;
  const top = 22;
  const bottom = 18;
  const now = points.at(-1)?.t ?? 0;
  // The time axis grows with the history up to two minutes, so that a page just opened has lines
  // to look at rather than a dot at the right edge.
  const span = Math.min(HISTORY_MS, Math.max(MIN_SPAN_MS, now - (points[0]?.t ?? now)));
  const x = (t) => left + ((t - (now - span)) / span) * (width - left - right);
  let highest = 0;
  for (const line of lines) for (const [, value] of line.values) if (value !== null && value > highest) highest = value;
  const ceiling = fixedTop ?? niceCeiling(highest);
  const y = (value) => height - bottom - (Math.min(value, ceiling) / ceiling) * (height - top - bottom);

  g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  g.strokeStyle = "#e5e7eb";
  g.fillStyle = "#6b7280";
  g.textBaseline = "middle";
  for (const fraction of [0, 0.5, 1]) {
    const level = y(ceiling * fraction);
    g.beginPath();
    g.moveTo(left, Math.round(level) + 0.5);
    g.lineTo(width - right, Math.round(level) + 0.5);
    g.stroke();
    g.textAlign = "right";
    g.fillText(format(ceiling * fraction), left - 6, level);
  }
  g.textBaseline = "alphabetic";
  g.textAlign = "left";
  g.fillText(`−${ago(span)}`, left, height - 4);
  g.textAlign = "center";
  g.fillText(`−${ago(span / 2)}`, left + (width - left - right) / 2, height - 4);
  g.textAlign = "right";
  g.fillText("now", width - right, height - 4);

  let drawn = 0;
  for (const line of lines) {
    g.strokeStyle = line.color;
    g.lineWidth = line.width ?? 1.5;
    g.beginPath();
    let open = false;
    for (const [t, value] of line.values) {
      if (value === null || value === undefined || t < now - span) {
        open = false;
        continue;
      }
      if (open) g.lineTo(x(t), y(value));
      else g.moveTo(x(t), y(value));
      open = true;
      drawn++;
    }
    g.stroke();
  }

  g.textAlign = "left";
  g.textBaseline = "middle";
  let legendX = left;
  for (const line of lines) {
    g.fillStyle = line.color;
    g.fillRect(legendX, 5, 9, 9);
    g.fillStyle = "#374151";
    g.fillText(line.label, legendX + 13, 10);
    legendX += 13 + g.measureText(line.label).width + 12;
  }
  canvas.dataset.points = String(drawn);
}

/** A time ago on a chart's axis: 45 s, 2 min. */
function ago(ms) {
  const seconds = Math.round(ms / 1000);
  return seconds >= 60 && seconds % 60 === 0 ? `${seconds / 60} min` : `${seconds} s`;
}

function series(pick) {
  return points.map((point) => [point.t, pick(point)]);
}

function renderCharts() {
  const types = new Set(points.flatMap((point) => Object.keys(point.committedByType)));
  drawChart(
    document.getElementById("chart-throughput"),
    [
      { label: "all", color: "#111827", width: 2, values: series((point) => point.committed) },
      ...[...types].sort().map((type) => ({ label: type, color: colorOf(TYPE_COLORS, type), values: series((point) => point.committedByType[type] ?? 0) })),
    ],
    formatNumber,
  );
  drawChart(
    document.getElementById("chart-latency"),
    [
      { label: "task p50", color: "#2563eb", values: series((point) => point.taskP50) },
      { label: "task p99", color: "#1e3a8a", width: 2, values: series((point) => point.taskP99) },
      { label: "commit p99", color: "#f59e0b", values: series((point) => point.commitP99) },
    ],
    formatMs,
  );
  const reasons = new Set(["conflict", ...points.flatMap((point) => Object.keys(point.abortReasons))]);
  drawChart(
    document.getElementById("chart-aborts"),
    [...reasons].sort().map((reason) => ({ label: reason, color: colorOf(REASON_COLORS, reason), values: series((point) => point.abortReasons[reason] ?? 0) })),
    formatNumber,
  );
  drawChart(
    document.getElementById("chart-sessions"),
    [
      { label: "sessions", color: "#2563eb", width: 2, values: series((point) => point.sessions) },
      { label: "channels", color: "#9333ea", values: series((point) => point.channels) },
      { label: "tasks in flight", color: "#64748b", values: series((point) => point.inFlight) },
    ],
    formatNumber,
  );
  drawChart(
    document.getElementById("chart-traffic"),
    [
      { label: "in", color: "#0891b2", values: series((point) => point.traffic.bytesIn) },
      { label: "out", color: "#16a34a", values: series((point) => point.traffic.bytesOut) },
    ],
    formatBytes,
  );
  drawChart(
    document.getElementById("chart-event-loop"),
    [{ label: "busy", color: "#dc2626", values: series((point) => (point.busy === null ? null : point.busy * 100)) }],
    (value) => `${Math.round(value)}`,
    100,
  );
}

function render() {
  const snapshot = snapshots.at(-1);
  if (snapshot === undefined) return;
  const point = points.at(-1);
  renderTiles(snapshot, point);
  renderTaskTypes(snapshot, snapshots.at(-2), snapshots[0]);
  renderAborts(snapshot, point);
  renderHot(snapshot.conflicts);
  renderCharts();
}

function setConnection(state, text) {
  const element = document.getElementById("connection");
  element.dataset.state = state;
  element.textContent = text;
}

let samples = 0;

async function tick() {
  const started = performance.now();
  try {
    const response = await fetch(DATA_URL, { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    accept(await response.json());
    render();
    samples++;
    document.body.dataset.samples = String(samples);
    setConnection("live", "live");
  } catch (error) {
    // The time of the first failure stays: it says how long the figures have been stale.
    if (document.getElementById("connection").dataset.state !== "down") {
      setConnection("down", `no data since ${new Date().toLocaleTimeString()}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  // One request at a time, at most one a second: a slow server is not asked again before it answers.
  setTimeout(tick, Math.max(0, PERIOD_MS - (performance.now() - started)));
}

window.addEventListener("resize", () => renderCharts());
void tick();
