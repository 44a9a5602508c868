// Clients that never log in, and login floods, over real sockets. What sessions.test.ts and
// hardening.test.ts already cover (one idle connection closed at the login timeout; one login
// refused past a limit of 1) is not repeated: these are the crowds, and what they must not do to
// everyone else.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_CONFIG, SystemClock, type Authenticator, type Server, type StartServerOptions } from "shardless";
import EchoApp from "./fixtures/echo-app.ts";
import { eventually, testServer } from "./helpers.ts";
import { RawClient } from "./raw-client.ts";

function server(options: Partial<StartServerOptions> = {}): Promise<Server> {
  return testServer({ app: EchoApp, clock: new SystemClock(), tcpPort: 0, host: "127.0.0.1", disconnectDelayMs: 100, ...options }, import.meta.url);
}

/** Echoes numbered messages one at a time until stopped; every reply must be the one expected. */
function keepEchoing(client: RawClient, prefix: string): { stop: () => Promise<number> } {
  let running = true;
  const loop = (async () => {
    let n = 0;
    while (running) {
      client.say(`${prefix} ${n}`);
      assert.equal(await client.nextText(10_000), `${prefix} ${n}`);
      n++;
    }
    return n;
  })();
  return {
    stop: async () => {
      running = false;
      return loop;
    },
  };
}

/** Opens a connection and sends a login request, without waiting for the answer. */
async function loginRequest(s: Server, name: string): Promise<RawClient> {
  const client = await RawClient.open(s.tcpPort!);
  client.send({ op: "LOGIN_REQUEST", version: 5, name, password: "" });
  return client;
}

/** An authenticator that holds every check until released, and counts how many it holds. */
class HoldingAuthenticator implements Authenticator {
  pending: ((ok: boolean) => void)[] = [];
  calls = 0;
  authenticate(): Promise<boolean> {
    this.calls++;
    return new Promise((resolve) => this.pending.push(resolve));
  }
  releaseAll(ok = true): void {
    const pending = this.pending;
    this.pending = [];
    for (const resolve of pending) resolve(ok);
  }
}

describe("clients that never log in", () => {
  it("closes a crowd of silent, half-framed and chattering connections at the login timeout, and no one else", async () => {
    const s = await server({ loginTimeoutMs: 300 });
    const steady = await RawClient.login(s.tcpPort!, "steady");
    const echoing = keepEchoing(steady, "steady");
    const silent = await Promise.all(Array.from({ length: 60 }, () => RawClient.open(s.tcpPort!)));
    const halfFramed = await Promise.all(Array.from({ length: 40 }, () => RawClient.open(s.tcpPort!)));
    // Half a login frame, then nothing: the server holds the partial frame until the timeout.
    for (const client of halfFramed) client.sendRaw("00 0b 10 05 00 03 62");
    const chattering = await Promise.all(Array.from({ length: 40 }, () => RawClient.open(s.tcpPort!)));
    // Messages before login are dropped; they must not count as a login, nor put the timeout off.
    const chatter = setInterval(() => {
      for (const client of chattering) if (!client.closed) client.say("let me in");
    }, 50);
    try {
      for (const client of [...silent, ...halfFramed, ...chattering]) await client.whenClosed(10_000);
    } finally {
      clearInterval(chatter);
    }
    for (const client of [...silent, ...halfFramed, ...chattering]) assert.equal(client.bytes.length, 0, "a connection that never logged in is told nothing");
    const echoed = await echoing.stop();
    assert.ok(echoed > 0);
    assert.equal(steady.closed, false, "the logged-in session was not touched");
    assert.equal(s.sessionCount, 1);
    assert.ok(s.sessionCounters.droppedMessages > 0, "the chatter was dropped");
    steady.close();
  });

  it("closes a connection whose login is still being checked at the timeout, and creates no session when the check ends", async () => {
    const authenticator = new HoldingAuthenticator();
    const s = await server({ loginTimeoutMs: 200, authenticator, maxPendingLoginsPerAddress: 2 });
    const stuck = await Promise.all(["stuck-1", "stuck-2"].map((name) => loginRequest(s, name)));
    for (const client of stuck) await client.whenClosed(10_000);
    await eventually("both checks to start", () => Promise.resolve(authenticator.calls), (calls) => calls === 2);
    authenticator.releaseAll(true);
    // The check may end in the instant between the close and the server noticing it; a session
    // made then is ended at once. None may stay.
    await eventually("no session left", () => s.whenIdle().then(() => s.sessionCounters), (counters) => counters.logins === counters.disconnects);
    assert.equal(s.sessionCount, 0, "a login whose connection is gone leaves no session");
    // The two checks no longer count against the address: two more logins are checked at once.
    const next = await Promise.all(["next-1", "next-2"].map((name) => loginRequest(s, name)));
    await eventually("two more checks", () => Promise.resolve(authenticator.calls), (calls) => calls === 4);
    authenticator.releaseAll(true);
    for (const client of next) {
      assert.equal((await client.next()).op, "LOGIN_SUCCESS");
      client.close();
    }
  });
});

