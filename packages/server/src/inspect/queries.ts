import { Ref } from "../api/ref.js";
import { APP_BINDING_PREFIX, serviceKey } from "../kernel/data-manager.js";
import { decodeGeneric, peekTag, recordView, refIds, type GenericObject, type JsonView } from "./generic-value.js";
import type { StoreReader } from "./store-reader.js";

// Where the services bind their records (the task, session and channel services' private
// constants): part of the on-disk format, so they cannot change without a format version.
const TASK_PREFIX = serviceKey("task.");
const SESSION_PREFIX = serviceKey("session.");
const CHANNEL_PREFIX = serviceKey("channel.");

/** How much of a listing to show: at most `limit` items, starting after the cursor `after`. */
export interface PageOptions {
  readonly limit: number;
  readonly after?: string | undefined;
}

/** A listing: `next` is the cursor to pass as `after` for the rest, or null when nothing follows. */
export interface Page<T> {
  readonly items: T[];
  readonly next: string | null;
}

/** An object named from elsewhere: its id, and its class tag (null when no such object is stored). */
export interface ObjectSummary {
  readonly id: string;
  readonly tag: string | null;
  /** Why the object could not be read, when it is stored but undecodable. */
  readonly error?: string;
}

/** What `stats` shows. */
export interface StatsReport {
  readonly dataDir: string;
  readonly format: number;
  readonly lastCommitSeq: number;
  readonly appTimeMs: number;
  readonly nextObjectId: string;
  readonly objects: number;
  readonly bindings: { readonly total: number; readonly application: number; readonly service: number };
  readonly sizeBytes: { readonly file: number; readonly used: number };
  readonly pageSize: number;
  /** The pid of the server holding the directory lock, or null when none is running. */
  readonly serverPid: number | null;
}

/** Summary of a store: counts, sizes, metadata and whether a server is running on it. */
export function stats(reader: StoreReader): StatsReport {
  const total = reader.bindingCount();
  const application = reader.bindingCount(APP_BINDING_PREFIX);
  const env = reader.environment();
  return {
    dataDir: reader.directory,
    format: reader.meta.format,
    lastCommitSeq: reader.meta.lastCommitSeq,
    appTimeMs: reader.meta.appTimeMs,
    nextObjectId: reader.meta.nextObjectId.toString(),
    objects: reader.objectCount(),
    bindings: { total, application, service: total - application },
    sizeBytes: { file: env.fileBytes, used: env.usedBytes },
    pageSize: env.pageSize,
    serverPid: reader.lockHolder(),
  };
}

/** One binding: its name (without `a.` unless all bindings are listed), the object and its tag. */
export interface BindingItem extends ObjectSummary {
  readonly name: string;
  readonly version: number;
}

/**
 * Bindings whose name starts with `prefix`: the application's names (shown without their `a.`), or
 * with `all` every binding under its full key (`a.` for the application, `s.` for services).
 */
export function bindings(reader: StoreReader, prefix: string, all: boolean, page: PageOptions): Page<BindingItem> {
  const shown = all ? "" : APP_BINDING_PREFIX;
  const after = page.after === undefined ? undefined : shown + page.after;
  return paginate(reader.bindings(shown + prefix, after), page.limit, (binding) => ({
    name: binding.key.slice(shown.length),
    ...summarize(reader, binding.id),
    version: binding.version,
  }), (item) => item.name);
}

/** A referenced object; with `follow`, its version and fields too. */
export interface RefItem extends ObjectSummary {
  readonly version?: number;
  readonly fields?: JsonView;
}

/** What `object` shows. */
export interface ObjectReport {
  readonly id: string;
  readonly tag: string;
  readonly version: number;
  readonly fields: JsonView;
  /** Full keys of the bindings that name this object. */
  readonly boundAs: string[];
  /** The objects its Refs point to, in the order met. */
  readonly refs: RefItem[];
}

/**
 * Object `id` decoded generically, with the bindings naming it and the targets of its Refs (their
 * fields too with `follow`); undefined when no such object is stored.
 * @throws {Error} if the stored bytes cannot be decoded.
 */
