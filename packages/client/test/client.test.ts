// The SDK against a real server, over TCP and over WebSocket, with the same assertions.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect, ConnectError, LoginFailedError, SessionClosedError, type Session, type SessionEvents } from "@shardless/client";
import { PasswordFileAuthenticator, silentLogger, startServer, type Server } from "shardless";
import HelloChannels from "../../../examples/hello-channels/app.ts";
import { withWorkers } from "../../server/test/test-workers.ts";

/** What worker threads import to learn the application's classes (when the test run has workers). */
const APP_MODULE = new URL("../../../examples/hello-channels/app.ts", import.meta.url).href;

let server: Server;
before(async () => {
  const authenticator = PasswordFileAuthenticator.fromText(
    (await Promise.all(["ann", "bob", "cat", "dan"].map((name) => PasswordFileAuthenticator.hashLine(name, `${name}-pw`, 1024)))).join("\n"),
  );
  server = await startServer(withWorkers({ app: HelloChannels, durability: "memory", tcpPort: 0, httpPort: 0, host: "127.0.0.1", logger: silentLogger, authenticator, disconnectDelayMs: 50 }, APP_MODULE));
});
after(() => server.close());

/** The next `event` of `session`, with a deadline. */
function next<E extends keyof SessionEvents>(session: Session, event: E): Promise<SessionEvents[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${String(event)} event`)), 5000);
    const off = session.on(event, (...args) => {
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

for (const transport of ["tcp", "ws"] as const) {
  const url = () => (transport === "tcp" ? `tcp://127.0.0.1:${server.tcpPort}` : `ws://127.0.0.1:${server.httpPort}/ws`);

  describe(`client SDK over ${transport}`, () => {
    it("logs in, sees its channels, talks on them, and logs out gracefully", async () => {
      const ann = await connect({ url: url(), name: "ann", password: "ann-pw" });
      const joins: string[] = [];
      ann.on("channelJoin", (channel) => joins.push(channel.name));
      await new Promise((resolve) => setTimeout(resolve, 50)); // joins sent with the login arrive after connect
      assert.deepEqual(joins.sort(), ["Bar", "Foo"]);
      const bob = await connect({ url: url(), name: "bob", password: "bob-pw" });
      await next(bob, "channelJoin");

      ann.send("echo me");
      assert.equal(decode((await next(ann, "message"))[0]), "echo me");

      const heard = next(bob, "channelMessage");
      ann.channel("Foo")!.send("hello, channel");
      const [channel, message] = await heard;
      assert.equal(channel.name, "Foo");
      assert.equal(decode(message), "hello, channel");

      const vetted = next(ann, "channelMessage");
      bob.channel("Bar")!.send(new TextEncoder().encode("through the listener"));
      assert.equal(decode((await vetted)[1]), "through the listener");

      const ended = next(ann, "disconnect");
      await ann.logout();
      assert.deepEqual(await ended, [{ graceful: true }]);
      assert.equal(ann.connected, false);
      assert.throws(() => ann.send("too late"), SessionClosedError);
      bob.close();
    });

    it("rejects a wrong password with LoginFailedError", async () => {
      await assert.rejects(connect({ url: url(), name: "cat", password: "wrong" }), (error: unknown) => error instanceof LoginFailedError && error.reason === "login refused");
    });

    it("reports a dropped connection as an ungraceful disconnect", async () => {
      const dan = await connect({ url: url(), name: "dan", password: "dan-pw" });
      const ended = next(dan, "disconnect");
      dan.close();
      const [info] = await ended;
      assert.equal(info.graceful, false);
    });
  });
}

describe("client SDK errors", () => {
  it("fails to connect to a port nobody listens on, with ConnectError", async () => {
    const probe = await startServer(withWorkers({ app: HelloChannels, durability: "memory", tcpPort: 0, httpPort: null, host: "127.0.0.1", logger: silentLogger }, APP_MODULE));
    const port = probe.tcpPort!;
    await probe.close();
    await assert.rejects(connect({ url: `tcp://127.0.0.1:${port}`, name: "x" }), ConnectError);
  });

  it("refuses URLs it cannot use", async () => {
    await assert.rejects(connect({ url: "http://example.invalid/", name: "x" }), /unsupported URL scheme/);
    await assert.rejects(connect({ url: "not a url", name: "x" }), /not a URL/);
  });
});
