import { formatView, type JsonView } from "./generic-value.js";
import type { BindingItem, ChannelItem, FoundItem, ObjectReport, ObjectSummary, Page, RefItem, SessionItem, StatsReport, TaskItem } from "./queries.js";

/** Widest a field summary in a one-line listing gets, in characters. */
const LINE_FIELDS_CHARS = 100;

/** The human form of `stats`. */
export function renderStats(report: StatsReport): string {
  const rows: [string, string][] = [
    ["format version", String(report.format)],
    ["server", report.serverPid === null ? "not running" : `running (pid ${report.serverPid})`],
    ["last commit", `#${report.lastCommitSeq}`],
    ["application time", `${Math.round(report.appTimeMs)} ms${report.appTimeMs < 999.5 ? "" : ` (${duration(report.appTimeMs)})`}`],
    ["objects", String(report.objects)],
    ["bindings", `${report.bindings.total} (${report.bindings.application} application, ${report.bindings.service} service)`],
    ["size on disk", `${bytes(report.sizeBytes.file)} file, ${bytes(report.sizeBytes.used)} in use`],
    ["next object id", report.nextObjectId],
  ];
  return `Shardless data store ${report.dataDir}\n${rows.map(([name, value]) => `  ${name.padEnd(17)} ${value}\n`).join("")}`;
}

/** The human form of `bindings`. */
export function renderBindings(page: Page<BindingItem>): string {
  return table(["NAME", "OBJECT", "VERSION"], page.items.map((item) => [item.name, summary(item), `v${item.version}`]), "bindings") + more(page.next);
}

/** The human form of `object`. */
export function renderObject(report: ObjectReport): string {
  let text = `object #${report.id}  ${report.tag}  (version ${report.version})\n`;
  text += `bound as: ${report.boundAs.length === 0 ? "(no binding)" : report.boundAs.join(", ")}\n`;
  text += `fields:\n${fieldLines(report.fields, "  ")}`;
  if (report.refs.length > 0) text += `refs:\n${report.refs.map(refLines).join("")}`;
  return text;
}

function refLines(ref: RefItem): string {
  const head = `  ${summary(ref)}${ref.version === undefined ? "" : `  (version ${ref.version})`}\n`;
  return ref.fields === undefined ? head : head + fieldLines(ref.fields, "    ");
}

/** The human form of `find`. */
export function renderFind(tag: string, page: Page<FoundItem> & { readonly scanned: number }): string {
  const lines = page.items.map((item) => `#${item.id}  v${item.version}  ${formatView(item.fields, LINE_FIELDS_CHARS)}\n`).join("");
  const found = `${page.items.length} object(s) of class ${JSON.stringify(tag)} among ${page.scanned} scanned\n`;
  return lines + found + more(page.next);
}

/** The human form of `tasks`. */
export function renderTasks(page: Page<TaskItem>): string {
  const rows = page.items.map((item) => [
    `#${item.id}`,
    item.kind,
    due(item),
    item.periodMs === null || item.periodMs === 0 ? "-" : duration(item.periodMs),
    item.task === null ? "?" : summary(item.task),
  ]);
  return table(["ID", "KIND", "DUE (APPLICATION TIME)", "PERIOD", "TASK"], rows, "pending tasks") + more(page.next);
}

function due(item: TaskItem): string {
  if (item.dueAppMs === null || item.dueInMs === null) return "?";
  const when = item.dueInMs >= 0 ? `in ${duration(item.dueInMs)}` : `overdue by ${duration(-item.dueInMs)}`;
  return `${when} (at ${Math.round(item.dueAppMs)} ms)`;
}

/** A span of milliseconds in the largest unit it reaches once rounded to a tenth (never "60.0 min"). */
function duration(ms: number): string {
  if (ms < 999.5) return `${Math.round(ms)} ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_597_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** The human form of `sessions`. */
export function renderSessions(page: Page<SessionItem>): string {
  const rows = page.items.map((item) => [
    `#${item.id}`,
    item.name ?? "?",
    item.connected === null ? "?" : item.connected ? "yes" : "no",
    item.listener === null ? "-" : summary(item.listener),
    item.channels.map((channel) => channel.name ?? `#${channel.id}`).join(", ") || "-",
  ]);
  return table(["ID", "NAME", "CONNECTED", "LISTENER", "CHANNELS"], rows, "sessions") + more(page.next);
}

/** The human form of `channels`. */
export function renderChannels(page: Page<ChannelItem>): string {
  const rows = page.items.map((item) => [`#${item.id}`, item.name, item.delivery ?? "?", String(item.members), item.listener === null ? "-" : summary(item.listener)]);
  return table(["ID", "NAME", "DELIVERY", "MEMBERS", "LISTENER"], rows, "channels") + more(page.next);
}

/** `#id tag`, or why the tag is unknown. */
function summary(item: ObjectSummary): string {
  if (item.tag !== null) return `#${item.id} ${item.tag}`;
  return `#${item.id} (${item.error === undefined ? "missing" : `undecodable: ${item.error}`})`;
}

/** One line per field of a record view, each value on one line. */
function fieldLines(fields: JsonView, indent: string): string {
  const record = (typeof fields === "object" && fields !== null && !Array.isArray(fields) && "$object" in fields ? fields.$object : fields) as Record<string, JsonView>;
  const entries = Object.entries(record);
  if (entries.length === 0) return `${indent}(none)\n`;
  return entries.map(([name, value]) => `${indent}${name}: ${formatView(value)}\n`).join("");
}

/** Left-aligned columns under a header; a short note when there are no rows. */
function table(headers: string[], rows: string[][], what: string): string {
  if (rows.length === 0) return `(no ${what})\n`;
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => `${cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  ")}\n`;
  return line(headers) + rows.map(line).join("");
}

function more(next: string | null): string {
  return next === null ? "" : `more follow: continue with --after ${JSON.stringify(next)}\n`;
}

function bytes(count: number): string {
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
  return `${(count / (1024 * 1024)).toFixed(1)} MiB`;
}
