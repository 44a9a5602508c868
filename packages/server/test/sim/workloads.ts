// The simulation's workloads and their model. Each workload task reports what it read; at its
// commit the model, advanced in commit order, must agree (serializability, no lost update); at its
// durability the same change is applied to a second model, which the store must equal at the end.
import { TransactionConflictError, TransactionTimeoutError } from "../../src/api/errors.ts";
import { managed } from "../../src/api/managed.ts";
import type { PeriodicTaskHandle } from "../../src/api/ref.ts";
import type { Task, TaskContext } from "../../src/api/types.ts";
import { objectCodec } from "../../src/kernel/codec.ts";
import { appKey } from "../../src/kernel/data-manager.ts";
import type { DataStore } from "../../src/kernel/data-store.ts";
import type { Kernel } from "../../src/kernel/kernel.ts";
import type { AbortReason, BatchStats, KernelObserver } from "../../src/kernel/observer.ts";
import { currentTransaction, type Transaction } from "../../src/kernel/transaction.ts";
import type { EffectSink, Ledger, Violations } from "./ledger.ts";
import type { Dice } from "./sim-loop.ts";

const SIMULATED_CONFLICT = "simulated retryable failure";

/** Starting balance of every account. */
export const OPENING_BALANCE = 100;
/** Name under which the world is installed as a kernel service, for scheduled tasks to reach it. */
const WORLD_SERVICE = "sim.world";

@managed("sim.Account")
export class Account {
  constructor(public balance = 0) {}
}

@managed("sim.SessionState")
export class SessionState {
  /** Index of the last message of this session that committed; -1 before the first. */
  lastIndex = -1;
}

@managed("sim.Room")
export class Room {
  messages = 0;
}

@managed("sim.Note")
export class Note {
  constructor(public index = 0) {}
}

@managed("sim.RunLog")
export class RunLog {
  /** Application time of each committed run. */
  times: number[] = [];
}

@managed("sim.HandleHolder")
export class HandleHolder {
  constructor(public handle: PeriodicTaskHandle | null = null) {}
}

/** A scheduled task of the simulation: its body lives in the {@link World} of the kernel running it. */
@managed("sim.Tick")
export class Tick implements Task {
  constructor(public label = "") {}

  run(ctx: TaskContext): void {
    const tx = currentTransaction("Tick.run");
    tx.service<World>(WORLD_SERVICE).tickBody(ctx, tx, this.label);
  }
}

interface ScheduleModel {
  readonly startMs: number;
  /** 0 for a one-shot task. */
  readonly periodMs: number;
  cancelled: boolean;
}

/** The state the workloads' committed tasks have produced, advanced in commit order. */
class Model {
  ready = false;
  balances: number[] = [];
  sessionLast: number[] = [];
  room = 0;
  readonly notes = new Set<string>();
  readonly schedules = new Map<string, ScheduleModel>();
}

/** Remembers whether the attempt that just ended failed for good: `onOrdered` is told right after. */
export class SimObserver implements KernelObserver {
  lastFailedForGood = false;
  attempts = 0;
  conflicts = 0;
  batches = 0;
  largestBatch = 0;

  attemptStarted(): void {
    this.lastFailedForGood = false;
    this.attempts++;
  }

  attemptAborted(_type: string, reason: AbortReason): void {
    if (reason === "conflict") this.conflicts++;
  }

  taskCommitted(): void {}

  taskFailed(): void {
    this.lastFailedForGood = true;
  }

  batchDurable(stats: BatchStats): void {
    this.batches++;
    this.largestBatch = Math.max(this.largestBatch, stats.tasks);
  }
}

/** Chances of the faults a task body throws at its fault points. */
export interface BodyFaults {
  /** A retryable error (as a conflict would be). */
  readonly retryable: number;
  /** A non-retryable error: the task fails for good. */
  readonly fatal: number;
}

