// Deterministic simulation of the kernel: the real Kernel, Committer, Transaction and TaskService
// on a simulated event loop, clock and disk, under seeded workloads, faults and checkers. One seed
// gives one execution, so any failure is replayed from the seed it prints.
//
// What the seed decides, within what Node allows (sim-loop.ts):
// - how much time each loop iteration takes (timers fire late, never early), and when the kernel's
//   10 ms turn budget runs out, so that the task pump yields with tasks still queued;
// - the order of the I/O callbacks of one poll phase: store completions, client arrivals, steps of
//   overlapping transactions. Immediates keep Node's first-in first-out order.
// Faults: store commits that take up to 8 iterations or complete at once; one store commit that
// fails (the kernel must stop); task bodies that throw retryable or fatal errors before, between
// and after their effects; overlapping transactions (opened on one snapshot, executed and
// committed in seeded order while queued tasks commit in between) that conflict or time out.
// Workloads and checkers (workloads.ts, ledger.ts): bank transfers and audits (money conserved in
// the store after every batch, each commit's reads equal to the state commit order gives),
// per-session ordered messages (delivered in submission order), binding-range scans (no phantom),
// one-shot and periodic scheduled tasks (due, on the grid, never twice, never after cancellation);
// every effect of a committed task exactly once in commit order, none from an aborted attempt, a
// task that failed, or a batch the store failed; the store equal, at the end, to the durable commits.
import { silentLogger } from "../../src/kernel/logger.ts";
import { Kernel } from "../../src/kernel/kernel.ts";
import { SeededRandom } from "../../src/kernel/random.ts";
import { installTaskServices } from "../../src/tasks/task-service.ts";
import { Ledger, Violations, type EffectSink } from "./ledger.ts";
import { Dice, SimClock, SimLoop } from "./sim-loop.ts";
import { SimDataStore, type StoreDefect } from "./sim-store.ts";
import { SimObserver, World, type WorldProfile } from "./workloads.ts";

/**
 * A deliberate defect in how effects reach the checker, for tests that show the checkers catch one:
 * `reorder` swaps each pair of released effects, `duplicate` releases every effect twice, `late`
 * holds every effect for a few iterations of the loop (past its task's settling, and past a store
 * failure soon after).
 */
export type EffectDefect = "reorder" | "duplicate" | "late";

/** Options of one simulation run. */
export interface SimOptions {
  readonly seed: number;
  /** Loop iterations with client arrivals; then the run drains. Default 300. */
  readonly steps?: number;
  /** Store commit (1-based) that fails; `null` for none; by default the seed decides. */
  readonly failAtCommit?: number | null;
  readonly storeDefect?: StoreDefect;
  readonly effectDefect?: EffectDefect;
}

/** The knobs the seed chose for a run. */
export interface SimProfile extends WorldProfile {
  readonly maxLatencySteps: number;
  readonly instantChance: number;
  readonly failAtCommit: number | undefined;
  readonly longTurnChance: number;
  readonly retryBackoffMaxMs: number;
  readonly maxTaskAttempts: number;
  readonly appTimeCheckpointMs: number;
}

/** What a run did and found. */
export interface SimReport {
  readonly seed: number;
  readonly violations: readonly string[];
  /** A hash of the run's observable events: equal for two runs of one seed. */
  readonly digest: string;
  readonly profile: SimProfile;
  /** True if the store failed (and the run ended with the kernel stopped). */
  readonly storeFailed: boolean;
  readonly iterations: number;
  readonly endAppMs: number;
  readonly counts: Readonly<Record<string, number>>;
  /** The last events before the end, for reading a failure. */
  readonly tail: readonly string[];
}

/** How to run one seed again. */
export function replayHint(seed: number): string {
  return `replay: SIM_SEED=${seed} node --import tsx --test packages/server/test/simulation.test.ts`;
}

/** The run's knobs, drawn from its seed. */
export function profileFor(seed: number, options: Pick<SimOptions, "failAtCommit"> = {}): SimProfile {
  const dice = new Dice(mixSeed(seed, 1));
  const drawnFailure = dice.chance(0.25) ? dice.int(2, 80) : undefined;
  return {
    accounts: dice.int(2, 8),
    sessions: dice.int(1, 5),
    faults: { retryable: dice.pick([0, 0.03, 0.1]), fatal: dice.pick([0, 0.01, 0.03]) },
    transferChance: dice.pick([0.2, 0.5, 0.9]),
    overlapChance: dice.pick([0, 0.05, 0.15]),
    messageChance: dice.pick([0.05, 0.2]),
    scheduleChance: dice.pick([0.01, 0.04]),
    handTimeoutMs: dice.pick([5, 30, 200]),
    maxLatencySteps: dice.pick([0, 1, 3, 8]),
    instantChance: dice.pick([0, 0, 0.5, 1]),
    failAtCommit: options.failAtCommit === undefined ? drawnFailure : (options.failAtCommit ?? undefined),
    longTurnChance: dice.pick([0, 0.05, 0.3]),
    retryBackoffMaxMs: dice.pick([0.001, 3, 20]),
    maxTaskAttempts: dice.pick([3, 6, 10]),
    appTimeCheckpointMs: dice.pick([15, 100, 1000]),
  };
}

