// The simulated event loop: a clock, the kernel's scheduler and the phases of Node's loop, all
// driven by the simulation so that one seed gives one execution.
import type { Clock, TimerHandle } from "../../src/kernel/clock.ts";
import type { Scheduler } from "../../src/kernel/committer.ts";
import { SeededRandom } from "../../src/kernel/random.ts";

/** Seeded choices: the only source of randomness in a simulation run. */
export class Dice {
  private readonly random: SeededRandom;

  constructor(seed: number) {
    this.random = new SeededRandom(seed);
  }

  /** A uniform number in [0, 1). */
  next(): number {
    return this.random.next();
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.random.next() < p;
  }

  /** A uniform integer in [low, high]. */
  int(low: number, high: number): number {
    return low + Math.floor(this.random.next() * (high - low + 1));
  }

  /** A uniform element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty array");
    return items[this.int(0, items.length - 1)]!;
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

/**
 * Lets every queued promise reaction run. The kernel, the store and the workloads of a simulation
 * use no real timer or immediate, so the one real `setImmediate` here fires only after the
 * microtask queue is empty, and nothing else can run in between.
 */
export function settleMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

interface SimTimer {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
}

/**
 * A manual clock with the timer semantics of Node's timers phase, which `ManualClock.advance`
 * does not have: the phase takes the timers already due when it starts, fires them in due order
 * (ties: armed first) with `now()` at the phase's time, and a timer armed by one of them waits for
 * a later phase even if it is due at once. The loop runs microtasks between two timers.
 */
export class SimClock implements Clock {
  private current = 0;
  private readonly timers = new Map<number, SimTimer>();
  private nextId = 1;

  now(): number {
    return this.current;
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const timer = { id: this.nextId++, at: this.current + Math.max(0, delayMs), callback };
    this.timers.set(timer.id, timer);
    return { id: timer.id };
  }

  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle.id);
  }

  /** Due time of the earliest armed timer, or undefined when none is armed. */
  nextDueAt(): number | undefined {
    let earliest: number | undefined;
    for (const timer of this.timers.values()) if (earliest === undefined || timer.at < earliest) earliest = timer.at;
    return earliest;
  }

  /** Number of armed timers. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /**
   * Moves time to `toMs` (never backwards) and returns the timers due then, in firing order.
   * Fire each with {@link fire}: a callback may disarm a later one.
   */
  moveTo(toMs: number): readonly SimTimer[] {
    if (toMs > this.current) this.current = toMs;
    return [...this.timers.values()].filter((timer) => timer.at <= this.current).sort((a, b) => a.at - b.at || a.id - b.id);
  }

  /** Fires `timer` unless it was disarmed meanwhile; true if it fired. */
  fire(timer: SimTimer): boolean {
    if (!this.timers.delete(timer.id)) return false;
    timer.callback();
    return true;
  }
}

/** Options of {@link SimLoop}. */
export interface SimLoopOptions {
  /**
   * Chance that a reading of the turn meter finds the kernel's turn budget spent, so that the task
   * pump yields with tasks still queued (as it does when tasks run long).
   */
  readonly longTurnChance: number;
  /** Called with anything a callback threw: in Node it would be an uncaught exception. */
  readonly onUncaught: (error: unknown, where: string) => void;
}

/**
 * The kernel's {@link Scheduler} and Node's event loop, one iteration per {@link iterate} call:
 * timers phase, poll phase (I/O callbacks, in an order the simulation chooses, as the OS may
 * deliver them in any order), check phase (the immediates queued before the phase began, first in
 * first out, as Node runs them; one queued during the phase waits for the next iteration).
 * Microtasks run after every callback, as in Node 11 and later. Simulated time moves only at the
 * start of an iteration (callbacks take no time, as when they are fast); the kernel's turn budget
 * is measured on a separate meter (see {@link SimLoopOptions.longTurnChance}).
 */
export class SimLoop implements Scheduler {
  private immediates: (() => void)[] = [];
  private turnMeterMs = 0;

  constructor(
    private readonly dice: Dice,
    readonly clock: SimClock,
    private readonly options: SimLoopOptions,
  ) {}

  immediate(callback: () => void): void {
    this.immediates.push(callback);
  }

  now(): number {
    // Real time passes while tasks run; the simulation says when a turn has run long.
    if (this.dice.chance(this.options.longTurnChance)) this.turnMeterMs += 11;
    return this.turnMeterMs;
  }

  /** Immediates waiting for the next check phase. */
  get pendingImmediates(): number {
    return this.immediates.length;
  }

  /**
   * Runs one iteration of the loop: time moves forward by `advanceMs`, due timers fire, then the
   * I/O callbacks `poll()` returns (called after the timers), then the immediates.
   */
  async iterate(advanceMs: number, poll: () => readonly (() => void)[]): Promise<void> {
    await settleMicrotasks();
    for (const timer of this.clock.moveTo(this.clock.now() + advanceMs)) {
      this.guard("a timer", () => this.clock.fire(timer));
      await settleMicrotasks();
    }
    for (const callback of poll()) {
      this.guard("an I/O callback", callback);
      await settleMicrotasks();
    }
    const due = this.immediates;
    this.immediates = [];
    for (const callback of due) {
      this.guard("an immediate", callback);
      await settleMicrotasks();
    }
  }

  private guard(where: string, callback: () => unknown): void {
    try {
      callback();
    } catch (error) {
      this.options.onUncaught(error, where);
    }
  }
}
