/**
 * What a committed task does to the world outside the store, described as data: a message to a
 * session, a timer to arm, a log line. Effects are released on the main thread, after the commit is
 * durable and in commit order, by the handler installed for their `to`. Being data, they can be made
 * by a task running on a worker thread and carried to the main thread with its commit request.
 */
export interface EffectData {
  /** The handler that releases it: a service's name (`session`, `task`, `log`). */
  readonly to: string;
  readonly [field: string]: unknown;
}

/**
 * An effect: data, or a closure. A closure only exists on the thread that made it, so only tasks
 * run on the main thread (embedding code, tests) may add one; services always add data.
 */
export type Effect = EffectData | (() => void);

/** Releases one kind of effect data on the main thread. */
export type EffectHandler = (effect: EffectData) => void;

/** Effect data for a task's `ctx.log` line, written by the logger of the server that commits it. */
export interface LogEffect extends EffectData {
  readonly to: "log";
  readonly level: "debug" | "info" | "warn" | "error";
  readonly message: string;
  readonly fields: Readonly<Record<string, unknown>>;
}
