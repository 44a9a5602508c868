// Protocol fuzzing over real TCP and WebSocket connections to a server in a child process: random
// and mutated frames of every client opcode, broken framing, garbage, frames split at random byte
// boundaries. Meanwhile well-behaved clients log in, echo and log out, and must see every reply in
// order. At the end the server is up, counted exactly the protocol errors the fuzzer predicted,
// holds no session of the attackers, and its heap has not grown past a generous bound.
//
// The server runs in its own process so that its memory is measured apart from the attackers'.
// FUZZ_SEED=<n> replays a run (the scripts, not the timing); FUZZ_FRAMES=<n> sets how many frames.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WebSocket } from "ws";
import { decodeServerMessage, encodeFrame, encodeMessage, type ClientMessage, type ServerMessage } from "@shardless/protocol";
import { seededRandom } from "./crash-harness.ts";
import { FrameFuzzer, type FuzzScript, type WirePiece } from "./frame-fuzzer.ts";
import { FuzzServer } from "./fuzz-server.ts";
import { RawClient } from "./raw-client.ts";

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const TARGET_FRAMES = Number(process.env.FUZZ_FRAMES ?? 100_000);
const CONCURRENCY = 48;
const MiB = 1024 * 1024;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const yieldToIo = () => new Promise((resolve) => setImmediate(resolve));

/** Writes `bytes` in 1 to 6 pieces cut at random points, letting I/O run between them. */
async function writeSplit(client: RawClient, bytes: Uint8Array, random: () => number): Promise<void> {
  const cuts = Array.from({ length: Math.floor(random() * 6) }, () => Math.floor(random() * bytes.length)).sort((a, b) => a - b);
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > from) {
      client.sendRaw(bytes.subarray(from, cut));
      await yieldToIo();
    }
    from = Math.max(from, cut);
  }
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** Reads session messages until the sentinel; they must be the expected echoes, in order. */
function checkEchoes(script: FuzzScript, received: Uint8Array[]): void {
  const login = script.login!;
  assert.equal(received.length, login.echoes.length, `connection ${script.index}: ${received.length} echoes before the sentinel, expected ${login.echoes.length}`);
  received.forEach((echo, i) => assert.equal(hex(echo), hex(login.echoes[i]!), `connection ${script.index}: echo ${i} differs`));
}

async function runTcp(port: number, script: FuzzScript): Promise<void> {
  const random = seededRandom((SEED ^ Math.imul(script.index + 7, 0x85ebca6b)) >>> 0);
  const client = await RawClient.open(port);
  try {
    await writeSplit(client, script.pre[0]!.bytes, random);
    const what = `connection ${script.index} (tcp, ${script.preOutcome})`;
    switch (script.preOutcome) {
      case "fatal":
      case "closing":
        await client.whenClosed(10_000).catch(() => assert.fail(`${what}: the server did not close it`));
        return;
      case "stray-login":
        return;
      case "partial":
        await pause(2);
        assert.equal(client.closed, false, `${what}: the server closed a connection holding a partial frame`);
        return;
      case "clean":
        break;
    }
    if (script.login === undefined) {
      await pause(2);
      assert.equal(client.closed, false, `${what}: the server closed a connection that sent only benign frames`);
      return;
    }
    client.send({ op: "LOGIN_REQUEST", version: 5, name: script.login.name, password: "" });
    const reply = await client.next(10_000);
    assert.equal(reply.op, "LOGIN_SUCCESS", `${what}: login answered ${JSON.stringify(reply)}`);
    await writeSplit(client, Buffer.concat([...script.login.post.map((piece) => piece.bytes), encodeFrame(encodeMessage({ op: "SESSION_MESSAGE", message: script.login.sentinel }))]), random);
    const echoes: Uint8Array[] = [];
    for (;;) {
      const message = await client.next(10_000);
      assert.equal(message.op, "SESSION_MESSAGE", `${what}: unexpected ${message.op}`);
      if (hex(message.message) === hex(script.login.sentinel)) break;
      echoes.push(message.message);
    }
    checkEchoes(script, echoes);
    if (script.postFatal !== undefined) {
      await writeSplit(client, script.postFatal.bytes, random);
      await client.whenClosed(10_000).catch(() => assert.fail(`${what}: a fatal frame after login did not close it`));
    } else if (script.end === "logout") {
      client.send({ op: "LOGOUT_REQUEST" });
      assert.deepEqual(await client.next(10_000), { op: "LOGOUT_SUCCESS" });
    }
  } finally {
    client.close();
  }
}

/** A WebSocket client for fuzzing: pieces are whole messages, maybe fragmented, maybe text. */
class FuzzWs {
  readonly received: ServerMessage[] = [];
  closed = false;
  private consumed = 0;
  private readonly ended: Promise<void>;

