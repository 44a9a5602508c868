// The SDK resumes a session after a network failure (a proxy cut between client and server): the
// server kept what it sent meanwhile, the client gets it in order, and neither side ended the
// session. Without a reconnect window on the server, the session ends after one refused attempt.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { connect, type Session, type SessionEvents } from "@shardless/client";
import { startServer, type Logger, type Server } from "shardless";
import HelloChannels from "../../../examples/hello-channels/app.ts";
import { TcpProxy } from "./tcp-proxy.ts";
import { withWorkers } from "../../server/test/test-workers.ts";

/** What worker threads import to learn the application's classes (when the test run has workers). */
const APP_MODULE = new URL("../../../examples/hello-channels/app.ts", import.meta.url).href;

/** Keeps the server's log messages, so a test can wait for one. */
class Notes implements Logger {
  readonly messages: string[] = [];
  debug(): void {}
  info(message: string): void {
    this.messages.push(message);
  }
  warn(message: string): void {
    this.messages.push(message);
  }
  error(message: string): void {
    this.messages.push(message);
  }
}

async function until(what: string, predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(predicate(), `timed out waiting for ${what}`);
}

/** Every event of `session`, in order, as [name, first argument]. */
function record(session: Session): [keyof SessionEvents, unknown][] {
  const seen: [keyof SessionEvents, unknown][] = [];
  for (const event of ["reconnecting", "reconnected", "disconnect"] as const) session.on(event, (...args: unknown[]) => seen.push([event, args[0]]));
  session.on("message", (bytes) => seen.push(["message", new TextDecoder().decode(bytes)]));
  session.on("channelMessage", (channel, bytes) => seen.push(["channelMessage", `${channel.name}: ${new TextDecoder().decode(bytes)}`]));
  return seen;
}

async function serve(reconnectWindowMs: number): Promise<{ server: Server; notes: Notes }> {
  const notes = new Notes();
  const server = await startServer(withWorkers({ app: HelloChannels, durability: "memory", tcpPort: 0, httpPort: 0, host: "127.0.0.1", logger: notes, reconnectWindowMs, disconnectDelayMs: 50 }, APP_MODULE));
  return { server, notes };
}

for (const transport of ["tcp", "ws"] as const) {
  const url = (port: number) => (transport === "tcp" ? `tcp://127.0.0.1:${port}` : `ws://127.0.0.1:${port}/ws`);
  const portOf = (server: Server) => (transport === "tcp" ? server.tcpPort! : server.httpPort!);

  describe(`SDK reconnect over ${transport}`, () => {
    it("resumes after a network failure, with what the server sent meanwhile, in order", async (t) => {
      const { server, notes } = await serve(10_000);
      t.after(() => server.close());
      const proxy = await TcpProxy.start(portOf(server));
      t.after(() => proxy.close());
      const ann = await connect({ url: url(proxy.port), name: "ann" });
      const bob = await connect({ url: url(portOf(server)), name: "bob" });
      await until("both in Foo", () => ann.channel("Foo") !== undefined && bob.channel("Foo") !== undefined);
      const seen = record(ann);

      proxy.cut(); // ann's network fails; her reconnect attempts wait at the proxy
      await until("the server to notice", () => notes.messages.some((message) => message.startsWith("client away")));
      const bobHeard: string[] = [];
      bob.on("channelMessage", (_channel, bytes) => bobHeard.push(new TextDecoder().decode(bytes)));
      bob.channel("Foo")!.send("while you were away");
      bob.channel("Foo")!.send("and again");
      await until("bob's own copies", () => bobHeard.length === 2); // so ann's were kept too
      assert.equal(ann.connected, true, "still a session while it reconnects");
      assert.equal(ann.reconnecting, true);
      ann.send("sent while reconnecting"); // kept by the SDK, sent once resumed
      proxy.release();

      await until("resumed and caught up", () => seen.filter(([event]) => event === "message").length === 1);
      assert.deepEqual(seen, [
        ["reconnecting", 1],
        ["reconnected", undefined],
        ["channelMessage", "Foo: while you were away"],
        ["channelMessage", "Foo: and again"],
        ["message", "sent while reconnecting"],
      ]);
      assert.equal(ann.reconnecting, false);
      assert.equal(server.sessionCounters.reconnects, 1);
      assert.equal(server.sessionCounters.disconnects, 0, "the server never ended ann's session");
      await ann.logout();
      await bob.logout();
    });

    it("ends the session when the server no longer holds it", async (t) => {
      const { server } = await serve(0);
      t.after(() => server.close());
      const proxy = await TcpProxy.start(portOf(server));
      t.after(() => proxy.close());
      const ann = await connect({ url: url(proxy.port), name: "ann" });
      const seen = record(ann);
      proxy.cut();
      proxy.release();
      await until("the end", () => !ann.connected);
      assert.deepEqual(seen, [
        ["reconnecting", 1],
        ["disconnect", { graceful: false }],
      ]);
    });

    it("does not reconnect after close(), nor when told not to", async (t) => {
      const { server } = await serve(10_000);
      t.after(() => server.close());
      const proxy = await TcpProxy.start(portOf(server));
      t.after(() => proxy.close());
      const closing = await connect({ url: url(proxy.port), name: "ann" });
      const closingSeen = record(closing);
      closing.close();
      await until("closed", () => !closing.connected);
      assert.deepEqual(closingSeen, [["disconnect", { graceful: false }]]);

      const stubborn = await connect({ url: url(proxy.port), name: "bob", reconnect: false });
      const stubbornSeen = record(stubborn);
      proxy.cut();
      proxy.release();
      await until("ended", () => !stubborn.connected);
      assert.deepEqual(stubbornSeen, [["disconnect", { graceful: false }]]);
    });
  });
}