export function object(reader: StoreReader, id: bigint, follow: boolean): ObjectReport | undefined {
  const entry = reader.object(id);
  if (entry === undefined) return undefined;
  const decoded = decodeGeneric(entry.bytes);
  const boundAs: string[] = [];
  // A full scan: bindings are indexed by name only.
  for (const binding of reader.bindings("")) if (binding.id === id) boundAs.push(binding.key);
  return {
    id: id.toString(),
    tag: decoded.tag,
    version: entry.version,
    fields: recordView(decoded.fields),
    boundAs,
    refs: refIds(decoded.fields).map((target) => (follow ? followRef(reader, target) : summarize(reader, target))),
  };
}

function followRef(reader: StoreReader, id: bigint): RefItem {
  const entry = reader.object(id);
  if (entry === undefined) return { id: id.toString(), tag: null };
  try {
    const decoded = decodeGeneric(entry.bytes);
    return { id: id.toString(), tag: decoded.tag, version: entry.version, fields: recordView(decoded.fields) };
  } catch (error) {
    return { id: id.toString(), tag: null, error: (error as Error).message };
  }
}

/** One object found by class tag. */
export interface FoundItem {
  readonly id: string;
  readonly version: number;
  readonly fields: JsonView;
}

/** Objects whose class tag is `tag`, scanning in id order after the id `page.after`. */
export function find(reader: StoreReader, tag: string, page: PageOptions): Page<FoundItem> & { readonly scanned: number } {
  const items: FoundItem[] = [];
  let scanned = 0;
  let last: bigint | undefined;
  for (const entry of reader.objects(page.after === undefined ? undefined : BigInt(page.after))) {
    if (items.length === page.limit) return { items, next: last!.toString(), scanned };
    scanned++;
    last = entry.id;
    let decoded: GenericObject;
    try {
      if (peekTag(entry.bytes) !== tag) continue;
      decoded = decodeGeneric(entry.bytes);
    } catch {
      continue; // an undecodable object has no tag to match
    }
    items.push({ id: entry.id.toString(), version: entry.version, fields: recordView(decoded.fields) });
  }
  return { items, next: null, scanned };
}

/** One pending task. */
export interface TaskItem {
  /** Id of the task's record, which is also its periodic handle's id. */
  readonly id: string;
  readonly kind: "one-shot" | "periodic";
  readonly dueAppMs: number | null;
  /** Application time from the store's last commit until the run is due; negative when overdue. */
  readonly dueInMs: number | null;
  readonly periodMs: number | null;
  readonly startAppMs: number | null;
  /** The task object that runs. */
  readonly task: ObjectSummary | null;
  /** True when the task object is removed with the task's last run. */
  readonly ownsTask: boolean | null;
}

/** Pending one-shot and periodic tasks, in the order of their records' bindings. */
export function tasks(reader: StoreReader, page: PageOptions): Page<TaskItem> & { readonly appTimeMs: number } {
  const listed = serviceRecords(reader, TASK_PREFIX, page, (id, record) => {
    const due = numberField(record, "dueAppMs");
    const period = numberField(record, "periodMs");
    return {
      id: id.toString(),
      kind: period !== null && period > 0 ? ("periodic" as const) : ("one-shot" as const),
      dueAppMs: due,
      dueInMs: due === null ? null : due - reader.meta.appTimeMs,
      periodMs: period,
      startAppMs: numberField(record, "startAppMs"),
      task: refSummary(reader, record?.fields.task),
      ownsTask: typeof record?.fields.ownsTask === "boolean" ? record.fields.ownsTask : null,
    };
  }, (item) => item.id);
  return { appTimeMs: reader.meta.appTimeMs, ...listed };
}

/** One stored client session. */
export interface SessionItem {
  readonly id: string;
  readonly name: string | null;
  /** The stored flag: sessions left by a stop stay stored until the next start ends them. */
  readonly connected: boolean | null;
  readonly listener: ObjectSummary | null;
  readonly channels: { readonly id: string; readonly name: string | null }[];
}