  private constructor(private readonly socket: WebSocket) {
    socket.on("error", () => undefined);
    socket.on("message", (data: Buffer) => this.received.push(decodeServerMessage(new Uint8Array(data))));
    this.ended = new Promise((resolve) =>
      socket.once("close", () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  static open(port: number): Promise<FuzzWs> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false });
      socket.once("open", () => resolve(new FuzzWs(socket)));
      socket.once("error", reject);
    });
  }

  async sendPiece(piece: WirePiece): Promise<void> {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    if (piece.text === true) this.socket.send(Buffer.from(piece.bytes).toString("latin1"));
    else if ((piece.fragments ?? 1) === 1 || piece.bytes.length < 2) this.socket.send(piece.bytes, { binary: true });
    else {
      const step = Math.ceil(piece.bytes.length / piece.fragments!);
      for (let at = 0; at < piece.bytes.length; at += step) this.socket.send(piece.bytes.subarray(at, at + step), { binary: true, fin: at + step >= piece.bytes.length });
    }
    await yieldToIo();
  }

  send(message: ClientMessage): void {
    this.socket.send(encodeMessage(message), { binary: true });
  }

  async next(what: string, timeoutMs = 10_000): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length <= this.consumed) {
      if (this.closed) assert.fail(`${what}: closed while waiting for a message`);
      if (Date.now() > deadline) assert.fail(`${what}: no message within ${timeoutMs} ms`);
      await pause(2);
    }
    return this.received[this.consumed++]!;
  }

  async whenClosed(what: string, timeoutMs = 10_000): Promise<void> {
    await Promise.race([this.ended, pause(timeoutMs).then(() => assert.fail(`${what}: the server did not close it`))]);
  }

  close(): void {
    this.socket.terminate();
  }
}

async function runWs(port: number, script: FuzzScript): Promise<void> {
  const client = await FuzzWs.open(port);
  const what = `connection ${script.index} (ws, ${script.preOutcome})`;
  try {
    for (const piece of script.pre) await client.sendPiece(piece);
    if (script.preOutcome === "fatal" || script.preOutcome === "closing") return await client.whenClosed(what);
    if (script.preOutcome === "stray-login") return;
    if (script.login === undefined) {
      await pause(2);
      assert.equal(client.closed, false, `${what}: the server closed a connection that sent only benign messages`);
      return;
    }
    client.send({ op: "LOGIN_REQUEST", version: 5, name: script.login.name, password: "" });
    const reply = await client.next(what);
    assert.equal(reply.op, "LOGIN_SUCCESS", `${what}: login answered ${JSON.stringify(reply)}`);
    for (const piece of script.login.post) await client.sendPiece(piece);
    client.send({ op: "SESSION_MESSAGE", message: script.login.sentinel });
    const echoes: Uint8Array[] = [];
    for (;;) {
      const message = await client.next(what);
      assert.equal(message.op, "SESSION_MESSAGE", `${what}: unexpected ${message.op}`);
      if (hex(message.message) === hex(script.login.sentinel)) break;
      echoes.push(message.message);
    }
    checkEchoes(script, echoes);
    if (script.postFatal !== undefined) {
      await client.sendPiece(script.postFatal);
      await client.whenClosed(what);
    } else if (script.end === "logout") {
      client.send({ op: "LOGOUT_REQUEST" });
      assert.deepEqual(await client.next(what), { op: "LOGOUT_SUCCESS" });
    }
  } finally {
    client.close();
  }
}

/** A client that behaves: logs in, echoes 40 messages (pipelined), logs out, again and again. */
async function wellBehaved(server: FuzzServer, k: number, transport: "tcp" | "ws", running: () => boolean): Promise<number> {
  let echoes = 0;
  for (let cycle = 0; running(); cycle++) {
    const name = `good-${k}-${cycle}`;
    const texts = Array.from({ length: 40 }, (_, j) => `${name} says ${j}`);
    const encoder = new TextEncoder();
    if (transport === "tcp") {
      const client = await RawClient.login(server.tcpPort, name);
      for (const text of texts) client.say(text);
      for (const text of texts) assert.equal(await client.nextText(10_000), text, `${name}: replies out of order`);
      client.send({ op: "LOGOUT_REQUEST" });
      assert.deepEqual(await client.next(10_000), { op: "LOGOUT_SUCCESS" });
      client.close();
    } else {
      const client = await FuzzWs.open(server.httpPort);
      client.send({ op: "LOGIN_REQUEST", version: 5, name, password: "" });
      assert.equal((await client.next(name)).op, "LOGIN_SUCCESS");
      for (const text of texts) client.send({ op: "SESSION_MESSAGE", message: encoder.encode(text) });
      for (const text of texts) {
        const message = await client.next(name);
        assert.ok(message.op === "SESSION_MESSAGE" && new TextDecoder().decode(message.message) === text, `${name}: replies out of order`);
      }
      client.send({ op: "LOGOUT_REQUEST" });
      assert.deepEqual(await client.next(name), { op: "LOGOUT_SUCCESS" });
      client.close();
    }
    echoes += texts.length;
  }
  return echoes;
}