describe("login floods", () => {
  it("checks at most maxPendingLoginsPerAddress logins of one address at once, refuses the rest, and keeps serving sessions", async () => {
    const limit = DEFAULT_CONFIG.maxPendingLoginsPerAddress;
    const authenticator = new HoldingAuthenticator();
    let admit = true;
    // The steady client logs in before the flood; after that every check is held.
    const gate: Authenticator = { authenticate: () => (admit ? true : authenticator.authenticate()) };
    const s = await server({ authenticator: gate });
    const steady = await RawClient.login(s.tcpPort!, "steady");
    admit = false;
    const echoing = keepEchoing(steady, "during the flood");

    const FLOOD = 300;
    const flood = await Promise.all(Array.from({ length: FLOOD }, (_, i) => loginRequest(s, `flood-${i}`)));
    // Every login past the limit is refused at once, with the generic reason; `limit` are held.
    const answered = () => flood.filter((client) => client.received.length > 0);
    await eventually("every refusal", () => Promise.resolve(answered().length), (n) => n === FLOOD - limit, 10_000);
    assert.equal(authenticator.calls, limit, "no more checks than the limit ran at once");
    for (const client of answered()) assert.deepEqual(client.received[0], { op: "LOGIN_FAILURE", reason: "login refused" });
    assert.ok((await echoing.stop()) > 0, "the logged-in session was served during the flood");

    // The held checks finish: exactly those log in; the counter for the address is back at 0, so
    // a second wave of `limit` concurrent logins is checked in full.
    authenticator.releaseAll(true);
    const held = flood.filter((client) => client.received[0]?.op !== "LOGIN_FAILURE");
    assert.equal(held.length, limit);
    for (const client of held) assert.equal((await client.next()).op, "LOGIN_SUCCESS");
    const wave = await Promise.all(Array.from({ length: limit }, (_, i) => loginRequest(s, `wave-${i}`)));
    await eventually("the second wave's checks", () => Promise.resolve(authenticator.calls), (calls) => calls === 2 * limit);
    authenticator.releaseAll(true);
    for (const client of wave) assert.equal((await client.next()).op, "LOGIN_SUCCESS");
    assert.equal(s.sessionCount, 1 + 2 * limit);
    for (const client of [...flood, ...wave, steady]) client.close();
  });
});

describe("connections per address", () => {
  it("closes at once the connections of an address past maxConnectionsPerAddress, and admits again when one closes", async () => {
    const s = await server({ maxConnectionsPerAddress: 3 });
    const admitted = await Promise.all([0, 1, 2].map((i) => RawClient.login(s.tcpPort!, `held-${i}`)));
    const extra = await Promise.all([0, 1].map(() => RawClient.open(s.tcpPort!)));
    await Promise.all(extra.map((client) => client.whenClosed()));
    assert.equal(s.sessionCounters.refusedConnections, 2);
    assert.equal(s.sessionCount, 3, "the admitted sessions are untouched");
    admitted[0]!.close();
    await eventually("the address's count to drop", () => Promise.resolve(s.sessionCount), (count) => count === 2);
    const again = await RawClient.login(s.tcpPort!, "again");
    assert.equal(s.sessionCount, 3);
    for (const client of [...admitted, again]) client.close();
  });

  it("refuses a bad limit by name", async () => {
    await assert.rejects(server({ maxConnectionsPerAddress: 0 }), /maxConnectionsPerAddress must be a whole number > 0/);
  });
});
