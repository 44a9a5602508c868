/**
 * Hello, timer: a task that runs every half second, from the moment the world was first started,
 * on a fixed grid. The timer is stored with the world: stop the server and start it again, and it
 * goes on ticking where it left off.
 */
import { managed, type AppListener, type Task, type TaskContext } from "shardless";

@managed("hello.timer.Tick")
export class Tick implements Task {
  run(ctx: TaskContext): void {
    ctx.log.info(`tick at application time ${ctx.now()} ms`);
  }
}

@managed("hello.timer.App")
export default class HelloTimer implements AppListener {
  initialize(ctx: TaskContext): void {
    ctx.tasks.schedulePeriodicTask(new Tick(), 0, 500);
  }
}
