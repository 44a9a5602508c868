// A per-session message rate: a token bucket on the kernel's clock; over it, extra messages are
// dropped or the session is disconnected, as configured. Other sessions are not affected.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ManualClock, managed, type AppListener, type ClientSession, type ClientSessionListener, type Ref, type Server, type StartServerOptions, type TaskContext } from "shardless";
import { RawClient } from "./raw-client.ts";
import { CapturingLogger, eventually, testServer } from "./helpers.ts";

@managed("rate.Log")
class Log {
  lines: string[] = [];
}

@managed("rate.Echo")
class Echo implements ClientSessionListener {
  constructor(private readonly session: Ref<ClientSession>) {}

  receivedMessage(ctx: TaskContext, message: Uint8Array): void {
    ctx.data.getBinding<Log>("log").lines.push(`${this.session.get().name}: ${new TextDecoder().decode(message)}`);
  }

  disconnected(ctx: TaskContext, graceful: boolean): void {
    ctx.data.getBinding<Log>("log").lines.push(`${this.session.get().name} disconnected(${graceful})`);
  }
}

@managed("rate.App")
class App implements AppListener {
  initialize(ctx: TaskContext): void {
    ctx.data.setBinding("log", new Log());
  }

  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener {
    return new Echo(ctx.data.createReference(session));
  }
}

const lines = (server: Server) => server.run("read", (ctx) => [...ctx.data.getBinding<Log>("log").lines]);

async function start(options: Partial<StartServerOptions>): Promise<{ server: Server; clock: ManualClock; logger: CapturingLogger }> {
  const clock = new ManualClock();
  const logger = new CapturingLogger();
  const server = await testServer({ app: App, clock, logger, tcpPort: 0, host: "127.0.0.1", maxMessagesPerSecond: 10, messageBurst: 5, ...options }, import.meta.url);
  return { server, clock, logger };
}

/** Sends `count` messages and waits until the server has read them all. */
async function flood(server: Server, client: RawClient, prefix: string, count: number): Promise<void> {
  const before = server.sessionCounters.framesIn;
  for (let i = 0; i < count; i++) client.say(`${prefix}${i}`);
  await eventually(`${count} frames read`, () => Promise.resolve(server.sessionCounters.framesIn - before), (read) => read >= count);
}

describe("per-session rate limit", () => {
  it("drops what a session sends over its rate, refilling with time, and leaves others alone", async () => {
    const { server, clock, logger } = await start({ rateLimitPolicy: "drop" });
    const greedy = await RawClient.login(server.tcpPort!, "greedy");
    const polite = await RawClient.login(server.tcpPort!, "polite");
    await flood(server, greedy, "a", 20);
    polite.say("hi");
    await eventually("polite handled", () => lines(server), (seen) => seen.includes("polite: hi"));
    const handled = (await lines(server)).filter((line) => line.startsWith("greedy: "));
    assert.deepEqual(handled, ["a0", "a1", "a2", "a3", "a4"].map((m) => `greedy: ${m}`), "the burst, in order");
    assert.equal(server.sessionCounters.rateLimited, 15);
    assert.equal(logger.records.filter((record) => record.message.includes("over its message rate")).length, 1, "logged once per session");

    clock.advance(300); // 3 tokens back at 10/s
    await flood(server, greedy, "b", 5);
    await eventually("b handled", () => lines(server), (seen) => seen.includes("greedy: b2"));
    assert.deepEqual((await lines(server)).filter((line) => line.startsWith("greedy: b")), ["greedy: b0", "greedy: b1", "greedy: b2"]);
    assert.equal(greedy.closed, false);
    greedy.close();
    polite.close();
  });

  it("disconnects a session over its rate when told to, with disconnected(false)", async () => {
    const { server } = await start({ rateLimitPolicy: "disconnect" });
    const greedy = await RawClient.login(server.tcpPort!, "greedy");
    for (let i = 0; i < 6; i++) greedy.say(`m${i}`);
    await greedy.whenClosed();
    await eventually("the session ended", () => lines(server), (seen) => seen.includes("greedy disconnected(false)"));
    assert.equal(server.sessionCounters.rateLimited, 1);
  });

  it("refuses a bad rate configuration by name", async () => {
    await assert.rejects(start({ maxMessagesPerSecond: 0 }), /maxMessagesPerSecond must be a number > 0/);
    await assert.rejects(start({ rateLimitPolicy: "kick" as "drop" }), /rateLimitPolicy must be "drop" or "disconnect"/);
  });
});