/** How much of each workload a run submits. */
export interface WorldProfile {
  readonly accounts: number;
  readonly sessions: number;
  readonly faults: BodyFaults;
  /** Chance per iteration (repeated, up to 3) that a transfer arrives. */
  readonly transferChance: number;
  /** Chance per iteration that a group of overlapping hand-run transactions opens. */
  readonly overlapChance: number;
  /** Chance per iteration and session that a message arrives. */
  readonly messageChance: number;
  /** Chance per iteration that a task is scheduled. */
  readonly scheduleChance: number;
  /** Time budget of a hand-run transaction (ms). */
  readonly handTimeoutMs: number;
}

interface Job<O> {
  readonly label: string;
  readonly effects: number;
  /** False for the setup, which must not fail. */
  readonly faults: boolean;
  readonly body: (ctx: TaskContext, tx: Transaction) => O;
  /** Problem with what the committed attempt read, given the model at its place in commit order. */
  readonly check: (model: Model, obs: O) => string | undefined;
  readonly apply: (model: Model, obs: O) => void;
}

interface HandTx {
  readonly id: number;
  readonly tx: Transaction;
  readonly run: (ctx: TaskContext, tx: Transaction) => unknown;
  readonly job: Job<unknown>;
  readonly last: () => unknown;
  state: "open" | "executed" | "done";
}

/** Workloads, their model and their checkers, on one kernel. */
export class World {
  private readonly live = new Model();
  private readonly durable = new Model();
  private readonly sessions: { inbox: number[]; next: number; busy: boolean }[] = [];
  private readonly sessionOfTask = new Map<number, { session: number; index: number }>();
  private readonly lastReleasedIndex: number[] = [];
  private readonly groups: HandTx[][] = [];
  private readonly runs = new Map<string, number[]>();
  /** Scheduled tasks one of whose runs threw a non-retryable error (a one-shot may then never run). */
  private readonly fatalRuns = new Set<string>();
  private nextLabel = 0;
  private arriving = true;
  private setupOrdered = false;
  /** Counts for the report. */
  readonly stats = { transfers: 0, hand: 0, messages: 0, audits: 0, censuses: 0, schedules: 0, cancels: 0, runs: 0, faults: 0, handConflicts: 0, handTimeouts: 0 };

  constructor(
    private readonly kernel: Kernel,
    private readonly dice: Dice,
    private readonly ledger: Ledger,
    private readonly sink: EffectSink,
    private readonly observer: SimObserver,
    private readonly violations: Violations,
    private readonly profile: WorldProfile,
  ) {
    kernel.installService(WORLD_SERVICE, this);
    for (let s = 0; s < profile.sessions; s++) {
      this.sessions.push({ inbox: [], next: 0, busy: false });
      this.lastReleasedIndex.push(-1);
    }
  }

  /** Money in the world. */
  get total(): number {
    return this.profile.accounts * OPENING_BALANCE;
  }

  /** Submits the task that creates the accounts, sessions and room. */
  setup(): void {
    const { accounts, sessions } = this.profile;
    this.submit(
      {
        label: "setup",
        effects: 1,
        faults: false,
        body: (ctx) => {
          for (let i = 0; i < accounts; i++) ctx.data.setBinding(`acct.${i}`, new Account(OPENING_BALANCE));
          for (let s = 0; s < sessions; s++) ctx.data.setBinding(`session.${s}`, new SessionState());
          ctx.data.setBinding("room", new Room());
          return null;
        },
        check: (model) => (model.ready ? "setup committed twice" : undefined),
        apply: (model) => {
          model.ready = true;
          model.balances = Array.from({ length: accounts }, () => OPENING_BALANCE);
          model.sessionLast = Array.from({ length: sessions }, () => -1);
        },
      },
      { maxAttempts: 1000, onOrdered: () => (this.setupOrdered = true) },
    );
  }

  /** Stops new client arrivals; work already accepted goes on. */
  stopArrivals(): void {
    this.arriving = false;
  }

  /** True while the workloads have work of their own in progress (hand-run transactions, session inboxes). */
  get busy(): boolean {
    return this.groups.length > 0 || this.sessions.some((session) => session.busy || session.inbox.length > 0);
  }

  /** True while hand-run transactions are open: they move only in poll phases. */
  get overlapping(): boolean {
    return this.groups.length > 0;
  }