/** Longest a run may take to settle after its arrivals stop, in iterations, before it counts as stuck. */
const DRAIN_ITERATION_LIMIT = 20_000;
/** Application time a healthy run goes on for after arrivals stop, so that scheduled tasks fall due. */
const DRAIN_MS = 4000;

/**
 * Runs one simulation. Never throws for a defect it finds: the report lists the violations.
 */
export async function runSimulation(options: SimOptions): Promise<SimReport> {
  const { seed } = options;
  const steps = options.steps ?? 300;
  const profile = profileFor(seed, options);
  const dice = new Dice(seed);
  const violations = new Violations();
  const trace = new Trace();
  const clock = new SimClock();
  let iteration = 0;
  violations.where = () => `[iteration ${iteration}, t=${round(clock.now())}]`;
  const loop = new SimLoop(dice, clock, {
    longTurnChance: profile.longTurnChance,
    onUncaught: (error, where) => violations.add(`${where} threw: ${error instanceof Error ? error.stack : String(error)}`),
  });
  // Set once the kernel exists: the store and the ledger call into the world only after that.
  const bound: { world?: World } = {};
  const store = new SimDataStore(dice, {
    maxLatencySteps: profile.maxLatencySteps,
    instantChance: profile.instantChance,
    failAtCommit: profile.failAtCommit,
    defect: options.storeDefect,
    violation: (message) => violations.add(message),
    onApplied: (applied) => {
      trace.add(`applied ${applied.applied} seq ${applied.readMeta()?.lastCommitSeq}`);
      bound.world?.checkStoredMoney(applied);
    },
  });
  const ledger = new Ledger(violations, (label, appMs) => bound.world!.onRun(label, appMs), (task, effect) => {
    trace.add(`effect ${task}.${effect}`);
    bound.world!.onEffect(task, effect);
  });
  let storeFailed = false;
  const observer = new SimObserver();
  const kernel = new Kernel({
    store,
    clock,
    random: new SeededRandom(mixSeed(seed, 2)),
    logger: silentLogger,
    txnTimeoutMs: 100,
    maxTaskAttempts: profile.maxTaskAttempts,
    retryBackoffMaxMs: profile.retryBackoffMaxMs,
    appTimeCheckpointMs: profile.appTimeCheckpointMs,
    observer,
    scheduler: loop,
    onFatal: () => {
      if (storeFailed) violations.add("onFatal called twice");
      storeFailed = true;
      trace.add("store failed");
      ledger.markStoreFailed();
    },
  });
  const { tasks } = installTaskServices(kernel, silentLogger, () => {
    throw new Error("no channels in the simulation");
  });
  const late: { phasesLeft: number; release: () => void }[] = [];
  const lateDue = (): (() => void)[] => {
    const due = late.filter((held) => held.phasesLeft-- <= 0);
    for (const held of due) late.splice(late.indexOf(held), 1);
    return due.map((held) => held.release);
  };
  const sink = effectSink(ledger, options.effectDefect, late);
  const world = new World(kernel, dice, ledger, sink, observer, violations, profile);
  bound.world = world;
  world.setup();

  const poll = (): (() => void)[] => {
    const events = [...store.poll(), ...world.poll(), ...lateDue()];
    return dice.shuffle(events);
  };
  // Nothing can happen before the next timer: no immediate, no store completion, no hand-run step.
  const waiting = (): boolean => loop.pendingImmediates === 0 && !store.busy && !world.overlapping && late.length === 0;

  // Arrivals: time moves in small seeded steps, sometimes a long one (a slow turn, a GC pause).
  for (; iteration < steps && !storeFailed; iteration++) {
    trace.add(`iteration ${iteration} t=${round(clock.now())}`);
    await loop.iterate(advance(dice), poll);
  }
  world.stopArrivals();

  // Drain: let everything accepted finish; when nothing is ready, jump to the next timer.
  const drainUntil = clock.now() + DRAIN_MS;
  let drained = false;
  for (let n = 0; n < DRAIN_ITERATION_LIMIT; n++, iteration++) {
    const quiet = waiting();
    if (quiet && kernel.tasksInFlight === 0 && !world.busy && (storeFailed || clock.now() >= drainUntil)) {
      drained = true;
      break;
    }
    const next = clock.nextDueAt();
    const step = quiet && next !== undefined ? Math.max(0, next - clock.now()) + dice.int(0, 2) : advance(dice);
    trace.add(`iteration ${iteration} t=${round(clock.now())}`);
    await loop.iterate(step, poll);
  }
  if (!drained) violations.add(`did not settle within ${DRAIN_ITERATION_LIMIT} iterations after arrivals stopped (tasks in flight ${kernel.tasksInFlight}, store busy ${store.busy}, workloads busy ${world.busy})`);
  const endAppMs = kernel.appTimeMs();

  // Shutdown (healthy runs): close must finish with the loop still turning, and save application time.
  if (!storeFailed && drained) {
    tasks.stop();
    const closedAtAppMs = kernel.appTimeMs();
    let closed = false;
    kernel.close().then(
      () => (closed = true),
      (error: unknown) => violations.add(`close failed: ${String(error)}`),
    );
    for (let n = 0; n < 1000 && !closed; n++, iteration++) await loop.iterate(dice.int(0, 5), poll);
    if (!closed) violations.add("kernel.close() did not finish");
    else {
      const saved = store.readMeta()?.appTimeMs ?? -1;
      if (saved < closedAtAppMs || saved > kernel.appTimeMs()) violations.add(`after close the store holds application time ${saved}, not one in [${closedAtAppMs}, ${kernel.appTimeMs()}]`);
    }
  }

  ledger.finish(!storeFailed);
  world.finish(store, !storeFailed && drained, endAppMs);
  if ((profile.failAtCommit === undefined || store.commits < profile.failAtCommit) && storeFailed) violations.add("the kernel stopped though the store never failed");
  if (profile.failAtCommit !== undefined && store.commits >= profile.failAtCommit && !storeFailed) violations.add(`store commit ${profile.failAtCommit} failed, but the kernel did not stop`);
  const counts = { ...world.stats, ...ledger.counts, attempts: observer.attempts, conflicts: observer.conflicts, batches: observer.batches, largestBatch: observer.largestBatch, storeCommits: store.commits, effects: ledger.released };
  return { seed, violations: violations.list, digest: trace.digest(), profile, storeFailed, iterations: iteration, endAppMs, counts, tail: trace.tail() };
}

