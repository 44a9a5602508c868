// The example survives restarts: its run count goes on, and downtime does not count as time passed.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ManualClock, silentLogger, startServer, type Server } from "shardless";
import HelloPersistence, { type Tracker } from "./app.ts";
import { withWorkers } from "../../packages/server/test/test-workers.ts";

/** What worker threads import to learn the application's classes (when the test run has workers). */
const APP_MODULE = new URL("./app.ts", import.meta.url).href;

const dataDir = mkdtempSync(join(tmpdir(), "hello-persistence-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

async function start(clock: ManualClock): Promise<Server> {
  return startServer(withWorkers({ app: HelloPersistence, dataDir, clock, logger: silentLogger, tcpPort: null, httpPort: null, appProperties: { periodMs: "1000" } }, APP_MODULE));
}

async function runFor(server: Server, clock: ManualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    await server.whenIdle();
    clock.advance(100);
  }
  await server.whenIdle();
}

const tracker = (server: Server) =>
  server.run("read", (ctx) => {
    const { runs, lastRunAppMs } = ctx.data.getBinding<Tracker>("tracker");
    return { runs, lastRunAppMs };
  });

describe("hello-persistence", () => {
  it("keeps counting across restarts, on application time", async () => {
    const firstClock = new ManualClock(0);
    const first = await start(firstClock);
    await runFor(first, firstClock, 2500);
    assert.deepEqual(await tracker(first), { runs: 3, lastRunAppMs: 2000 });
    await first.close();

    const secondClock = new ManualClock(1_000_000); // an hour later, say: the gap does not count
    const second = await start(secondClock);
    assert.equal(second.initialized, false);
    await runFor(second, secondClock, 1000);
    assert.deepEqual(await tracker(second), { runs: 4, lastRunAppMs: 3000 });
    await second.close();
  });
});
