/**
 * Hello, persistence: a task that runs every second and remembers, in a managed object, how many
 * times it has run and when it last ran. Stop the server (Ctrl-C, or even kill -9) and start it
 * again: the count goes on from where it was, and the pause does not count as time passed, because
 * scheduled delays follow application time, which stands still while the server is down.
 */
import { managed, type AppListener, type Task, type TaskContext } from "shardless";

/** The periodic task and its state: one managed object. */
@managed("hello.persistence.Tracker")
export class Tracker implements Task {
  runs = 0;
  lastRunAppMs: number | null = null;

  run(ctx: TaskContext): void {
    this.runs++;
    const since = this.lastRunAppMs === null ? "first run" : `${ctx.now() - this.lastRunAppMs} ms since the last run`;
    this.lastRunAppMs = ctx.now();
    // Logged only if this task commits: a retried attempt never logs twice.
    ctx.log.info(`run #${this.runs} (${since})`, { runs: this.runs });
  }
}

@managed("hello.persistence.App")
export default class HelloPersistence implements AppListener {
  initialize(ctx: TaskContext, props: Readonly<Record<string, string>>): void {
    const periodMs = Number(props.periodMs ?? "1000");
    const tracker = new Tracker();
    // Bind it so that tools (and tests) can find it by name.
    ctx.data.setBinding("tracker", tracker);
    ctx.tasks.schedulePeriodicTask(tracker, 0, periodMs);
    ctx.log.info(`scheduled the tracker every ${periodMs} ms`);
  }
}
