// kill -9 of a real server process, again and again: nothing a client could have seen is lost,
// initialize runs once, and scheduled tasks resume and fire.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { LmdbDataStore, ManualClock, silentLogger, startServer } from "shardless";
import CrashApp, { type Counter, type InitRuns } from "./fixtures/crash-app.ts";
import { ChildServer } from "./child-server.ts";
import { RawClient } from "./raw-client.ts";
import { TEST_WORKERS, tempDir, withWorkers } from "./helpers.ts";

const APP = fileURLToPath(new URL("./fixtures/crash-app.ts", import.meta.url));
const KILLS = 5;

describe("crash safety", () => {
  it(`keeps every acknowledged commit across ${KILLS} kill -9s, and resumes scheduled tasks`, async () => {
    const dataDir = tempDir();
    const args = ["start", APP, "--data-dir", dataDir, "--durability", "sync", "--tcp-port", "0", "--http-port", "0", "--host", "127.0.0.1", "--prop", "tickMs=5", "--prop", "alarmMs=1500", "--workers", String(TEST_WORKERS)];
    const seen: number[] = [];
    let alarmFired = false;
    for (let kill = 0; kill <= KILLS; kill++) {
      const child = ChildServer.start(args);
      await child.waitFor("server start", () => child.messages("server started").length > 0 && child.stdout.includes("tcp://"));
      const started = child.messages("server started")[0]!;
      assert.equal(started.initialized, kill === 0, "initialize runs on the first start only");
      if (kill > 0) assert.ok((started.resumedTasks as number) >= 1, "the periodic task is found again");
      const ticksBefore = () => child.messages("tick").length;
      if (kill > 0) {
        // The player connected before the last kill is ended at this start, ungracefully, once.
        await child.waitFor("the old session's end", () => child.messages("player disconnected").length > 0);
        assert.deepEqual(child.messages("player disconnected").map((record) => [record.name, record.graceful]), [[`player${kill - 1}`, false]]);
      }
      const player = await RawClient.login(child.tcpPort(), `player${kill}`);
      player.say("ping");
      assert.equal(await player.nextText(), "ping");
      // Kill at a different point of the tick stream each time: commits are always in flight.
      const target = 3 + ((kill * 7) % 11);
      if (kill < KILLS) {
        await child.waitFor(`${target} ticks`, () => ticksBefore() >= target);
        const { signal } = await child.stop("SIGKILL");
        assert.equal(signal, "SIGKILL");
      } else {
        await child.waitFor("the alarm", () => child.messages("alarm").length > 0 || alarmFired, 30_000);
        await child.waitFor("more ticks", () => ticksBefore() >= 3);
        player.close();
        assert.equal((await child.stop("SIGTERM")).code, 0);
      }
      const values = child.messages("tick").map((record) => record.value as number);
      alarmFired ||= child.messages("alarm").length > 0;
      const lastBefore = seen.at(-1) ?? 0;
      assert.ok(values[0]! > lastBefore, `after restart ${kill} the counter went on from ${values[0]}, not below ${lastBefore + 1}`);
      for (let i = 1; i < values.length; i++) assert.equal(values[i], values[i - 1]! + 1, "ticks are consecutive within a run");
      seen.push(...values);
    }
    assert.ok(alarmFired, "the one-shot task scheduled at initialize fired, across restarts");

    // Open the data directly: every acknowledged tick is there, and initialize ran once.
    const server = await startServer(withWorkers({ app: CrashApp, dataDir, durability: "sync", clock: new ManualClock(), logger: silentLogger, tcpPort: null, httpPort: null }, import.meta.url));
    try {
      const [counter, initRuns] = await server.run("inspect", (ctx) => [
        ctx.data.getBinding<Counter>("counter").value,
        ctx.data.getBinding<InitRuns>("init runs").count,
      ]);
      assert.ok(counter >= seen.at(-1)!, `stored counter ${counter} ≥ last acknowledged ${seen.at(-1)}`);
      assert.equal(initRuns, 1);
    } finally {
      await server.close();
    }
    // The directory lock was released by the clean stop and taken over after each kill.
    await LmdbDataStore.open({ path: dataDir }).close();
  });
});