/** Stored client sessions, in the order of their records' bindings. */
export function sessions(reader: StoreReader, page: PageOptions): Page<SessionItem> {
  return serviceRecords(reader, SESSION_PREFIX, page, (id, record) => ({
    id: id.toString(),
    name: stringField(record, "name"),
    connected: typeof record?.fields.connected === "boolean" ? record.fields.connected : null,
    listener: refSummary(reader, record?.fields.listener),
    channels: idsOf(record?.fields.channels).map((channelId) => ({ id: channelId.toString(), name: stringField(decodeAt(reader, channelId), "name") })),
  }), (item) => item.id);
}

/** One channel. */
export interface ChannelItem {
  readonly id: string;
  readonly name: string;
  readonly delivery: string | null;
  readonly members: number;
  readonly listener: ObjectSummary | null;
}

/** Channels with their member counts, in name order. */
export function channels(reader: StoreReader, page: PageOptions): Page<ChannelItem> {
  return serviceRecords(reader, CHANNEL_PREFIX, page, (id, record, suffix) => ({
    id: id.toString(),
    name: suffix,
    delivery: stringField(record, "delivery"),
    members: idsOf(record?.fields.members).length,
    listener: refSummary(reader, record?.fields.listener),
  }), (item) => item.name);
}

/**
 * The records bound under `prefix`, each turned into an item by `make` with its object id, its
 * decoded record (undefined if missing or undecodable) and the binding name after the prefix, which
 * `cursor` must give back for the item.
 */
function serviceRecords<T>(
  reader: StoreReader,
  prefix: string,
  page: PageOptions,
  make: (id: bigint, record: GenericObject | undefined, suffix: string) => T,
  cursor: (item: T) => string,
): Page<T> {
  const after = page.after === undefined ? undefined : prefix + page.after;
  return paginate(reader.bindings(prefix, after), page.limit, (binding) => make(binding.id, decodeAt(reader, binding.id), binding.key.slice(prefix.length)), cursor);
}

/** Up to `limit` items made from `source`; `next` is the cursor of the last one when more follow. */
function paginate<S, T>(source: Iterator<S>, limit: number, make: (entry: S) => T, cursor: (item: T) => string): Page<T> {
  const items: T[] = [];
  try {
    for (let step = source.next(); !step.done; step = source.next()) {
      if (items.length === limit) return { items, next: cursor(items[items.length - 1]!) };
      items.push(make(step.value));
    }
    return { items, next: null };
  } finally {
    source.return?.(undefined); // ends the LMDB cursor of a listing stopped early
  }
}

function summarize(reader: StoreReader, id: bigint): ObjectSummary {
  const entry = reader.object(id);
  if (entry === undefined) return { id: id.toString(), tag: null };
  try {
    return { id: id.toString(), tag: peekTag(entry.bytes) };
  } catch (error) {
    return { id: id.toString(), tag: null, error: (error as Error).message };
  }
}

function refSummary(reader: StoreReader, value: unknown): ObjectSummary | null {
  return value instanceof Ref ? summarize(reader, value.id) : null;
}

function decodeAt(reader: StoreReader, id: bigint): GenericObject | undefined {
  const entry = reader.object(id);
  if (entry === undefined) return undefined;
  try {
    return decodeGeneric(entry.bytes);
  } catch {
    return undefined;
  }
}

function numberField(record: GenericObject | undefined, name: string): number | null {
  const value = record?.fields[name];
  return typeof value === "number" ? value : null;
}

function stringField(record: GenericObject | undefined, name: string): string | null {
  const value = record?.fields[name];
  return typeof value === "string" ? value : null;
}

/** The ids in a stored Set of ids (bigints, or small ids decoded as numbers). */
function idsOf(value: unknown): bigint[] {
  if (!(value instanceof Set)) return [];
  return [...(value as Set<unknown>)].flatMap((item) => (typeof item === "bigint" ? [item] : typeof item === "number" ? [BigInt(item)] : []));
}