/** Time one iteration of the loop takes: mostly none or a little, sometimes a long turn. */
function advance(dice: Dice): number {
  const r = dice.next();
  if (r < 0.4) return 0;
  if (r < 0.85) return dice.next() * 2;
  if (r < 0.98) return 2 + dice.next() * 18;
  return 20 + dice.next() * 130;
}

function effectSink(ledger: Ledger, defect: EffectDefect | undefined, late: { phasesLeft: number; release: () => void }[]): EffectSink {
  if (defect === undefined) return ledger;
  if (defect === "late") {
    const hold = (release: () => void): void => void late.push({ phasesLeft: 20, release });
    return {
      deliver: (task, attempt, effect) => hold(() => ledger.deliver(task, attempt, effect)),
      runReleased: (label, appMs) => hold(() => ledger.runReleased(label, appMs)),
    };
  }
  if (defect === "duplicate") {
    return {
      deliver: (task, attempt, effect) => {
        ledger.deliver(task, attempt, effect);
        ledger.deliver(task, attempt, effect);
      },
      runReleased: (label, appMs) => {
        ledger.runReleased(label, appMs);
        ledger.runReleased(label, appMs);
      },
    };
  }
  // Holds every other effect back and releases it after the next one: pairs come out swapped.
  let held: (() => void) | undefined;
  const pass = (release: () => void): void => {
    if (held === undefined) {
      held = release;
      return;
    }
    const first = held;
    held = undefined;
    release();
    first();
  };
  return {
    deliver: (task, attempt, effect) => pass(() => ledger.deliver(task, attempt, effect)),
    runReleased: (label, appMs) => pass(() => ledger.runReleased(label, appMs)),
  };
}

/**
 * An independent seed for stream `stream` of a run: nearby seeds in one generator give correlated
 * first draws, so each stream starts from a hash of the run's seed (murmur3's finaliser).
 */
function mixSeed(seed: number, stream: number): number {
  let h = (seed ^ Math.imul(stream, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function round(ms: number): string {
  return ms.toFixed(3);
}

/** The run's events: a running FNV-1a hash of all of them, and the last few in full. */
class Trace {
  private hash = 0x811c9dc5;
  private readonly recent: string[] = [];

  add(event: string): void {
    for (let i = 0; i < event.length; i++) this.hash = Math.imul(this.hash ^ event.charCodeAt(i), 0x01000193) >>> 0;
    this.recent.push(event);
    if (this.recent.length > 40) this.recent.shift();
  }

  digest(): string {
    return this.hash.toString(16).padStart(8, "0");
  }

  tail(): string[] {
    return [...this.recent];
  }
}

/** A failed run, described for a person: what was found, the knobs, the last events, how to replay. */
export function describeFailure(report: SimReport): string {
  return [
    `simulation seed ${report.seed} found ${report.violations.length} violation(s):`,
    ...report.violations.slice(0, 20).map((violation) => `  - ${violation}`),
    ...(report.violations.length > 20 ? [`  (and ${report.violations.length - 20} more)`] : []),
    `profile: ${JSON.stringify(report.profile)}`,
    `last events: ${report.tail.join(" | ")}`,
    replayHint(report.seed),
  ].join("\n");
}
