// Sessions over real TCP sockets: login rules, per-session order, disconnects exactly once,
// sends released on commit, and bad input that harms no one else.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, it } from "node:test";
import {
  MessageRejectedError,
  ObjectNotFoundError,
  SystemClock,
  PasswordFileAuthenticator,
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
import { CapturingLogger, ControlledStore, RunTally, eventually, tempDir, testServer } from "./helpers.ts";

const text = (value: string) => new TextEncoder().encode(value);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

@managed("sessions.Journal")
class Journal {
  lines: string[] = [];
  /**
   * The tally (see RunTally) of what every Player's receivedMessage is called with, in call order,
   * attempts included; when the `handled` application property names one.
   */
  constructor(public handled: string | null = null) {}
}

/** Echoes, and obeys commands: "disconnect me", "remove me", "fail", "what is it" (the message's class). */
@managed("sessions.Player")
class Player implements ClientSessionListener {
  constructor(private readonly session: Ref<ClientSession>) {}

  receivedMessage(ctx: TaskContext, message: Uint8Array): void {
    const said = decode(message);
    const journal = ctx.data.getBinding<Journal>("journal");
    if (journal.handled !== null) RunTally.record(journal.handled, said);
    const session = this.session.get();
    journal.lines.push(`${session.name}: ${said}`);
    if (said === "disconnect me") session.disconnect();
    else if (said === "remove me") ctx.data.removeObject(session);
    else if (said === "fail") {
      session.send(text("never sent"));
      throw new Error("handler failed");
    } else if (said === "what is it") session.send(text(Buffer.isBuffer(message) ? "a Buffer" : message.constructor.name));
    else session.send(message);
  }

  disconnected(ctx: TaskContext, graceful: boolean): void {
    ctx.data.getBinding<Journal>("journal").lines.push(`${this.session.get().name} disconnected(${graceful})`);
  }
}

@managed("sessions.App")
class SessionApp implements AppListener {
  initialize(ctx: TaskContext, props: Readonly<Record<string, string>>): void {
    ctx.data.setBinding("journal", new Journal(props.handled ?? null));
  }

  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener | null {
    ctx.data.getBinding<Journal>("journal").lines.push(`${session.name} logged in`);
    if (session.name.startsWith("refused")) return null;
    if (session.name.startsWith("greeted")) session.send(text(`welcome ${session.name}`));
    ctx.data.setBinding(`session:${session.name}`, session);
    return new Player(ctx.data.createReference(session));
  }
}

async function server(options: Partial<StartServerOptions> = {}): Promise<Server> {
  return testServer({ app: SessionApp, clock: new SystemClock(), tcpPort: 0, host: "127.0.0.1", disconnectDelayMs: 50, ...options }, import.meta.url);
}

const journal = (s: Server) => s.run("journal", (ctx) => [...ctx.data.getBinding<Journal>("journal").lines]);

const waitForJournal = (s: Server, line: string) => eventually(`journal line ${JSON.stringify(line)}`, () => journal(s), (lines) => lines.includes(line));

describe("sessions over TCP", () => {
  it("writes LOGIN_SUCCESS before anything loggedIn sent", async () => {
    const s = await server();
    const client = await RawClient.open(s.tcpPort!);
    client.send({ op: "LOGIN_REQUEST", version: 5, name: "greeted-ann", password: "" });
    assert.equal((await client.next()).op, "LOGIN_SUCCESS");
    assert.equal(await client.nextText(), "welcome greeted-ann");
    client.close();
  });

  it("handles one session's messages one at a time, in arrival order", async () => {
    const s = await server();
    const client = await RawClient.login(s.tcpPort!, "ordered");
    const sent = Array.from({ length: 200 }, (_, i) => `m${i}`);
    for (const message of sent) client.say(message);
    const echoed: string[] = [];
    for (let i = 0; i < sent.length; i++) echoed.push(await client.nextText());
    assert.deepEqual(echoed, sent);
    const lines = (await journal(s)).filter((line) => line.startsWith("ordered: "));
    assert.deepEqual(lines, sent.map((message) => `ordered: ${message}`));
    client.close();
  });

  it("hands receivedMessage a Buffer, with or without worker threads", async () => {
    const s = await server();
    const client = await RawClient.login(s.tcpPort!, "curious");
    client.say("what is it");
    assert.equal(await client.nextText(), "a Buffer");
    client.close();
  });

  it("starts a session's next message once the previous has committed, not once it is durable", async () => {
    const store = new ControlledStore();
    const handled = new RunTally();
    const s = await server({ store, appProperties: { handled: handled.path } });
    const client = await RawClient.login(s.tcpPort!, "pipelined");
    store.held = true;
    const sent = ["pipe-1", "pipe-2", "pipe-3"];
    for (const message of sent) client.say(message);
    // While the first commit waits for the disk, the later messages still run, in order, each on
    // top of the one before: all three handlers have run and none of their replies has left.
    await eventually("three handlers run", () => Promise.resolve(handled.entries()), (seen) => seen.length === 3);
    assert.deepEqual(handled.entries(), sent);
    assert.equal(client.received.filter((message) => message.op === "SESSION_MESSAGE").length, 0, "no reply before its commit is durable");
    store.held = false;
    while (store.waiting.length > 0) store.release();
    const echoed = [await client.nextText(), await client.nextText(), await client.nextText()];
    assert.deepEqual(echoed, sent);
    const lines = (await journal(s)).filter((line) => line.startsWith("pipelined: "));
    assert.deepEqual(lines, sent.map((message) => `pipelined: ${message}`));
    client.close();
  });

  it("never sends what a failed task sent", async () => {
    const s = await server();
    const client = await RawClient.login(s.tcpPort!, "careful");
    client.say("fail");
    client.say("after");
    assert.equal(await client.nextText(), "after", "the failed task's message was never released");
    client.close();
  });

  it("refuses a login when loggedIn returns null, with the generic reason, and closes", async () => {
    const s = await server();
    const client = await RawClient.open(s.tcpPort!);
    client.send({ op: "LOGIN_REQUEST", version: 5, name: "refused-bob", password: "" });
    assert.deepEqual(await client.next(), { op: "LOGIN_FAILURE", reason: "login refused" });
    await client.whenClosed();
    assert.equal(s.sessionCount, 0);
  });

  it("checks passwords against scrypt hashes, and never tells the client why it failed", async () => {
    const logger = new CapturingLogger();
    const authenticator = PasswordFileAuthenticator.fromText(await PasswordFileAuthenticator.hashLine("alice", "s3cret", 1024));
    const s = await server({ authenticator, logger });
    const wrong = await RawClient.open(s.tcpPort!);
    wrong.send({ op: "LOGIN_REQUEST", version: 5, name: "alice", password: "guess" });
    assert.deepEqual(await wrong.next(), { op: "LOGIN_FAILURE", reason: "login refused" });
    const refusal = logger.records.find((record) => record.message === "request refused");
    assert.equal(refusal?.fields?.reason, "authentication failed");
    const unknown = await RawClient.open(s.tcpPort!);
    unknown.send({ op: "LOGIN_REQUEST", version: 5, name: "mallory", password: "s3cret" });
    assert.deepEqual(await unknown.next(), { op: "LOGIN_FAILURE", reason: "login refused" });
    const right = await RawClient.login(s.tcpPort!, "alice", "s3cret");
    right.say("in");
    assert.equal(await right.nextText(), "in");
    right.close();
  });

  it("refuses a second login of the same name by default, and can replace the first", async () => {
    const refusing = await server();
    const first = await RawClient.login(refusing.tcpPort!, "dup");
    const second = await RawClient.open(refusing.tcpPort!);
    second.send({ op: "LOGIN_REQUEST", version: 5, name: "dup", password: "" });
    assert.deepEqual(await second.next(), { op: "LOGIN_FAILURE", reason: "login refused" });
    first.say("still here");
    assert.equal(await first.nextText(), "still here");
    first.close();

    const replacing = await server({ duplicateLogin: "replace" });
    const old = await RawClient.login(replacing.tcpPort!, "dup");
    const fresh = await RawClient.login(replacing.tcpPort!, "dup");
    await old.whenClosed();
    await waitForJournal(replacing, "dup disconnected(false)");
    fresh.say("new");
    assert.equal(await fresh.nextText(), "new");
    fresh.close();
  });

  it("calls disconnected exactly once, graceful only on logout", async () => {
    const s = await server();
    const leaver = await RawClient.login(s.tcpPort!, "leaver");
    leaver.send({ op: "LOGOUT_REQUEST" });
    assert.deepEqual(await leaver.next(), { op: "LOGOUT_SUCCESS" });
    await leaver.whenClosed();

    const dropper = await RawClient.login(s.tcpPort!, "dropper");
    dropper.close();

    const kicked = await RawClient.login(s.tcpPort!, "kicked");
    kicked.say("disconnect me");
    await kicked.whenClosed();

    const removed = await RawClient.login(s.tcpPort!, "removed");
    removed.say("remove me");
    await removed.whenClosed();

    const lines = await waitForJournal(s, "removed disconnected(false)");
    await waitForJournal(s, "kicked disconnected(false)");
    await waitForJournal(s, "dropper disconnected(false)");
    await s.whenIdle();
    const final = await journal(s);
    for (const [name, graceful] of [["leaver", true], ["dropper", false], ["kicked", false], ["removed", false]] as const) {
      const ends = final.filter((line) => line.startsWith(`${name} disconnected`));
      assert.deepEqual(ends, [`${name} disconnected(${graceful})`], `${name}: ${JSON.stringify(lines)}`);
    }
    assert.equal(s.sessionCount, 0);
  });

  it("ends, at the next start, the sessions that were connected when the server stopped", async () => {
    const dataDir = tempDir();
    const first = await server({ durability: "sync", dataDir });
    const client = await RawClient.login(first.tcpPort!, "stayer");
    client.say("hello");
    assert.equal(await client.nextText(), "hello");
    await first.close();
    await client.whenClosed();
    const second = await server({ durability: "sync", dataDir });
    assert.equal(second.startup.endedSessions, 1);
    assert.ok((await journal(second)).includes("stayer disconnected(false)"));
  });

  it("drops session messages sent before login, and keeps reading", async () => {
    const s = await server();
    const client = await RawClient.open(s.tcpPort!);
    client.say("too early");
    client.send({ op: "LOGIN_REQUEST", version: 5, name: "early", password: "" });
    assert.equal((await client.next()).op, "LOGIN_SUCCESS");
    client.say("on time");
    assert.equal(await client.nextText(), "on time");
    assert.ok(!(await journal(s)).includes("early: too early"));
    client.close();
  });

  it("closes, without a reply, a login with another protocol version", async () => {
    const s = await server();
    const client = await RawClient.open(s.tcpPort!);
    client.send({ op: "LOGIN_REQUEST", version: 4, name: "old", password: "" });
    await client.whenClosed();
    assert.equal(client.bytes.length, 0);
  });

  it("closes a connection that does not log in within the login timeout", async () => {
    const s = await server({ loginTimeoutMs: 100 });
    const idle = await RawClient.open(s.tcpPort!);
    await idle.whenClosed();
  });

  it("never runs loggedIn for a login whose connection the login timeout closed while it was being checked", async () => {
    let approve: (ok: boolean) => void = () => undefined;
    let asked: () => void = () => undefined;
    const checking = new Promise<void>((resolve) => (asked = resolve));
    const authenticator = {
      authenticate: () =>
        new Promise<boolean>((resolve) => {
          approve = resolve;
          asked();
        }),
    };
    const s = await server({ loginTimeoutMs: 100, authenticator });
    const slow = await RawClient.open(s.tcpPort!);
    slow.send({ op: "LOGIN_REQUEST", version: 5, name: "slowpoke", password: "" });
    await checking;
    await slow.whenClosed();
    approve(true); // the check passes only after the timeout closed the connection
    await s.whenIdle();
    assert.ok(!(await journal(s)).includes("slowpoke logged in"));
    assert.equal(s.sessionCounters.logins, 0);
  });

  it("closes a connection that goes quiet for the idle timeout, when one is set", async () => {
    const s = await server({ idleTimeoutMs: 150 });
    const chatty = await RawClient.login(s.tcpPort!, "chatty");
    const quiet = await RawClient.login(s.tcpPort!, "quiet");
    const talking = setInterval(() => chatty.say("still here"), 40);
    try {
      await quiet.whenClosed();
      await waitForJournal(s, "quiet disconnected(false)");
      assert.equal(chatty.closed, false, "a client that keeps sending stays");
    } finally {
      clearInterval(talking);
    }
    chatty.close();
  });

  it("closes only the offending connection on bad frames, and counts them", async () => {
    const s = await server({ maxFrameBytes: 1024 });
    const bystander = await RawClient.login(s.tcpPort!, "bystander");
    const attacks: [string, string][] = [
      ["unknown opcode", "00 01 99"],
      ["server-only opcode", "00 03 11 00 00"],
      ["oversized frame", "04 01"],
      ["empty frame", "00 00"],
      ["truncated login", "00 05 10 05 00 09 41"],
      ["malformed string", "00 07 10 05 00 01 FF 00 00"],
      ["trailing bytes", "00 02 40 00"],
    ];
    for (const [what, bytes] of attacks) {
      const attacker = await RawClient.open(s.tcpPort!);
      attacker.sendRaw(bytes);
      await attacker.whenClosed().catch(() => assert.fail(`${what} did not close the connection`));
      bystander.say(`after ${what}`);
      assert.equal(await bystander.nextText(), `after ${what}`);
    }
    assert.equal(s.sessionCounters.protocolErrors, attacks.length);
    bystander.close();
  });

  it("survives 1,000 connections opened and dropped at once", async () => {
    const s = await server();
    const bystander = await RawClient.login(s.tcpPort!, "calm");
    await Promise.all(
      Array.from(
        { length: 1000 },
        (_, i) =>
          new Promise<void>((resolve) => {
            const socket = connect({ port: s.tcpPort!, host: "127.0.0.1" }, () => {
              if (i % 3 === 0) socket.write(Buffer.from("000b1005000362", "hex")); // half a login
              socket.destroy();
            });
            socket.on("error", () => resolve());
            socket.on("close", () => resolve());
          }),
      ),
    );
    bystander.say("still fine");
    assert.equal(await bystander.nextText(), "still fine");
    bystander.close();
  });

  it("cuts off a client that does not read, and refuses sends past its write buffer", async () => {
    const s = await server({ writeBufferBytes: 256 * 1024 });
    const slow = await RawClient.login(s.tcpPort!, "slow");
    slow.socket.pause(); // stops reading: the kernel's buffers fill, then ours
    const bystander = await RawClient.login(s.tcpPort!, "fast");
    const chunk = new Uint8Array(60_000);
    // Each send fits, or is refused with MessageRejectedError (which cuts the client off); after
    // that the session is ended and removed.
    let refused = 0;
    let gone = false;
    for (let i = 0; i < 2000 && !gone; i++) {
      await s
        .run("flood", (ctx) => ctx.data.getBinding<ClientSession>("session:slow").send(chunk), { maxAttempts: 1 })
        .catch((error: { cause?: unknown }) => {
          if (error.cause instanceof MessageRejectedError) refused++;
          else if (error.cause instanceof ObjectNotFoundError) gone = true;
          else throw error;
        });
      if (i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.equal(refused, 1, "the first refused send cuts the client off");
    assert.ok(gone, "the session ended");
    slow.socket.resume(); // a paused socket does not see the close
    await slow.whenClosed(10_000);
    await waitForJournal(s, "slow disconnected(false)");
    bystander.say("unaffected");
    assert.equal(await bystander.nextText(), "unaffected");
    bystander.close();
  });
});
