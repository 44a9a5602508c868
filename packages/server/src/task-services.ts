import { CHANNEL_SERVICE } from "./channels/channel-record.js";
import { ChannelService } from "./channels/channel-service.js";
import type { TaskServiceHooks } from "./kernel/kernel.js";
import type { TaskBody } from "./kernel/task-runtime.js";
import { SESSION_SERVICE } from "./sessions/client-session-record.js";
import type { SessionView } from "./sessions/session-effects.js";
import { SessionTasks } from "./sessions/session-tasks.js";
import { ScheduledTasks, scheduledTaskHooks } from "./tasks/task-service.js";
import { defineAppTask } from "./tasks/app-task.js";

/** A thread's place for services and kinds of task: the kernel, or a worker's task runtime. */
export interface TaskHost {
  installTaskService(service: TaskServiceHooks): void;
  installService(name: string, service: unknown): void;
  defineTask(kind: string, body: TaskBody): void;
}

/** The transactional halves of the services, as installed on one thread. */
export interface TransactionalServices {
  readonly scheduled: ScheduledTasks;
  readonly channels: ChannelService;
  readonly sessions: SessionTasks;
}

/**
 * Installs in `host` what every thread that runs tasks has: the transactional halves of durable
 * tasks, channels and sessions, and every kind of task they define. The main thread and each worker
 * call this alike, so a task runs the same code wherever it runs.
 */
export function installTransactionalServices(host: TaskHost, view: SessionView, writeBufferBytes: number): TransactionalServices {
  const scheduled = new ScheduledTasks();
  const channels = new ChannelService();
  const sessions = new SessionTasks(view, writeBufferBytes);
  sessions.installChannels(channels);
  host.installTaskService(scheduledTaskHooks(scheduled, (tx) => channels.managerFor(tx)));
  host.installService(SESSION_SERVICE, sessions);
  host.installService(CHANNEL_SERVICE, channels);
  scheduled.defineTasks(host);
  sessions.defineTasks(host);
  defineAppTask(host);
  return { scheduled, channels, sessions };
}
