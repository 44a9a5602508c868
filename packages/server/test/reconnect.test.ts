// Reconnect: a client whose connection drops resumes the same session with its key within the
// window, gets what it was sent meanwhile, in order, and the application sees no disconnect; past
// the window, or past the buffer, the session ends with disconnected(false).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ManualClock,
  managed,
  type AppListener,
  type ClientSession,
  type ClientSessionListener,
  type Ref,
  type Server,
  type StartServerOptions,
  type TaskContext,
} from "shardless";
import type { ServerMessage } from "@shardless/protocol";
import { RawClient } from "./raw-client.ts";
import { CapturingLogger, eventually, testServer } from "./helpers.ts";

const text = (value: string) => new TextEncoder().encode(value);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

@managed("reconnect.Journal")
class Journal {
  lines: string[] = [];
}

/** "tell <name> <text>" sends text to another player; anything else is echoed and journalled. */
@managed("reconnect.Player")
class Player implements ClientSessionListener {
  constructor(private readonly session: Ref<ClientSession>) {}

  receivedMessage(ctx: TaskContext, message: Uint8Array): void {
    const said = decode(message);
    const me = this.session.get();
    const tell = /^tell (\S+) (.*)$/.exec(said);
    if (tell !== null) {
      ctx.data.getBinding<ClientSession>(`session:${tell[1]}`).send(text(tell[2]!));
      return;
    }
    ctx.data.getBinding<Journal>("journal").lines.push(`${me.name}: ${said}`);
    me.send(message);
  }

  disconnected(ctx: TaskContext, graceful: boolean): void {
    ctx.data.getBinding<Journal>("journal").lines.push(`${this.session.get().name} disconnected(${graceful})`);
  }
}

@managed("reconnect.App")
class App implements AppListener {
  initialize(ctx: TaskContext): void {
    ctx.data.setBinding("journal", new Journal());
  }

  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener {
    ctx.data.getBinding<Journal>("journal").lines.push(`${session.name} logged in`);
    ctx.data.setBinding(`session:${session.name}`, session);
    return new Player(ctx.data.createReference(session));
  }
}

const journal = (server: Server) => server.run("journal", (ctx) => [...ctx.data.getBinding<Journal>("journal").lines]);

const loggers = new WeakMap<Server, CapturingLogger>();

async function start(options: Partial<StartServerOptions> = {}): Promise<{ server: Server; clock: ManualClock }> {
  const clock = new ManualClock();
  const logger = new CapturingLogger();
  const server = await testServer({ app: App, clock, logger, tcpPort: 0, host: "127.0.0.1", reconnectWindowMs: 5000, ...options }, import.meta.url);
  loggers.set(server, logger);
  return { server, clock };
}

function keyOf(message: ServerMessage): Uint8Array {
  assert.ok(message.op === "LOGIN_SUCCESS" || message.op === "RECONNECT_SUCCESS", `expected a key, got ${message.op}`);
  return message.reconnectKey;
}

/** Logs in; returns the client and its reconnect key. */
async function login(server: Server, name: string): Promise<{ client: RawClient; key: Uint8Array }> {
  const client = await RawClient.login(server.tcpPort!, name);
  return { client, key: keyOf(client.received[0]!) };
}

/** Drops the connection from the client's side and waits until the server has noticed. */
async function drop(server: Server, client: RawClient): Promise<void> {
  const logger = loggers.get(server)!;
  const noticed = () => logger.records.filter((record) => record.message.startsWith("client away")).length;
  const before = noticed();
  client.socket.destroy();
  await eventually("the server to notice the drop", () => Promise.resolve(noticed()), (count) => count > before);
}

async function reconnect(server: Server, key: Uint8Array): Promise<{ client: RawClient; reply: ServerMessage }> {
  const client = await RawClient.open(server.tcpPort!);
  client.send({ op: "RECONNECT_REQUEST", version: 5, reconnectKey: key });
  return { client, reply: await client.next() };
}