describe("protocol fuzzing over real sockets", () => {
  it(`survives ${TARGET_FRAMES.toLocaleString("en")}+ random and mutated frames over TCP and WebSocket (seed ${SEED})`, { timeout: 120_000 }, async (t) => {
    t.diagnostic(`fuzz seed ${SEED}; replay with FUZZ_SEED=${SEED}`);
    const fuzzer = new FrameFuzzer(SEED);
    const scripts: FuzzScript[] = [];
    let frames = 0;
    while (frames < TARGET_FRAMES) {
      const script = fuzzer.script(scripts.length);
      scripts.push(script);
      frames += script.frames;
    }
    const server = await FuzzServer.start();
    try {
      const before = await server.stats(true);
      let running = true;
      const good = [
        wellBehaved(server, 0, "tcp", () => running),
        wellBehaved(server, 1, "tcp", () => running),
        wellBehaved(server, 2, "tcp", () => running),
        wellBehaved(server, 3, "ws", () => running),
      ];
      let peak = before;
      const sampler = setInterval(() => {
        void server.stats(false).then((stats) => {
          if (stats.rssBytes > peak.rssBytes) peak = { ...stats, heapUsedBytes: Math.max(stats.heapUsedBytes, peak.heapUsedBytes) };
          else if (stats.heapUsedBytes > peak.heapUsedBytes) peak = { ...peak, heapUsedBytes: stats.heapUsedBytes };
        }, () => undefined);
      }, 250);
      const failures: string[] = [];
      let nextScript = 0;
      const worker = async () => {
        while (nextScript < scripts.length && failures.length < 10) {
          const script = scripts[nextScript++]!;
          try {
            await (script.transport === "tcp" ? runTcp(server.tcpPort, script) : runWs(server.httpPort, script));
          } catch (error) {
            failures.push(`${(error as Error).message} [script ${script.index}, seed ${SEED}]`);
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      running = false;
      const goodEchoes = (await Promise.all(good)).reduce((sum, n) => sum + n, 0);
      clearInterval(sampler);
      assert.deepEqual(failures, [], `seed ${SEED}`);
      assert.ok(server.running, "the server is still up");

      // Every attacker's session ends: none is left behind.
      let after = await server.stats(true);
      for (let i = 0; i < 200 && after.sessionCount > 0; i++) {
        await pause(50);
        after = await server.stats(true);
      }
      assert.equal(after.sessionCount, 0, "no session outlives its connection");
      const fresh = await RawClient.login(server.tcpPort, "after-the-storm");
      fresh.say("still here");
      assert.equal(await fresh.nextText(), "still here");
      fresh.close();

      const expectedErrors = scripts.reduce((sum, script) => sum + script.protocolErrors, 0);
      const counted = after.counters.protocolErrors - before.counters.protocolErrors;
      const byOutcome = new Map<string, number>();
      for (const script of scripts) {
        const key = `${script.transport}/${script.preOutcome}${script.login ? "+login" : ""}${script.postFatal ? "+fatal" : ""}`;
        byOutcome.set(key, (byOutcome.get(key) ?? 0) + 1);
      }
      const mutated = scripts.reduce((sum, script) => sum + script.mutated, 0);
      const heapGrowth = after.heapUsedBytes - before.heapUsedBytes;
      t.diagnostic(
        `frames ${frames} (${mutated} mutated or random) over ${scripts.length} connections; good echoes ${goodEchoes}; ` +
          `protocol errors counted ${counted}, predicted ${expectedErrors}; dropped before login ${after.counters.droppedMessages - before.counters.droppedMessages}; ` +
          `server heap ${(before.heapUsedBytes / MiB).toFixed(1)} → peak ${(peak.heapUsedBytes / MiB).toFixed(1)} → ${(after.heapUsedBytes / MiB).toFixed(1)} MiB after gc; ` +
          `RSS ${(before.rssBytes / MiB).toFixed(1)} → peak ${(peak.rssBytes / MiB).toFixed(1)} → ${(after.rssBytes / MiB).toFixed(1)} MiB; ` +
          `connections by outcome ${JSON.stringify(Object.fromEntries(byOutcome))}`,
      );
      assert.ok(frames >= TARGET_FRAMES);
      assert.ok(goodEchoes > 0, "the well-behaved clients were served during the fuzzing");
      assert.ok(counted > 0, "the protocol error counter moved");
      assert.equal(counted, expectedErrors, "every fatal frame, and nothing else, counted as a protocol error");
      assert.ok(heapGrowth < 64 * MiB, `heap grew by ${(heapGrowth / MiB).toFixed(1)} MiB`);
      assert.ok(peak.rssBytes - before.rssBytes < 512 * MiB, `RSS peaked ${((peak.rssBytes - before.rssBytes) / MiB).toFixed(1)} MiB above the start`);
    } finally {
      await server.close();
    }
  });
});