  /** The I/O callbacks of this poll phase: client arrivals and steps of hand-run transactions. */
  poll(): (() => void)[] {
    const events: (() => void)[] = [];
    for (const group of this.groups) {
      if (this.dice.chance(0.6)) events.push(() => this.stepGroup(group));
    }
    if (!this.arriving || !this.setupOrdered) return events;
    for (let n = 0; n < 3 && this.dice.chance(this.profile.transferChance); n++) events.push(() => this.submit(this.transferJob()));
    if (this.dice.chance(this.profile.overlapChance)) events.push(() => this.openGroup());
    for (let s = 0; s < this.profile.sessions; s++) {
      if (this.dice.chance(this.profile.messageChance)) events.push(() => this.arrive(s));
    }
    if (this.dice.chance(0.03)) events.push(() => this.submit(this.auditJob()));
    if (this.dice.chance(0.03)) events.push(() => this.submit(this.censusJob()));
    if (this.dice.chance(this.profile.scheduleChance)) events.push(() => this.submit(this.scheduleJob()));
    if (this.dice.chance(0.01)) {
      const label = this.cancellable();
      if (label !== undefined) events.push(() => this.submit(this.cancelJob(label)));
    }
    return events;
  }

  // ---- running jobs ------------------------------------------------------------------------------

  private wrap<O>(job: Job<O>, id: number): { run: (ctx: TaskContext, tx: Transaction) => O; last: () => O | undefined } {
    let last: O | undefined;
    const run = (ctx: TaskContext, tx: Transaction): O => {
      const attempt = this.ledger.attempt(id);
      last = undefined;
      if (job.faults) this.faultPoint();
      const obs = job.body(ctx, tx);
      for (let effect = 0; effect < job.effects; effect++) {
        tx.addEffect(() => this.sink.deliver(id, attempt, effect));
        // A fault between effects: an aborted attempt must release none of those already added.
        if (job.faults && effect === 0) this.faultPoint();
      }
      last = obs;
      return obs;
    };
    return { run, last: () => last };
  }

  private submit<O>(job: Job<O>, options: { maxAttempts?: number; onOrdered?: () => void } = {}): number {
    const id = this.ledger.track(job.label, job.effects);
    const { run, last } = this.wrap(job, id);
    const onOrdered = (): void => {
      if (this.observer.lastFailedForGood) this.ledger.gaveUp(id);
      else this.committed(id, job, last());
      options.onOrdered?.();
    };
    const runOptions = options.maxAttempts === undefined ? { onOrdered } : { onOrdered, maxAttempts: options.maxAttempts };
    this.kernel.run(job.label, run, runOptions).then(
      () => this.resolved(id, job, last()),
      () => this.ledger.settled(id, false),
    );
    return id;
  }

  private committed<O>(id: number, job: Job<O>, obs: O | undefined): void {
    this.ledger.committed(id);
    if (obs === undefined) {
      this.violations.add(`${job.label}: committed, but its last attempt did not finish its body`);
      return;
    }
    const problem = job.check(this.live, obs);
    if (problem !== undefined) this.violations.add(`${job.label} (commit #${this.ledger.orderOf(id)}): ${problem}`);
    job.apply(this.live, obs);
  }

  private resolved<O>(id: number, job: Job<O>, obs: O | undefined): void {
    this.ledger.settled(id, true);
    if (obs !== undefined) job.apply(this.durable, obs);
  }

  private faultPoint(): void {
    if (this.dice.chance(this.profile.faults.retryable)) {
      this.stats.faults++;
      throw new TransactionConflictError(SIMULATED_CONFLICT);
    }
    if (this.dice.chance(this.profile.faults.fatal)) {
      this.stats.faults++;
      throw new Error("simulated failure");
    }
  }

  // ---- overlapping transactions, run by hand ------------------------------------------------------

  /**
   * Opens 2–4 transactions on the current snapshot. Each later poll phase may execute one of them
   * or commit one already executed, in seeded order, while queued tasks commit in between: the
   * overlap that worker threads will produce, made on one thread as in collections-contention.
   */
  private openGroup(): void {
    const group: HandTx[] = [];
    const size = this.dice.int(2, 4);
    for (let n = 0; n < size; n++) {
      const job = (this.dice.chance(0.15) ? this.auditJob() : this.transferJob()) as Job<unknown>;
      const id = this.ledger.track(`hand ${job.label}`, job.effects);
      const { run, last } = this.wrap(job, id);
      group.push({ id, tx: this.kernel.openTransaction(`hand ${job.label}`, this.profile.handTimeoutMs), run, job, last, state: "open" });
      this.stats.hand++;
    }
    this.groups.push(group);
  }

