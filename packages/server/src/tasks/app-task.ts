import { ManagedObjectError } from "../api/errors.js";
import { isManagedObject } from "../api/managed.js";
import type { Task } from "../api/types.js";
import { objectCodec } from "../kernel/codec.js";
import { callSync } from "../kernel/transaction.js";
import type { TaskKinds } from "../sessions/session-tasks.js";

/** The kind of task that runs a {@link Task} object handed in by embedding code (`Server.runTask`). */
export const APP_TASK = "app.task";

/** Arguments of an application task: the task object, encoded as it would be stored. */
export interface AppTaskArgs {
  readonly encoded: Uint8Array;
}

/**
 * The arguments that run `task` once as an application task. The object is copied (encoded), not
 * stored: each attempt runs on a fresh copy, wherever it runs.
 * @throws {ManagedObjectError} if `task` is not a managed object with `run(ctx)`.
 */
export function appTaskArgs(task: Task): AppTaskArgs {
  if (typeof task !== "object" || task === null || typeof (task as Partial<Task>).run !== "function" || !isManagedObject(task)) {
    throw new ManagedObjectError("runTask takes a managed object (decorated with @managed) with a run(ctx) method");
  }
  return { encoded: objectCodec.encode(task) };
}

/** Defines {@link APP_TASK} in `kinds`. */
export function defineAppTask(kinds: TaskKinds): void {
  kinds.defineTask(APP_TASK, (ctx, _tx, args) => {
    const task = objectCodec.decode((args as AppTaskArgs).encoded) as Task;
    return callSync(`${task.constructor.name}.run`, () => task.run(ctx));
  });
}
