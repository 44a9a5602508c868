// Hostile clients cost the server bounded memory, measured on a server in a process of its own:
// clients that never read what they asked for are cut off at their write buffer, and thousands of
// idle connections and sessions cost a few kilobytes each. Figures are printed for the docs.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { describe, it } from "node:test";
import { encodeFrame, encodeMessage } from "@shardless/protocol";
import { FuzzServer } from "./fuzz-server.ts";
import { RawClient } from "./raw-client.ts";

const MiB = 1024 * 1024;
const KiB = 1024;

async function until(what: string, predicate: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" }, () => resolve(socket));
    socket.once("error", reject);
  });
}

describe("memory under hostile clients", () => {
  it("cuts off clients that never read at their write buffer, and gives the memory back", async (t) => {
    const server = await FuzzServer.start();
    t.after(() => server.close());
    const before = await server.stats(true);
    const readers = 10;
    const messages = 512;
    const clients = await Promise.all(Array.from({ length: readers }, (_, i) => RawClient.login(server.tcpPort, `deaf-${i}`)));
    // Each asks for 8 MiB of echoes and reads none of them: 64 times its 128 KiB write buffer, and
    // more than the kernel's buffers of a loopback connection take in (Linux lets a socket's send
    // buffer grow to 4 MiB, tcp_wmem's default maximum), so that the server's buffer must fill.
    const chunk = encodeFrame(encodeMessage({ op: "SESSION_MESSAGE", message: new Uint8Array(16 * KiB) }));
    for (const client of clients) {
      client.socket.pause();
      for (let i = 0; i < messages; i++) client.socket.write(chunk);
    }
    let peakHeap = 0;
    await until("every deaf client cut off", async () => {
      const stats = await server.stats(false);
      peakHeap = Math.max(peakHeap, stats.heapUsedBytes);
      return stats.sessionCount === 0;
    });
    const after = await server.stats(true);
    const asked = readers * messages * 16 * KiB;
    t.diagnostic(
      `deaf readers: ${readers} asked for ${(asked / MiB).toFixed(0)} MiB of echoes; server heap ${(before.heapUsedBytes / MiB).toFixed(1)} → peak ${(peakHeap / MiB).toFixed(1)} → ${(after.heapUsedBytes / MiB).toFixed(1)} MiB after gc`,
    );
    for (const client of clients) client.socket.destroy();
    assert.ok(peakHeap - before.heapUsedBytes < asked / 4, "the server never held more than a quarter of what was asked");
    assert.ok(after.heapUsedBytes - before.heapUsedBytes < 16 * MiB, "and gave it back");
  });

  it("costs a few kilobytes per idle connection and per idle session", async (t) => {
    const server = await FuzzServer.start();
    t.after(() => server.close());
    const before = await server.stats(true);
    const connections = 1000;
    const idle = await Promise.all(Array.from({ length: connections }, () => open(server.tcpPort)));
    const withConnections = await server.stats(true);
    const sessions: RawClient[] = [];
    for (let i = 0; i < connections; i += 50) sessions.push(...(await Promise.all(Array.from({ length: 50 }, (_, j) => RawClient.login(server.tcpPort, `idle-${i + j}`)))));
    await until("every session", async () => (await server.stats(false)).sessionCount === connections);
    const withSessions = await server.stats(true);
    const perConnection = (withConnections.heapUsedBytes - before.heapUsedBytes) / connections;
    const perSession = (withSessions.heapUsedBytes - withConnections.heapUsedBytes) / connections;
    t.diagnostic(`per idle connection ${(perConnection / KiB).toFixed(1)} KiB of heap; per logged-in session ${(perSession / KiB).toFixed(1)} KiB more; RSS ${(before.rssBytes / MiB).toFixed(0)} → ${(withSessions.rssBytes / MiB).toFixed(0)} MiB`);
    for (const socket of idle) socket.destroy();
    for (const client of sessions) client.close();
    assert.ok(perConnection < 16 * KiB, `an idle connection costs ${(perConnection / KiB).toFixed(1)} KiB`);
    assert.ok(perSession < 32 * KiB, `a session costs ${(perSession / KiB).toFixed(1)} KiB`);
  });
});