  private stepGroup(group: HandTx[]): void {
    const ready = group.filter((hand) => hand.state !== "done");
    if (ready.length > 0) {
      const hand = this.dice.pick(ready);
      if (hand.state === "open") this.executeHand(hand);
      else this.commitHand(hand);
    }
    if (group.every((hand) => hand.state === "done")) this.groups.splice(this.groups.indexOf(group), 1);
  }

  private executeHand(hand: HandTx): void {
    try {
      this.kernel.execute(hand.tx, hand.job.label, hand.run);
      hand.state = "executed";
    } catch (error) {
      hand.tx.abort();
      this.handFailed(hand, error);
    }
  }

  private commitHand(hand: HandTx): void {
    hand.state = "done";
    let durable: Promise<void>;
    try {
      durable = hand.tx.commit();
    } catch (error) {
      this.handFailed(hand, error);
      return;
    }
    this.committed(hand.id, hand.job, hand.last());
    durable.then(
      () => this.resolved(hand.id, hand.job, hand.last()),
      () => this.ledger.settled(hand.id, false),
    );
  }

  private handFailed(hand: HandTx, error: unknown): void {
    if (error instanceof TransactionConflictError && error.message !== SIMULATED_CONFLICT) this.stats.handConflicts++;
    if (error instanceof TransactionTimeoutError) this.stats.handTimeouts++;
    hand.state = "done";
    this.ledger.gaveUp(hand.id);
    this.ledger.settled(hand.id, false);
  }

  // ---- bank --------------------------------------------------------------------------------------

  private transferJob(): Job<{ from: number; to: number; moved: boolean }> {
    const n = this.profile.accounts;
    const from = this.dice.int(0, n - 1);
    const to = (from + this.dice.int(1, n - 1)) % n;
    const amount = this.dice.int(1, 60);
    const mark = this.dice.chance(0.3);
    this.stats.transfers++;
    return {
      label: `transfer ${amount} ${from}->${to} #${this.nextLabel++}`,
      effects: this.dice.int(1, 2),
      faults: true,
      body: (ctx) => {
        const a = ctx.data.getBinding<Account>(`acct.${from}`);
        const b = ctx.data.getBinding<Account>(`acct.${to}`);
        const obs = { from: a.balance, to: b.balance, moved: a.balance >= amount };
        if (obs.moved) {
          a.balance -= amount;
          b.balance += amount;
          if (mark) ctx.data.markForUpdate(a);
        }
        return obs;
      },
      check: (model, obs) => {
        const [hasFrom, hasTo] = [model.balances[from], model.balances[to]];
        if (hasFrom !== obs.from || hasTo !== obs.to) return `read balances ${obs.from}/${obs.to}; commit order gives ${hasFrom}/${hasTo} (a lost update or a stale read)`;
        return undefined;
      },
      apply: (model, obs) => {
        if (!obs.moved) return;
        model.balances[from]! -= amount;
        model.balances[to]! += amount;
      },
    };
  }

  private auditJob(): Job<number[]> {
    const n = this.profile.accounts;
    this.stats.audits++;
    return {
      label: `audit #${this.nextLabel++}`,
      effects: 1,
      faults: true,
      body: (ctx) => {
        const balances = Array.from({ length: n }, (_, i) => ctx.data.getBinding<Account>(`acct.${i}`).balance);
        // Every read is checked at once, so even an attempt that aborts later saw a consistent state.
        const sum = balances.reduce((x, y) => x + y, 0);
        if (sum !== this.total) this.violations.add(`an audit read ${sum} in total, not ${this.total}: ${balances.join(",")}`);
        return balances;
      },
      check: (model, obs) => (obs.join(",") === model.balances.join(",") ? undefined : `audit read ${obs.join(",")}; commit order gives ${model.balances.join(",")}`),
      apply: () => undefined,
    };
  }

