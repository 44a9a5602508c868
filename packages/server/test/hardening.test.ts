// Hostile or unusual clients, each once able to harm the server or another session.
import assert from "node:assert/strict";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { connect, ConnectError } from "@shardless/client";
import { ProtocolError, decodeChannelId } from "@shardless/protocol";
import {
  ConfigError,
  Delivery,
  PasswordFileAuthenticator,
  SystemClock,
  managed,
  startServer,
  type AppListener,
  type ClientSession,
  type ClientSessionListener,
  type Ref,
  type Server,
  type StartServerOptions,
  type TaskContext,
} from "shardless";
import { CapturingLogger, eventually, testServer, withWorkers } from "./helpers.ts";
import { RawClient } from "./raw-client.ts";

@managed("hard.Journal")
class Journal {
  lines: string[] = [];
}

@managed("hard.Player")
class Player implements ClientSessionListener {
  constructor(private readonly session: Ref<ClientSession>) {}
  receivedMessage(ctx: TaskContext, message: Uint8Array): void {
    const said = new TextDecoder().decode(message);
    if (said === "disconnect me") this.session.get().disconnect();
    else if (said.startsWith("count")) ctx.data.getBinding<Journal>("journal").lines.push("counted");
    else this.session.get().send(message);
  }
  disconnected(ctx: TaskContext, graceful: boolean): void {
    ctx.data.getBinding<Journal>("journal").lines.push(`${this.session.get().name} disconnected(${graceful})`);
  }
}

@managed("hard.App")
class App implements AppListener {
  initialize(ctx: TaskContext): void {
    ctx.data.setBinding("journal", new Journal());
    ctx.channels.createChannel("lobby", null, Delivery.RELIABLE);
  }
  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener | null {
    ctx.data.getBinding<Journal>("journal").lines.push(`${session.name} logged in`);
    ctx.channels.getChannel("lobby").join(session);
    if (session.name.startsWith("refused")) return null;
    return new Player(ctx.data.createReference(session));
  }
}

function server(options: Partial<StartServerOptions> = {}): Promise<Server> {
  return testServer({ app: App, clock: new SystemClock(), tcpPort: 0, host: "127.0.0.1", disconnectDelayMs: 100, ...options }, import.meta.url);
}

const journal = (s: Server) => s.run("journal", (ctx) => [...ctx.data.getBinding<Journal>("journal").lines]);

const waitForJournal = (s: Server, line: string) => eventually(`journal line ${JSON.stringify(line)}`, () => journal(s), (lines) => lines.includes(line));

