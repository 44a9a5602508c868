// The protocol over WebSocket: one frame per binary message, no length prefix.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { WebSocket } from "ws";
import { decodeServerMessage, encodeMessage, type ClientMessage, type ServerMessage } from "@shardless/protocol";
import { silentLogger, startServer, type Server } from "shardless";
import HelloEcho from "../../../examples/hello-echo/app.ts";
import { withWorkers } from "./test-workers.ts";

class WsClient {
  readonly received: ServerMessage[] = [];
  closeCode: number | undefined;
  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data: Buffer) => this.received.push(decodeServerMessage(new Uint8Array(data))));
    socket.on("close", (code) => (this.closeCode = code));
    socket.on("error", () => undefined);
  }
  static open(port: number): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      socket.once("open", () => resolve(new WsClient(socket)));
      socket.once("error", reject);
    });
  }
  send(message: ClientMessage): void {
    this.socket.send(encodeMessage(message));
  }
  async until(predicate: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 500 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(predicate(), `timed out waiting for ${what}`);
  }
}

async function echoServer(): Promise<Server> {
  const server = await startServer(withWorkers({ app: HelloEcho, durability: "memory", tcpPort: null, httpPort: 0, host: "127.0.0.1", maxFrameBytes: 4096, logger: silentLogger }, import.meta.url));
  after(() => server.close());
  return server;
}

describe("WebSocket transport", () => {
  it("logs in, echoes and logs out with unprefixed frames", async () => {
    const server = await echoServer();
    const client = await WsClient.open(server.httpPort!);
    client.send({ op: "LOGIN_REQUEST", version: 5, name: "web", password: "" });
    await client.until(() => client.received.length === 1, "LOGIN_SUCCESS");
    assert.equal(client.received[0]!.op, "LOGIN_SUCCESS");
    client.send({ op: "SESSION_MESSAGE", message: new TextEncoder().encode("hi") });
    await client.until(() => client.received.length === 2, "the echo");
    const echo = client.received[1]!;
    assert.equal(echo.op === "SESSION_MESSAGE" && new TextDecoder().decode(echo.message), "hi");
    client.send({ op: "LOGOUT_REQUEST" });
    await client.until(() => client.received.length === 3, "LOGOUT_SUCCESS");
    assert.equal(client.received[2]!.op, "LOGOUT_SUCCESS");
    await client.until(() => client.closeCode !== undefined, "the close");
  });

  it("closes only the connection that sends text, an oversized message or a bad frame", async () => {
    const server = await echoServer();
    const bystander = await WsClient.open(server.httpPort!);
    bystander.send({ op: "LOGIN_REQUEST", version: 5, name: "bystander", password: "" });
    await bystander.until(() => bystander.received.length === 1, "login");
    const attacks: [string, (socket: WebSocket) => void][] = [
      ["text", (socket) => socket.send("hello")],
      ["oversized", (socket) => socket.send(new Uint8Array(5000))],
      ["unknown opcode", (socket) => socket.send(new Uint8Array([0x99]))],
      ["empty", (socket) => socket.send(new Uint8Array(0))],
    ];
    let expected = 1;
    for (const [what, attack] of attacks) {
      const attacker = await WsClient.open(server.httpPort!);
      attack(attacker.socket);
      await attacker.until(() => attacker.closeCode !== undefined, `${what} to close the connection`);
      if (what === "text") assert.equal(attacker.closeCode, 1003, "text is refused as unsupported data");
      bystander.send({ op: "SESSION_MESSAGE", message: new TextEncoder().encode(what) });
      expected++;
      await bystander.until(() => bystander.received.length === expected, `echo after ${what}`);
    }
    assert.equal(bystander.closeCode, undefined);
    assert.ok(server.sessionCounters.protocolErrors >= attacks.length);
    bystander.socket.close();
  });

  it("answers plain HTTP on /ws with 426 and elsewhere with 404", async () => {
    const server = await echoServer();
    assert.equal((await fetch(`http://127.0.0.1:${server.httpPort}/ws`)).status, 426);
    assert.equal((await fetch(`http://127.0.0.1:${server.httpPort}/nothing`)).status, 404);
  });
});