  /** Conservation in the store itself, after every durable batch. */
  checkStoredMoney(store: DataStore): void {
    const balances = this.storedBalances(store);
    if (balances === undefined) return;
    const sum = balances.reduce((x, y) => x + y, 0);
    if (sum !== this.total) this.violations.add(`store holds ${sum} in total, not ${this.total}, after batch ${store.readMeta()?.lastCommitSeq}: ${balances.join(",")}`);
  }

  private storedBalances(store: DataStore): number[] | undefined {
    const balances: number[] = [];
    for (let i = 0; i < this.profile.accounts; i++) {
      const account = readStored(store, `acct.${i}`, this.violations) as Account | undefined;
      if (account === undefined) {
        if (i > 0) this.violations.add(`store holds ${i} of ${this.profile.accounts} accounts: setup applied in part`);
        return undefined;
      }
      balances.push(account.balance);
    }
    return balances;
  }

  // ---- sessions ----------------------------------------------------------------------------------

  private arrive(session: number): void {
    const state = this.sessions[session]!;
    state.inbox.push(state.next++);
    if (!state.busy) this.nextMessage(session);
  }

  /** Submits the session's next message once the previous one is ordered, as the session service does. */
  private nextMessage(session: number): void {
    const state = this.sessions[session]!;
    const index = state.inbox.shift();
    if (index === undefined) {
      state.busy = false;
      return;
    }
    state.busy = true;
    const id = this.submit(this.messageJob(session, index), { onOrdered: () => this.nextMessage(session) });
    this.sessionOfTask.set(id, { session, index });
  }

  private messageJob(session: number, index: number): Job<{ last: number; room: number | undefined; removed: string | undefined; added: string | undefined }> {
    const room = this.dice.chance(0.3);
    const note = this.dice.next();
    this.stats.messages++;
    const prefix = `note.${session}.`;
    return {
      label: `message ${session}:${index}`,
      effects: this.dice.int(1, 3),
      faults: true,
      body: (ctx) => {
        const state = ctx.data.getBinding<SessionState>(`session.${session}`);
        const obs = { last: state.lastIndex, room: undefined as number | undefined, removed: undefined as string | undefined, added: undefined as string | undefined };
        state.lastIndex = index;
        if (room) obs.room = ctx.data.getBinding<Room>("room").messages++;
        if (note < 0.3) {
          obs.added = `${prefix}${index}`;
          ctx.data.setBinding(obs.added, new Note(index));
        } else if (note < 0.45) {
          const first = ctx.data.nextBoundName(prefix);
          if (first?.startsWith(prefix)) {
            ctx.data.removeObject(ctx.data.getBinding(first));
            ctx.data.removeBinding(first);
            obs.removed = first;
          }
        }
        return obs;
      },
      check: (model, obs) => {
        if (obs.last !== model.sessionLast[session]) return `read last index ${obs.last}; commit order gives ${model.sessionLast[session]}`;
        if (index <= obs.last) return `message ${index} ran after message ${obs.last} of its session`;
        if (obs.room !== undefined && obs.room !== model.room) return `read room count ${obs.room}; commit order gives ${model.room}`;
        const first = [...model.notes].filter((name) => name.startsWith(prefix)).sort()[0];
        if (note >= 0.3 && note < 0.45 && obs.removed !== first) return `removed note ${obs.removed}; commit order gives first note ${first}`;
        return undefined;
      },
      apply: (model, obs) => {
        model.sessionLast[session] = index;
        if (obs.room !== undefined) model.room++;
        if (obs.added !== undefined) model.notes.add(obs.added);
        if (obs.removed !== undefined) model.notes.delete(obs.removed);
      },
    };
  }

  /** Told of every workload effect released (after the sink): checks each session's order. */
  onEffect(task: number, effect: number): void {
    const message = this.sessionOfTask.get(task);
    if (message === undefined || effect !== 0) return;
    const last = this.lastReleasedIndex[message.session]!;
    if (message.index <= last) this.violations.add(`session ${message.session}: message ${message.index} delivered after message ${last}`);
    this.lastReleasedIndex[message.session] = message.index;
  }

