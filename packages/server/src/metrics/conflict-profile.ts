import type { ConflictSource } from "../api/errors.js";

/** One thing tasks fought over, in a {@link ConflictReport}. */
export interface HotSpot {
  readonly kind: ConflictSource["kind"];
  /** The object's id (as a decimal string, JSON has no bigint), for an object. */
  readonly id?: string;
  /** The object's class tag, when it still exists. */
  readonly classTag?: string;
  /** The binding: the conflict's own, or the name a task reached the object by. */
  readonly binding?: string;
  /** The prefix of a scanned range. */
  readonly prefix?: string;
  /** Aborts it caused in the window. */
  readonly aborts: number;
  /** Those aborts by task type. */
  readonly taskTypes: Readonly<Record<string, number>>;
}

/** The objects, bindings and ranges that caused the most aborts over the last `windowMs`. */
export interface ConflictReport {
  readonly windowMs: number;
  /** Aborts by conflict in the window, all sources together. */
  readonly totalAborts: number;
  readonly hot: readonly HotSpot[];
}

interface Tally {
  readonly source: ConflictSource;
  aborts: number;
  readonly taskTypes: Map<string, number>;
}

/** Binding keys carry a namespace (`a.` for the application's names); reports show game names. */
function displayName(key: string): string {
  return key.startsWith("a.") ? key.slice(2) : key;
}

function keyOf(source: ConflictSource): string {
  if (source.kind === "object") return `o${source.id}`;
  return source.kind === "binding" ? `b${source.name}` : `r${source.prefix}`;
}

/**
 * Counts conflicts by what they were on, over a sliding window made of a few buckets (the oldest is
 * dropped as time moves on), so that a report costs the size of the window's distinct sources, not
 * of its aborts.
 */
export class ConflictProfile {
  private readonly buckets: { start: number; tallies: Map<string, Tally> }[] = [];
  private readonly bucketMs: number;

  constructor(
    private readonly windowMs = 60_000,
    bucketCount = 6,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.bucketMs = windowMs / bucketCount;
  }

  /** Counts one abort of a task of `type` by a conflict on `source`. */
  record(source: ConflictSource, type: string): void {
    const tallies = this.currentBucket().tallies;
    const key = keyOf(source);
    let tally = tallies.get(key);
    if (tally === undefined) {
      tally = { source, aborts: 0, taskTypes: new Map() };
      tallies.set(key, tally);
    }
    tally.aborts++;
    tally.taskTypes.set(type, (tally.taskTypes.get(type) ?? 0) + 1);
  }

  /**
   * The `limit` sources with the most aborts in the window, most first. `classTagOf` names an
   * object's class (undefined once it is gone).
   */
  report(limit: number, classTagOf: (id: bigint) => string | undefined): ConflictReport {
    this.dropExpired();
    const merged = new Map<string, Tally>();
    for (const bucket of this.buckets) {
      for (const [key, tally] of bucket.tallies) {
        const into = merged.get(key) ?? { source: tally.source, aborts: 0, taskTypes: new Map<string, number>() };
        into.aborts += tally.aborts;
        for (const [type, count] of tally.taskTypes) into.taskTypes.set(type, (into.taskTypes.get(type) ?? 0) + count);
        merged.set(key, into);
      }
    }
    const ranked = [...merged.values()].sort((a, b) => b.aborts - a.aborts);
    return {
      windowMs: this.windowMs,
      totalAborts: ranked.reduce((sum, tally) => sum + tally.aborts, 0),
      hot: ranked.slice(0, limit).map((tally) => describe(tally, classTagOf)),
    };
  }

  private currentBucket(): { start: number; tallies: Map<string, Tally> } {
    const now = this.now();
    const last = this.buckets.at(-1);
    if (last !== undefined && now - last.start < this.bucketMs) return last;
    this.dropExpired();
    const bucket = { start: now, tallies: new Map<string, Tally>() };
    this.buckets.push(bucket);
    return bucket;
  }

  private dropExpired(): void {
    const oldest = this.now() - this.windowMs;
    while (this.buckets.length > 0 && this.buckets[0]!.start + this.bucketMs <= oldest) this.buckets.shift();
  }
}

function describe(tally: Tally, classTagOf: (id: bigint) => string | undefined): HotSpot {
  const { source } = tally;
  const taskTypes = Object.fromEntries(tally.taskTypes);
  if (source.kind === "binding") return { kind: "binding", binding: displayName(source.name), aborts: tally.aborts, taskTypes };
  if (source.kind === "range") return { kind: "range", prefix: displayName(source.prefix), aborts: tally.aborts, taskTypes };
  return {
    kind: "object",
    id: source.id.toString(),
    ...(source.binding === undefined ? {} : { binding: displayName(source.binding) }),
    ...optionalTag(classTagOf(source.id)),
    aborts: tally.aborts,
    taskTypes,
  };
}

function optionalTag(tag: string | undefined): { classTag?: string } {
  return tag === undefined ? {} : { classTag: tag };
}
