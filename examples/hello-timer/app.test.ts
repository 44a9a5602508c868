// hello-timer ticks on its grid, before and after a restart.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ManualClock, startServer, type Logger } from "shardless";
import HelloTimer from "./app.ts";
import { withWorkers } from "../../packages/server/test/test-workers.ts";

/** What worker threads import to learn the application's classes (when the test run has workers). */
const APP_MODULE = new URL("./app.ts", import.meta.url).href;

const dataDir = mkdtempSync(join(tmpdir(), "hello-timer-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

function ticks(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const keep = (message: string) => {
    if (message.startsWith("tick")) lines.push(message);
  };
  return { lines, logger: { debug: keep, info: keep, warn: keep, error: keep } };
}

async function run(clock: ManualClock, logger: Logger, ms: number): Promise<void> {
  const server = await startServer(withWorkers({ app: HelloTimer, dataDir, clock, logger, tcpPort: null, httpPort: null }, APP_MODULE));
  for (let t = 0; t < ms; t += 100) {
    await server.whenIdle();
    clock.advance(100);
  }
  await server.whenIdle();
  await server.close();
}

describe("hello-timer", () => {
  it("ticks every 500 ms of application time, across a restart", async () => {
    const first = ticks();
    await run(new ManualClock(0), first.logger, 1200);
    assert.deepEqual(first.lines, ["tick at application time 0 ms", "tick at application time 500 ms", "tick at application time 1000 ms"]);
    const second = ticks();
    await run(new ManualClock(50_000), second.logger, 900);
    assert.deepEqual(second.lines, ["tick at application time 1500 ms", "tick at application time 2000 ms"]);
  });
});