  private censusJob(): Job<string[]> {
    this.stats.censuses++;
    return {
      label: `census #${this.nextLabel++}`,
      effects: 1,
      faults: true,
      body: (ctx) => {
        // A scan of a binding range: a note added or removed in it by a concurrent commit must conflict.
        const found: string[] = [];
        for (let name = ctx.data.nextBoundName("note."); name?.startsWith("note."); name = ctx.data.nextBoundName(name)) found.push(name);
        return found;
      },
      check: (model, obs) => {
        const expected = [...model.notes].sort().join(" ");
        return obs.slice().sort().join(" ") === expected ? undefined : `census found [${obs.join(" ")}]; commit order gives [${expected}]`;
      },
      apply: () => undefined,
    };
  }

  // ---- scheduled tasks ---------------------------------------------------------------------------

  private scheduleJob(): Job<{ startMs: number }> {
    const label = `t${this.nextLabel++}`;
    const periodic = this.dice.chance(0.4) && [...this.live.schedules.values()].filter((s) => s.periodMs > 0 && !s.cancelled).length < 3;
    const delayMs = this.dice.chance(0.2) ? 0 : this.dice.int(1, 300);
    const periodMs = periodic ? this.dice.int(20, 200) : 0;
    this.stats.schedules++;
    return {
      label: `schedule ${label} +${delayMs}${periodic ? ` every ${periodMs}` : ""}`,
      effects: 1,
      faults: true,
      body: (ctx) => {
        ctx.data.setBinding(`runs.${label}`, new RunLog());
        if (periodic) ctx.data.setBinding(`handle.${label}`, new HandleHolder(ctx.tasks.schedulePeriodicTask(new Tick(label), delayMs, periodMs)));
        else ctx.tasks.scheduleTask(new Tick(label), delayMs);
        return { startMs: ctx.now() + delayMs };
      },
      check: () => undefined,
      apply: (model, obs) => void model.schedules.set(label, { startMs: obs.startMs, periodMs, cancelled: false }),
    };
  }

  private readonly cancelRequested = new Set<string>();

  private cancellable(): string | undefined {
    const labels = [...this.live.schedules].filter(([label, s]) => s.periodMs > 0 && !s.cancelled && !this.cancelRequested.has(label)).map(([label]) => label);
    if (labels.length === 0) return undefined;
    const label = this.dice.pick(labels);
    this.cancelRequested.add(label);
    return label;
  }

  private cancelJob(label: string): Job<null> {
    this.stats.cancels++;
    return {
      label: `cancel ${label}`,
      effects: 1,
      faults: true,
      body: (ctx) => {
        const holder = ctx.data.getBinding<HandleHolder>(`handle.${label}`);
        holder.handle!.cancel();
        ctx.data.removeBinding(`handle.${label}`);
        ctx.data.removeObject(holder);
        return null;
      },
      check: (model) => (model.schedules.get(label)?.cancelled === false ? undefined : `cancelled ${label}, which commit order says is not running`),
      apply: (model) => void (model.schedules.get(label)!.cancelled = true),
    };
  }

  /** The body of a run of scheduled task `label` (see {@link Tick}). */
  tickBody(ctx: TaskContext, tx: Transaction, label: string): void {
    const now = ctx.now();
    try {
      this.faultPoint();
      ctx.data.getBinding<RunLog>(`runs.${label}`).times.push(now);
      this.faultPoint();
    } catch (error) {
      if (!(error instanceof TransactionConflictError)) this.fatalRuns.add(label);
      throw error;
    }
    tx.addEffect(() => this.sink.runReleased(label, now));
  }

