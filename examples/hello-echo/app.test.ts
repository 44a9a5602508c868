// hello-echo over real TCP, byte for byte as PROTOCOL.md's worked examples.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { silentLogger, startServer } from "shardless";
import { RawClient } from "../../packages/server/test/raw-client.ts";
import HelloEcho from "./app.ts";
import { withWorkers } from "../../packages/server/test/test-workers.ts";

/** What worker threads import to learn the application's classes (when the test run has workers). */
const APP_MODULE = new URL("./app.ts", import.meta.url).href;

describe("hello-echo", () => {
  it("logs in, echoes and logs out with the exact bytes of the protocol", async () => {
    const server = await startServer(withWorkers({ app: HelloEcho, durability: "memory", tcpPort: 0, httpPort: null, host: "127.0.0.1", logger: silentLogger }, APP_MODULE));
    after(() => server.close());
    const client = await RawClient.open(server.tcpPort!);
    client.sendRaw("00 0B 10 05 00 03 62 6F 62 00 02 70 77"); // login bob/pw
    await client.until(() => client.bytes.length >= 19, "LOGIN_SUCCESS");
    assert.equal(client.bytes.subarray(0, 3).toString("hex"), "001111", "LOGIN_SUCCESS with a 16-byte reconnect key");
    client.bytes = Buffer.alloc(0);
    client.sendRaw("00 03 30 68 69"); // session message "hi"
    await client.until(() => client.bytes.length >= 5, "the echo");
    assert.equal(client.bytes.toString("hex"), "00033068" + "69");
    client.bytes = Buffer.alloc(0);
    client.sendRaw("00 01 40"); // logout
    await client.until(() => client.bytes.length >= 3, "LOGOUT_SUCCESS");
    assert.equal(client.bytes.toString("hex"), "000141");
    client.close();
  });
});
