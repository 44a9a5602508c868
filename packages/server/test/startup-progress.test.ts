// Start-up on a big store reports its recovery work as it goes: pending tasks found, and sessions
// left from before the restart ended, each count rising to its total.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SystemClock, managed, startServer, type AppListener, type ClientSession, type ClientSessionListener, type StartupProgress, type Task, type TaskContext } from "shardless";
import { RawClient } from "./raw-client.ts";
import { silentLogger, tempDir, withWorkers } from "./helpers.ts";

const TASKS = 25_000;

@managed("progress.Later")
class Later implements Task {
  run(): void {}
}

@managed("progress.Guest")
class Guest implements ClientSessionListener {
  receivedMessage(): void {}
  disconnected(): void {}
}

@managed("progress.App")
class App implements AppListener {
  initialize(ctx: TaskContext): void {
    // Due in an hour of application time: still pending at the next start.
    for (let i = 0; i < TASKS; i++) ctx.tasks.scheduleTask(new Later(), 3_600_000);
  }

  loggedIn(_ctx: TaskContext, _session: ClientSession): ClientSessionListener {
    return new Guest();
  }
}

describe("start-up progress", () => {
  it("counts the pending tasks it resumes and the old sessions it ends, up to their totals", async () => {
    const dataDir = tempDir();
    const options = withWorkers({ app: App, dataDir, durability: "relaxed" as const, logger: silentLogger, clock: new SystemClock(), tcpPort: 0, httpPort: null, host: "127.0.0.1", txnTimeoutMs: Infinity }, import.meta.url);
    const first = await startServer(options);
    const guests = await Promise.all(["ann", "bob", "cat"].map((name) => RawClient.login(first.tcpPort!, name)));
    await first.close(); // the guests are still connected: their sessions are left stored
    for (const guest of guests) guest.close();

    const seen: StartupProgress[] = [];
    const second = await startServer({ ...options, onStartupProgress: (progress) => seen.push(progress) });
    await second.close();
    const resumed = seen.filter((progress) => progress.phase === "resuming scheduled tasks").map((progress) => progress.done);
    assert.deepEqual(resumed, [10_000, 20_000, TASKS]);
    assert.equal(second.resumedTasks, TASKS);
    const ended = seen.filter((progress) => progress.phase === "ending sessions from before the restart");
    assert.deepEqual(
      ended.map((progress) => [progress.done, progress.total]),
      [
        [0, 3],
        [1, 3],
        [2, 3],
        [3, 3],
      ],
    );
  });
});