  /** A run of `label` that started at `appMs` was released: it is due, not early, and not twice. */
  onRun(label: string, appMs: number): void {
    this.stats.runs++;
    const schedule = this.durable.schedules.get(label);
    const runs = this.runs.get(label) ?? [];
    this.runs.set(label, runs);
    if (schedule === undefined) {
      this.violations.add(`${label} ran at ${appMs}, but the task that scheduled it is not durable`);
      return;
    }
    if (schedule.cancelled) this.violations.add(`${label} ran at ${appMs}, after its cancellation was durable`);
    const previous = runs.at(-1);
    if (previous === undefined) {
      if (appMs < schedule.startMs) this.violations.add(`${label} ran at ${appMs}, before it was due at ${schedule.startMs}`);
    } else if (schedule.periodMs === 0) {
      this.violations.add(`one-shot ${label} ran again at ${appMs} (it ran at ${previous})`);
    } else {
      const nextGrid = schedule.startMs + (Math.floor((previous - schedule.startMs) / schedule.periodMs) + 1) * schedule.periodMs;
      if (appMs < nextGrid) this.violations.add(`${label} ran at ${previous} and again at ${appMs}, before its next grid point ${nextGrid}`);
    }
    runs.push(appMs);
  }

  // ---- end of run --------------------------------------------------------------------------------

  /**
   * End-of-run checks: the store equals the model of the durable tasks; with a healthy store,
   * every due scheduled task ran (a one-shot once, a periodic one recently), and the live model
   * equals the durable one.
   */
  finish(store: DataStore, healthy: boolean, endAppMs: number): void {
    const model = this.durable;
    if (!model.ready) return;
    const balances = this.storedBalances(store);
    if (balances?.join(",") !== model.balances.join(",")) this.violations.add(`store balances ${balances?.join(",")}; durable commits give ${model.balances.join(",")}`);
    for (let s = 0; s < this.profile.sessions; s++) {
      const state = readStored(store, `session.${s}`, this.violations) as SessionState | undefined;
      if (state?.lastIndex !== model.sessionLast[s]) this.violations.add(`store has session ${s} at message ${state?.lastIndex}; durable commits give ${model.sessionLast[s]}`);
    }
    const room = readStored(store, "room", this.violations) as Room | undefined;
    if (room?.messages !== model.room) this.violations.add(`store room count ${room?.messages}; durable commits give ${model.room}`);
    const notes: string[] = [];
    const prefix = appKey("note.");
    for (let key = store.nextBindingName(undefined, prefix); key !== undefined; key = store.nextBindingName(key, prefix)) notes.push(key.slice(2));
    if (notes.sort().join(" ") !== [...model.notes].sort().join(" ")) this.violations.add(`store notes [${notes.join(" ")}]; durable commits give [${[...model.notes].sort().join(" ")}]`);
    for (const [label, schedule] of model.schedules) {
      const stored = (readStored(store, `runs.${label}`, this.violations) as RunLog | undefined)?.times ?? [];
      const released = this.runs.get(label) ?? [];
      if (stored.join(",") !== released.join(",")) this.violations.add(`${label}: store has runs at [${stored.join(",")}], released runs were at [${released.join(",")}]`);
      if (!healthy) continue;
      if (schedule.periodMs === 0) {
        if (released.length === 0 && !this.fatalRuns.has(label)) this.violations.add(`one-shot ${label}, due at ${schedule.startMs}, never ran (now ${endAppMs})`);
      } else if (!schedule.cancelled) {
        const slackMs = 4 * schedule.periodMs + 1500;
        const last = released.at(-1) ?? schedule.startMs;
        if (endAppMs - last > slackMs) this.violations.add(`periodic ${label} (every ${schedule.periodMs} from ${schedule.startMs}) last ran at ${released.at(-1)}; now ${endAppMs}`);
      }
    }
    if (healthy && JSON.stringify(summary(this.live)) !== JSON.stringify(summary(model))) this.violations.add("every task is durable, yet the committed and durable models differ");
  }
}

function summary(model: Model): unknown {
  return [model.balances, model.sessionLast, model.room, [...model.notes].sort(), [...model.schedules]];
}

/** The object an application binding names in the store itself, decoded; undefined if unbound. */
function readStored(store: DataStore, name: string, violations: Violations): object | undefined {
  const binding = store.getBinding(appKey(name));
  if (binding === undefined) return undefined;
  const record = store.getObject(binding.id);
  if (record === undefined) violations.add(`store binds ${name} to object ${binding.id}, which it does not hold`);
  return record === undefined ? undefined : objectCodec.decode(record.bytes);
}