describe("reconnect", () => {
  it("resumes the session with every message sent while away, in order, and no disconnect", async () => {
    const { server } = await start();
    const ann = await login(server, "ann");
    const bob = await login(server, "bob");
    await drop(server, ann.client);
    for (const line of ["one", "two", "three"]) bob.client.say(`tell ann ${line}`);
    bob.client.say("fence"); // bob's messages run in order: once the fence is back, the tells ran
    assert.equal(await bob.client.nextText(), "fence");

    const back = await reconnect(server, ann.key);
    const newKey = keyOf(back.reply);
    assert.notDeepEqual(newKey, ann.key, "a fresh key each time");
    assert.deepEqual([await back.client.nextText(), await back.client.nextText(), await back.client.nextText()], ["one", "two", "three"]);
    back.client.say("still me");
    assert.equal(await back.client.nextText(), "still me");
    const lines = await journal(server);
    assert.ok(!lines.includes("ann disconnected(false)"), "the application saw no disconnect");
    assert.equal(lines.filter((line) => line === "ann logged in").length, 1, "nor a second login");
    assert.equal(server.sessionCounters.reconnects, 1);

    const stale = await reconnect(server, ann.key);
    assert.deepEqual(stale.reply, { op: "RECONNECT_FAILURE", reason: "reconnect refused" }, "an old key is spent");
    back.client.close();
    bob.client.close();
  });

  it("ends the session with disconnected(false) when the client does not come back in time", async () => {
    const { server, clock } = await start();
    const ann = await login(server, "ann");
    await drop(server, ann.client);
    clock.advance(4999);
    assert.ok(!(await journal(server)).includes("ann disconnected(false)"), "still waiting");
    clock.advance(1);
    await eventually("the session ended", () => journal(server), (lines) => lines.includes("ann disconnected(false)"));
    const late = await reconnect(server, ann.key);
    assert.deepEqual(late.reply, { op: "RECONNECT_FAILURE", reason: "reconnect refused" });
    late.client.close();
  });

  it("ends the session when more is sent to it while away than the buffer holds", async () => {
    const { server } = await start({ reconnectBufferBytes: 64 });
    const ann = await login(server, "ann");
    const bob = await login(server, "bob");
    await drop(server, ann.client);
    bob.client.say(`tell ann ${"x".repeat(40)}`);
    bob.client.say(`tell ann ${"y".repeat(40)}`);
    await eventually("the session ended", () => journal(server), (lines) => lines.includes("ann disconnected(false)"));
    assert.equal((await reconnect(server, ann.key)).reply.op, "RECONNECT_FAILURE");
    bob.client.close();
  });

  it("takes the session over from a connection that still looks open", async () => {
    const { server } = await start();
    const ann = await login(server, "ann");
    // The client saw its network fail first; the server still holds the old connection.
    const back = await reconnect(server, ann.key);
    assert.equal(back.reply.op, "RECONNECT_SUCCESS");
    await ann.client.whenClosed();
    back.client.say("here");
    assert.equal(await back.client.nextText(), "here");
    assert.ok(!(await journal(server)).includes("ann disconnected(false)"));
    back.client.close();
  });

  it("lets a fresh login of the same name replace a session waiting for its client", async () => {
    const { server } = await start({ duplicateLogin: "refuse" });
    const ann = await login(server, "ann");
    await drop(server, ann.client);
    const again = await RawClient.login(server.tcpPort!, "ann");
    const lines = await journal(server);
    assert.deepEqual(lines.slice(-2), ["ann disconnected(false)", "ann logged in"]);
    again.close();
  });

  it("refuses unknown keys, and every key when reconnect is off (the default)", async () => {
    const { server } = await start();
    const wrong = await reconnect(server, new Uint8Array(16));
    assert.deepEqual(wrong.reply, { op: "RECONNECT_FAILURE", reason: "reconnect refused" });
    const off = await testServer({ app: App, clock: new ManualClock(), tcpPort: 0, host: "127.0.0.1" }, import.meta.url);
    const ann = await login(off, "ann");
    ann.client.socket.destroy();
    await eventually("ended at once", () => journal(off), (lines) => lines.includes("ann disconnected(false)"));
    const client = await RawClient.open(off.tcpPort!);
    client.send({ op: "RECONNECT_REQUEST", version: 5, reconnectKey: ann.key });
    assert.equal((await client.next()).op, "RECONNECT_FAILURE");
    assert.equal(off.sessionCounters.reconnectFailures, 1);
  });
});