describe("hardening", () => {
  it("ends a logged-in session that sends RECONNECT_REQUEST, instead of leaving it stuck", async () => {
    const s = await server();
    const alice = await RawClient.login(s.tcpPort!, "alice");
    await alice.next(); // the lobby join
    alice.send({ op: "RECONNECT_REQUEST", version: 5, reconnectKey: new Uint8Array(16) });
    await alice.whenClosed();
    await waitForJournal(s, "alice disconnected(false)");
    const again = await RawClient.login(s.tcpPort!, "alice");
    again.close();
  });

  it("closes a relocation request of another version without a reply", async () => {
    const s = await server();
    const client = await RawClient.open(s.tcpPort!);
    client.send({ op: "RELOCATE_REQUEST", version: 4, relocationKey: new Uint8Array(16) });
    await client.whenClosed();
    assert.equal(client.bytes.length, 0);
  });

  it("cuts a client that never closes its side after a server-initiated close", async () => {
    const s = await server();
    const bob = await RawClient.login(s.tcpPort!, "bob", "", { allowHalfOpen: true });
    await bob.next();
    bob.say("disconnect me");
    await waitForJournal(s, "bob disconnected(false)");
    assert.equal(s.sessionCount, 0);
  });

  it("removes from its channels a session whose loggedIn joined it and then refused", async () => {
    const s = await server();
    for (const name of ["refused-1", "refused-2"]) {
      const client = await RawClient.open(s.tcpPort!);
      client.send({ op: "LOGIN_REQUEST", version: 5, name, password: "" });
      assert.equal((await client.next()).op, "LOGIN_FAILURE");
      client.close();
    }
    assert.equal(await s.run("members", (ctx) => ctx.channels.getChannel("lobby").hasSessions()), false);
  });

  it("ends the old session before the replacing login runs", async () => {
    const s = await server({ duplicateLogin: "replace" });
    const first = await RawClient.login(s.tcpPort!, "dup");
    const second = await RawClient.login(s.tcpPort!, "dup");
    await first.whenClosed();
    const lines = (await journal(s)).filter((line) => line.startsWith("dup"));
    assert.deepEqual(lines, ["dup logged in", "dup disconnected(false)", "dup logged in"]);
    second.close();
  });

  it("slows down a client that floods its inbox, losing nothing", async () => {
    const s = await server();
    const flooder = await RawClient.login(s.tcpPort!, "flooder");
    const big = "count".padEnd(60_000, "x");
    for (let i = 0; i < 400; i++) flooder.say(big);
    for (let i = 0; i < 200; i++) {
      const counted = (await journal(s)).filter((line) => line === "counted").length;
      if (counted === 400) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal((await journal(s)).filter((line) => line === "counted").length, 400, "every message was handled");
    assert.ok(s.sessionCounters.pausedReads > 0, "reading was paused while the inbox was full");
    flooder.close();
  });

  it("refuses logins past the per-address limit while others are being checked", async () => {
    let release: () => void = () => undefined;
    const slow = { authenticate: () => new Promise<boolean>((resolve) => (release = () => resolve(true))) };
    const s = await server({ authenticator: slow, maxPendingLoginsPerAddress: 1 });
    const first = await RawClient.open(s.tcpPort!);
    first.send({ op: "LOGIN_REQUEST", version: 5, name: "first", password: "" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = await RawClient.open(s.tcpPort!);
    second.send({ op: "LOGIN_REQUEST", version: 5, name: "second", password: "" });
    assert.deepEqual(await second.next(), { op: "LOGIN_FAILURE", reason: "login refused" });
    release();
    assert.equal((await first.next()).op, "LOGIN_SUCCESS");
    first.close();
  });

  it("writes no failure to the log when it shuts down with sessions connected", async () => {
    const logger = new CapturingLogger();
    const s = await startServer(withWorkers({ app: App, durability: "memory", tcpPort: 0, httpPort: null, host: "127.0.0.1", logger }, import.meta.url));
    const client = await RawClient.login(s.tcpPort!, "stayer");
    await client.next();
    await s.close();
    await client.whenClosed();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(logger.messages("error"), []);
    assert.deepEqual(logger.messages("warn").filter((message) => !message.includes("passwordFile")), []);
  });

  it("reports an HTTP port in use as a start-up error, not a crash", async () => {
    const taken = await startServer(withWorkers({ app: App, durability: "memory", tcpPort: null, httpPort: 0, host: "127.0.0.1", logger: new CapturingLogger() }, import.meta.url));
    try {
      await assert.rejects(startServer(withWorkers({ app: App, durability: "memory", tcpPort: null, httpPort: taken.httpPort, host: "127.0.0.1", logger: new CapturingLogger() }, import.meta.url)), /EADDRINUSE/);
    } finally {
      await taken.close();
    }
  });
});

describe("hardening: codec and configuration", () => {
  it("refuses channel ids longer than 64 bits, whatever their length", () => {
    assert.equal(decodeChannelId(new Uint8Array([0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])), 0x0102030405060708n);
    assert.throws(() => decodeChannelId(new Uint8Array(65_530).fill(1)), (error: unknown) => error instanceof ProtocolError && error.reason === "value-out-of-range");
  });

  it("refuses password entries whose salt or hash is too short, or whose cost is not a power of 2", () => {
    assert.throws(() => PasswordFileAuthenticator.fromText("admin:scrypt:1024:8:1:c2FsdA==:!!!!"), ConfigError);
    assert.throws(() => PasswordFileAuthenticator.fromText(`admin:scrypt:1024:8:1:${"A".repeat(24)}:${"B".repeat(8)}`), ConfigError);
    assert.throws(() => PasswordFileAuthenticator.fromText(`admin:scrypt:1000:8:1:${"A".repeat(24)}:${"B".repeat(44)}`), ConfigError);
  });
});

describe("hardening: client SDK", () => {
  it("settles every logout call, and says graceful only after the server confirmed", async () => {
    const s = await server({ httpPort: null });
    const session = await connect({ url: `tcp://127.0.0.1:${s.tcpPort}`, name: "leaver" });
    const ended = new Promise((resolve) => session.on("disconnect", resolve));
    await Promise.all([session.logout(), session.logout()]);
    assert.deepEqual(await ended, { graceful: true });
  });

  it("keeps delivering events when a listener throws", async () => {
    const s = await server({ httpPort: null });
    const uncaught: unknown[] = [];
    const session = await connect({ url: `tcp://127.0.0.1:${s.tcpPort}`, name: "thrower", onListenerError: (error) => uncaught.push(error) });
    try {
      session.on("message", () => {
        throw new Error("listener bug");
      });
      const echoes: string[] = [];
      session.on("message", (message) => echoes.push(new TextDecoder().decode(message)));
      session.send("one");
      session.send("two");
      for (let i = 0; i < 100 && echoes.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(echoes, ["one", "two"]);
      assert.equal(session.connected, true);
      assert.equal(uncaught.length, 2, "each listener error is reported");
    } finally {
      session.close();
    }
  });

  it("gives up opening a connection that never completes, with ConnectError", async () => {
    const silent = createNetServer(() => undefined); // accepts TCP, never answers the WebSocket upgrade
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      await assert.rejects(connect({ url: `ws://127.0.0.1:${port}/ws`, name: "x", connectTimeoutMs: 200 }), ConnectError);
    } finally {
      silent.close();
    }
  });
});
