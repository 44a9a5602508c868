// hello-channels over real TCP: joins after login, fan-out with and without a listener, numeric
// channel ids, and members leaving when they go.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { encodeChannelId, type ServerMessage } from "@shardless/protocol";
import { silentLogger, startServer } from "shardless";
import { RawClient } from "../../packages/server/test/raw-client.ts";
import HelloChannels from "./app.ts";
import { withWorkers } from "../../packages/server/test/test-workers.ts";

/** What worker threads import to learn the application's classes (when the test run has workers). */
const APP_MODULE = new URL("./app.ts", import.meta.url).href;

const text = (value: string) => new TextEncoder().encode(value);
const asText = (message: ServerMessage) => (message.op === "CHANNEL_MESSAGE" ? `${message.channelId}:${new TextDecoder().decode(message.message)}` : message.op);

async function joined(client: RawClient): Promise<Map<string, bigint>> {
  const channels = new Map<string, bigint>();
  for (let i = 0; i < 2; i++) {
    const message = await client.next();
    assert.equal(message.op, "CHANNEL_JOIN");
    if (message.op === "CHANNEL_JOIN") channels.set(message.channelName, message.channelId);
  }
  return channels;
}

describe("hello-channels", () => {
  it("joins sessions at login and fans channel messages out to every member", async () => {
    const server = await startServer(withWorkers({ app: HelloChannels, durability: "memory", tcpPort: 0, httpPort: null, host: "127.0.0.1", logger: silentLogger }, APP_MODULE));
    after(() => server.close());
    const ann = await RawClient.login(server.tcpPort!, "ann");
    const annChannels = await joined(ann);
    const bob = await RawClient.login(server.tcpPort!, "bob");
    const bobChannels = await joined(bob);
    assert.deepEqual(annChannels, bobChannels, "one channel id per channel, the same for every member");
    const foo = annChannels.get("Foo")!;
    const bar = annChannels.get("Bar")!;

    ann.send({ op: "CHANNEL_MESSAGE", channelId: foo, message: text("hi from ann") });
    assert.equal(asText(await ann.next()), `${foo}:hi from ann`, "the sender is a member too");
    assert.equal(asText(await bob.next()), `${foo}:hi from ann`);

    bob.send({ op: "CHANNEL_MESSAGE", channelId: bar, message: text("vetted") });
    assert.equal(asText(await ann.next()), `${bar}:vetted`);
    assert.equal(asText(await bob.next()), `${bar}:vetted`);
    assert.equal(await server.run("forwarded", (ctx) => (ctx.channels.getChannel("Bar") as unknown as { listener: { get(): { forwarded: number } } }).listener.get().forwarded), 1);

    // A client may re-encode the id with extra leading zeros: ids compare as numbers.
    const padded = new Uint8Array([0, 0, ...encodeChannelId(foo)]);
    ann.sendRaw(Buffer.concat([Buffer.from([0, 3 + padded.length + 2, 0x52, 0, padded.length]), padded, Buffer.from("ok")]));
    assert.equal(asText(await bob.next()), `${foo}:ok`);
    assert.equal(asText(await ann.next()), `${foo}:ok`);

    // A channel the client is not in: dropped. The session still works.
    ann.send({ op: "CHANNEL_MESSAGE", channelId: 999_999n, message: text("nowhere") });
    ann.say("echo");
    assert.equal(await ann.nextText(), "echo");

    bob.send({ op: "LOGOUT_REQUEST" });
    assert.equal((await bob.next()).op, "LOGOUT_SUCCESS");
    await bob.whenClosed();
    await server.whenIdle();
    assert.equal(await server.run("members", (ctx) => ctx.channels.getChannel("Foo").sessions().map((session) => session.name).join()), "ann");
    ann.close();
  });
});
