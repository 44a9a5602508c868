// Channels over real TCP: membership changes released only on commit, leave, close, names, restart.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Delivery,
  NameExistsError,
  NameNotBoundError,
  SystemClock,
  TaskFailedError,
  managed,
  type AppListener,
  type ClientSession,
  type ClientSessionListener,
  type Ref,
  type Server,
  type StartServerOptions,
  type TaskContext,
} from "shardless";
import { RawClient } from "./raw-client.ts";
import { tempDir, testServer } from "./helpers.ts";

const text = (value: string) => new TextEncoder().encode(value);

/** Obeys: "join X", "join X then fail", "leave X", "leave all X", "close X". */
@managed("channels.Player")
class Player implements ClientSessionListener {
  constructor(private readonly session: Ref<ClientSession>) {}

  receivedMessage(ctx: TaskContext, message: Uint8Array): void {
    const [verb, ...rest] = new TextDecoder().decode(message).split(" ");
    const name = rest.join(" ").replace(/ then fail$/, "");
    const session = this.session.get();
    if (verb === "join") ctx.channels.getChannel(name).join(session);
    if (verb === "leave") ctx.channels.getChannel(name).leave(session);
    if (verb === "leaveAll") ctx.channels.getChannel(name).leaveAll();
    if (verb === "close") ctx.data.removeObject(ctx.channels.getChannel(name));
    if (verb === "announce") ctx.channels.getChannel(name).send(text(`announcement to ${ctx.channels.getChannel(name).sessions().length}`));
    if (rest.join(" ").endsWith(" then fail")) throw new Error("after joining");
    session.send(text(`done ${verb}`));
  }

  disconnected(): void {}
}

@managed("channels.App")
class ChannelApp implements AppListener {
  initialize(ctx: TaskContext): void {
    ctx.channels.createChannel("lobby", null, Delivery.RELIABLE);
    ctx.channels.createChannel("arena", null, Delivery.UNRELIABLE);
  }

  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener {
    return new Player(ctx.data.createReference(session));
  }
}

function server(options: Partial<StartServerOptions> = {}): Promise<Server> {
  return testServer({ app: ChannelApp, clock: new SystemClock(), tcpPort: 0, host: "127.0.0.1", disconnectDelayMs: 50, ...options }, import.meta.url);
}

describe("channels", () => {
  it("releases a join only if its task commits", async () => {
    const s = await server();
    const client = await RawClient.login(s.tcpPort!, "ann");
    client.say("join lobby then fail");
    client.say("join arena");
    const first = await client.next();
    assert.equal(first.op, "CHANNEL_JOIN");
    assert.equal(first.op === "CHANNEL_JOIN" && first.channelName, "arena", "the failed task's join was never sent");
    assert.equal(await client.nextText(), "done join");
    assert.deepEqual(
      await s.run("members", (ctx) => [ctx.channels.getChannel("lobby").hasSessions(), ctx.channels.getChannel("arena").hasSessions()]),
      [false, true],
    );
    client.close();
  });

  it("stores each membership change: read back by later tasks with no decoded objects kept", async () => {
    // With the decoded-object cache, a later task could be lent the very instance an earlier task
    // changed, and see a change that was never stored; without it, every read decodes the store.
    const s = await server({ objectCacheEntries: 0 });
    const ann = await RawClient.login(s.tcpPort!, "ann");
    const bob = await RawClient.login(s.tcpPort!, "bob");
    for (const [client, command] of [[ann, "join lobby"], [bob, "join lobby"], [ann, "leave lobby"], [bob, "join arena"]] as const) {
      client.say(command);
      while ((await client.next()).op !== "SESSION_MESSAGE"); // the channel's news, then "done …"
    }
    const members = await s.run("members", (ctx) => ["lobby", "arena"].map((name) => ctx.channels.getChannel(name).sessions().map((session) => session.name)));
    assert.deepEqual(members, [["bob"], ["bob"]]);
    ann.close();
    bob.close();
  });

  it("tells members they left, on leave, leaveAll and close", async () => {
    const s = await server();
    const ann = await RawClient.login(s.tcpPort!, "ann");
    const bob = await RawClient.login(s.tcpPort!, "bob");
    for (const client of [ann, bob]) {
      client.say("join lobby");
      assert.equal((await client.next()).op, "CHANNEL_JOIN");
      assert.equal(await client.nextText(), "done join");
    }
    ann.say("announce lobby");
    for (const client of [ann, bob]) {
      const message = await client.next();
      assert.equal(message.op === "CHANNEL_MESSAGE" && new TextDecoder().decode(message.message), "announcement to 2");
    }
    assert.equal(await ann.nextText(), "done announce");
    ann.say("leave lobby");
    assert.equal((await ann.next()).op, "CHANNEL_LEAVE");
    assert.equal(await ann.nextText(), "done leave");
    ann.say("leaveAll lobby");
    assert.equal((await bob.next()).op, "CHANNEL_LEAVE", "leaveAll removes every member");
    assert.equal(await ann.nextText(), "done leaveAll");
    bob.say("join arena");
    assert.equal((await bob.next()).op, "CHANNEL_JOIN");
    assert.equal(await bob.nextText(), "done join");
    ann.say("close arena");
    assert.equal((await bob.next()).op, "CHANNEL_LEAVE", "closing a channel tells its members");
    assert.equal(await ann.nextText(), "done close");
    const error = await s.run("gone", (ctx) => ctx.channels.getChannel("arena")).catch((rejection: unknown) => rejection);
    assert.ok(error instanceof TaskFailedError && error.cause instanceof NameNotBoundError);
    ann.close();
    bob.close();
  });

  it("refuses a second channel of the same name", async () => {
    const s = await server();
    const error = await s.run("dup", (ctx) => ctx.channels.createChannel("lobby", null, Delivery.RELIABLE)).catch((rejection: unknown) => rejection);
    assert.ok(error instanceof TaskFailedError && error.cause instanceof NameExistsError);
  });

  it("keeps channels across a restart, without the members who were connected", async () => {
    const dataDir = tempDir();
    const first = await server({ durability: "sync", dataDir });
    const client = await RawClient.login(first.tcpPort!, "ann");
    client.say("join lobby");
    assert.equal((await client.next()).op, "CHANNEL_JOIN");
    assert.equal(await client.nextText(), "done join");
    await first.close();
    const second = await server({ durability: "sync", dataDir });
    assert.deepEqual(await second.run("after restart", (ctx) => [ctx.channels.getChannel("lobby").name, ctx.channels.getChannel("lobby").hasSessions()]), ["lobby", false]);
  });
});
