// The demo world's rules, played through the client SDK over WebSocket against a real server:
// logins, moves and the speed limit, region crossings, chat, items and their respawn, the
// simultaneous-grab race, and a world that survives a restart. Time is a ManualClock: nothing
// here waits on real time.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, type Session } from "@shardless/client";
import { ManualClock, SeededRandom, silentLogger, startServer, type Server, type StartServerOptions } from "shardless";
import WorldApp from "./app.ts";
import { withWorkers } from "../../packages/server/test/test-workers.ts";
import { Bot, BotStats } from "./bot.ts";
import { vetChat, MAX_CHAT_CHARS } from "./chat.ts";
import { playerBinding, type Player } from "./player.ts";
import { parseServerMessage, type ClientMessage, type ServerMessage } from "./protocol.ts";
import { WorldView } from "./world-view.ts";
import { distance, MOVE_BURST_UNITS, regionChannelName, SPEED_UNITS_PER_S, spawnPoint } from "./world-map.ts";

/** What worker threads import to learn the application's classes (when the test run has workers). */
const APP_MODULE = new URL("./app.ts", import.meta.url).href;

const RESPAWN_MS = 1000;
/** Application time that refills a whole move burst. */
const REFILL_MS = Math.ceil((MOVE_BURST_UNITS / SPEED_UNITS_PER_S) * 1000);
/** A step that always fits in a full burst. */
const STEP_UNITS = MOVE_BURST_UNITS - 5;
const WAIT_MS = 5000;

/** A player driven by a test: the SDK session, what it knows of its region, what it received. */
class TestPlayer {
  readonly view: WorldView;
  /** Messages received and not yet taken by {@link next}, in arrival order. */
  private inbox: ServerMessage[] = [];
  /** Channel joins and leaves, as "join <name>" / "leave <name>". */
  readonly channelEvents: string[] = [];
  private wake: (() => void)[] = [];

  private constructor(readonly session: Session) {
    this.view = new WorldView(session.name);
    const receive = (bytes: Uint8Array) => {
      const message = parseServerMessage(bytes);
      this.view.apply(message);
      this.inbox.push(message);
      this.notify();
    };
    session.on("message", receive);
    session.on("channelMessage", (_channel, bytes) => receive(bytes));
    session.on("channelJoin", (channel) => this.channelEvent(`join ${channel.name}`));
    session.on("channelLeave", (channel) => this.channelEvent(`leave ${channel.name}`));
    session.on("disconnect", () => this.notify());
  }

  static async login(url: string, name: string): Promise<TestPlayer> {
    const player = new TestPlayer(await connect({ url, name }));
    await player.next((m) => m.t === "region");
    return player;
  }

  get name(): string {
    return this.session.name;
  }

  send(message: ClientMessage): void {
    this.session.send(JSON.stringify(message));
  }

  /** Says `text` on the channel of the player's region. */
  chat(text: string): void {
    const channel = this.session.channel(regionChannelName(this.view.region!));
    assert.ok(channel, `${this.name} is not in its region's channel`);
    channel.send(text);
  }

  /** Takes the first received message that `match` accepts, waiting for it if need be. */
  async next<T extends ServerMessage = ServerMessage>(match: (message: ServerMessage) => boolean, what = "a message"): Promise<T> {
    return this.until(() => {
      const index = this.inbox.findIndex(match);
      return index < 0 ? undefined : (this.inbox.splice(index, 1)[0] as T);
    }, what);
  }

  /** True when a message that `match` accepts was received and not taken. */
  heard(match: (message: ServerMessage) => boolean): boolean {
    return this.inbox.some(match);
  }

  /**
   * A round trip through a task. Effects reach a client in commit order, so whatever was sent to
   * this client by a task that committed before the ping has arrived when the pong does.
   */
  async ping(): Promise<void> {
    const id = Math.random();
    this.send({ t: "ping", id });
    await this.next((m) => m.t === "pong" && m.id === id, "pong");
  }

  /** Waits for the channel event `event` ("join region 0,1"). */
  async channelEventSeen(event: string): Promise<void> {
    await this.until(() => (this.channelEvents.includes(event) ? true : undefined), event);
  }

  /** Waits until `check` returns a value, re-checking whenever something arrives. */
  private until<T>(check: () => T | undefined, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${what} within ${WAIT_MS} ms`)), WAIT_MS);
      const attempt = () => {
        const found = check();
        if (found === undefined) {
          this.wake.push(attempt);
          return;
        }
        clearTimeout(timer);
        resolve(found);
      };
      attempt();
    });
  }

  private channelEvent(event: string): void {
    this.channelEvents.push(event);
    this.notify();
  }

  private notify(): void {
    const waiting = this.wake;
    this.wake = [];
    for (const attempt of waiting) attempt();
  }
}

const isMove = (name: string, x?: number, y?: number) => (m: ServerMessage) => m.t === "moved" && m.name === name && (x === undefined || (m.x === x && m.y === y));
const isGrabAnswer = (item: string) => (m: ServerMessage) => (m.t === "got" || m.t === "missed") && m.item === item;

/**
 * Walks `player` to (x, y) in steps the speed limit allows, letting application time pass between
 * steps; each step waits for the server's answer (the move's echo, or a region snapshot).
 */
async function walkTo(player: TestPlayer, clock: ManualClock, x: number, y: number): Promise<void> {
  for (;;) {
    const me = player.view.me!;
    const left = distance(me.x, me.y, x, y);
    if (left === 0) return;
    const share = Math.min(1, STEP_UNITS / left);
    const to = { x: Math.round(me.x + (x - me.x) * share), y: Math.round(me.y + (y - me.y) * share) };
    clock.advance(REFILL_MS);
    player.send({ t: "move", ...to });
    const answer = await player.next((m) => isMove(player.name, to.x, to.y)(m) || m.t === "region" || m.t === "refused", "a move's answer");
    assert.notEqual(answer.t, "refused", `${player.name}'s step to ${to.x},${to.y} was refused`);
  }
}

async function start(options: Partial<StartServerOptions> & { clock: ManualClock }): Promise<{ server: Server; url: string }> {
  const server = await startServer(
    withWorkers(
      {
        app: WorldApp,
        durability: "memory",
        tcpPort: null,
        httpPort: 0,
        host: "127.0.0.1",
        logger: silentLogger,
        appProperties: { respawnMs: String(RESPAWN_MS) },
        ...options,
      },
      APP_MODULE,
    ),
  );
  return { server, url: `ws://127.0.0.1:${server.httpPort}/ws` };
}

describe("the world", () => {
  const clock = new ManualClock(0);
  let server: Server;
  let url: string;
  const players: TestPlayer[] = [];
  const login = async (name: string) => {
    const player = await TestPlayer.login(url, name);
    players.push(player);
    return player;
  };

  before(async () => ({ server, url } = await start({ clock })));
  after(async () => {
    for (const player of players) player.session.close();
    await server.close();
  });

  it("logs players in to the middle region with a snapshot, and tells the others", async () => {
    const ann = await login("ann");
    assert.deepEqual(ann.view.region, { rx: 1, ry: 1 });
    assert.deepEqual(ann.view.me, { name: "ann", ...spawnPoint("ann"), score: 0 });
    assert.equal(ann.view.items.size, 5);
    assert.ok([...ann.view.items.values()].every((item) => item.up));
    await ann.channelEventSeen("join region 1,1");

    const bob = await login("bob");
    const entered = await ann.next((m) => m.t === "enter" && m.player.name === "bob", "bob's arrival");
    assert.deepEqual(entered, { t: "enter", player: { name: "bob", ...spawnPoint("bob"), score: 0 } });
    assert.deepEqual([...bob.view.players.keys()].sort(), ["ann", "bob"]);
  });

  it("refuses a player's name that cannot be shown", async () => {
    await assert.rejects(connect({ url, name: "a\u0007b" }), { name: "LoginFailedError" });
    await assert.rejects(connect({ url, name: "x".repeat(25) }), { name: "LoginFailedError" });
  });

  it("moves players within the speed limit and refuses impossible moves", async () => {
    const cal = await login("cal");
    const dee = await login("dee");
    const start = cal.view.me!;

    clock.advance(REFILL_MS);
    cal.send({ t: "move", x: start.x + 30, y: start.y });
    await dee.next(isMove("cal", start.x + 30, start.y), "cal's move");

    cal.send({ t: "move", x: start.x + 30 + MOVE_BURST_UNITS, y: start.y }); // only 30 units are left
    assert.deepEqual(await cal.next((m) => m.t === "refused"), { t: "refused", reason: "too fast", x: start.x + 30, y: start.y });
    cal.send({ t: "move", x: start.x + 400, y: start.y + 100 }); // a teleport
    assert.deepEqual(await cal.next((m) => m.t === "refused"), { t: "refused", reason: "too fast", x: start.x + 30, y: start.y });
    cal.send({ t: "move", x: -1, y: start.y });
    assert.deepEqual(await cal.next((m) => m.t === "refused"), { t: "refused", reason: "outside the world", x: start.x + 30, y: start.y });
    cal.send({ t: "bogus" } as unknown as ClientMessage);
    cal.session.send("not json");

    clock.advance(REFILL_MS); // the budget refills with application time
    cal.send({ t: "move", x: start.x + 30 + STEP_UNITS, y: start.y });
    await dee.next(isMove("cal", start.x + 30 + STEP_UNITS, start.y), "cal's second move");
    await dee.ping();
    assert.equal(dee.heard(isMove("cal", start.x + 30 + MOVE_BURST_UNITS, start.y)), false, "a refused move is never shown");
    assert.deepEqual(await server.run("read", (ctx) => ({ ...ctx.data.getBinding<Player>(playerBinding("cal")).view() })), {
      name: "cal",
      x: start.x + 30 + STEP_UNITS,
      y: start.y,
      score: 0,
    });
  });

  it("moves a player across a region boundary: old channel left, new one joined, snapshot of the new region", async () => {
    const eve = await login("eve");
    const fay = await login("fay");
    await walkTo(eve, clock, 620, 600);
    eve.send({ t: "move", x: 590, y: 600 });
    const snapshot = await eve.next<Extract<ServerMessage, { t: "region" }>>((m) => m.t === "region", "the new region");
    assert.deepEqual({ rx: snapshot.rx, ry: snapshot.ry }, { rx: 0, ry: 1 });
    assert.deepEqual(snapshot.you, { name: "eve", x: 590, y: 600, score: 0 });
    assert.deepEqual(snapshot.items.map((item) => item.id), ["0-1-0", "0-1-1", "0-1-2", "0-1-3", "0-1-4"]);
    await eve.channelEventSeen("leave region 1,1");
    await eve.channelEventSeen("join region 0,1");
    await fay.next((m) => m.t === "exit" && m.name === "eve", "eve's exit");
    assert.deepEqual(fay.view.players.has("eve"), false);

    // fay follows: eve sees her arrive, fay's snapshot shows eve where she is.
    await walkTo(fay, clock, 590, 610);
    await eve.next((m) => m.t === "enter" && m.player.name === "fay", "fay's arrival");
    assert.deepEqual(fay.view.players.get("eve"), { name: "eve", x: 590, y: 600, score: 0 });
    eve.send({ t: "move", x: 580, y: 600 });
    await fay.next(isMove("eve", 580, 600), "eve's move in the new region");
  });

  it("carries chat to the speaker's region only, vetted", async () => {
    const gus = await login("gus");
    const hal = await login("hal");
    const ivy = await login("ivy");
    await walkTo(ivy, clock, 900, 390); // region 1,0
    assert.deepEqual(ivy.view.region, { rx: 1, ry: 0 });

    gus.chat("hi\u0007 there,\r\n\u202Ehal\u200B ");
    assert.deepEqual(await hal.next((m) => m.t === "chat"), { t: "chat", from: "gus", text: "hi there, hal" });
    gus.chat("\u0000\u0001 \t");
    gus.chat("x".repeat(500));
    assert.deepEqual(await hal.next((m) => m.t === "chat"), { t: "chat", from: "gus", text: "x".repeat(MAX_CHAT_CHARS) }, "an empty line is dropped, a long one cut");
    await gus.next((m) => m.t === "chat" && m.text.startsWith("hi"), "gus hears himself");
    await ivy.ping();
    assert.equal(ivy.heard((m) => m.t === "chat"), false, "another region hears nothing");
  });

  it("vets chat text", () => {
    assert.equal(vetChat("  a\tb\n\nc  "), "a b c");
    assert.equal(vetChat("\u0000\u001b[31m"), "[31m");
    assert.equal(vetChat("\u200B\u2066"), null);
    assert.equal(vetChat("é".repeat(300)), "é".repeat(MAX_CHAT_CHARS));
  });

  it("lets a player pick up an item in reach, once, until it respawns", async () => {
    const jon = await login("jon");
    const kim = await login("kim");
    jon.send({ t: "grab", item: "1-1-0" });
    assert.deepEqual(await jon.next(isGrabAnswer("1-1-0")), { t: "missed", item: "1-1-0", reason: "too far" });
    jon.send({ t: "grab", item: "0-0-0" });
    assert.deepEqual(await jon.next(isGrabAnswer("0-0-0")), { t: "missed", item: "0-0-0", reason: "not in your region" });
    jon.send({ t: "grab", item: "nothing" });
    assert.deepEqual(await jon.next(isGrabAnswer("nothing")), { t: "missed", item: "nothing", reason: "no such item" });

    await walkTo(jon, clock, 760, 510); // next to the coin at 750,500
    jon.send({ t: "grab", item: "1-1-0" });
    assert.deepEqual(await jon.next(isGrabAnswer("1-1-0")), { t: "got", item: "1-1-0", score: 1 });
    assert.deepEqual(await kim.next((m) => m.t === "taken"), { t: "taken", item: "1-1-0", by: "jon", score: 1 });
    assert.equal(kim.view.items.get("1-1-0")!.up, false);
    jon.send({ t: "grab", item: "1-1-0" });
    assert.deepEqual(await jon.next(isGrabAnswer("1-1-0")), { t: "missed", item: "1-1-0", reason: "already taken" });

    await server.whenIdle();
    clock.advance(RESPAWN_MS - 1);
    await kim.ping();
    assert.equal(kim.heard((m) => m.t === "spawn"), false, "not back before its time");
    clock.advance(1);
    const spawned = await kim.next((m) => m.t === "spawn", "the respawn");
    assert.deepEqual(spawned, { t: "spawn", item: { id: "1-1-0", kind: "coin", value: 1, x: 750, y: 500, up: true } });
    jon.send({ t: "grab", item: "1-1-0" });
    assert.deepEqual(await jon.next(isGrabAnswer("1-1-0")), { t: "got", item: "1-1-0", score: 2 });
  });

  it("gives an item grabbed by several players at once to exactly one of them, every time", async () => {
    const GEM = "1-1-2"; // at 900,600, worth 5
    const ROUNDS = 50;
    const racers = await Promise.all(["ron", "sue", "tom", "uma"].map((name) => login(name)));
    const spots = [
      [880, 600],
      [920, 600],
      [900, 580],
      [900, 620],
    ] as const;
    await Promise.all(racers.map((racer, i) => walkTo(racer, clock, spots[i]![0], spots[i]![1])));
    const wins = new Map(racers.map((racer) => [racer.name, 0]));

    for (let round = 0; round < ROUNDS; round++) {
      // Everyone's grab leaves in the same turn of the event loop; the order rotates every round.
      const order = racers.map((_, i) => racers[(i + round) % racers.length]!);
      for (const racer of order) racer.send({ t: "grab", item: GEM });
      const answers = await Promise.all(racers.map((racer) => racer.next(isGrabAnswer(GEM), `round ${round}'s answer`)));
      const winners = racers.filter((_, i) => answers[i]!.t === "got");
      assert.equal(winners.length, 1, `round ${round}: exactly one winner, got ${winners.map((w) => w.name).join(", ") || "none"}`);
      wins.set(winners[0]!.name, wins.get(winners[0]!.name)! + 1);
      for (const answer of answers) if (answer.t === "missed") assert.equal(answer.reason, "already taken");
      await server.whenIdle();
      clock.advance(RESPAWN_MS);
      await Promise.all(racers.map((racer) => racer.next((m) => m.t === "spawn" && m.item.id === GEM, "the gem's respawn")));
    }

    const stored = await server.run("scores", (ctx) => racers.map((racer) => ctx.data.getBinding<Player>(playerBinding(racer.name)).score));
    assert.deepEqual(stored, racers.map((racer) => wins.get(racer.name)! * 5), "each score is five per win");
    assert.equal(stored.reduce((a, b) => a + b, 0), ROUNDS * 5, "no gem was given twice or lost");
  });
});

describe("the world across a restart", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "world-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it("keeps players' positions and scores, and items still respawn, after the server stops and starts", async () => {
    const clock = new ManualClock(0);
    const first = await start({ clock, durability: "sync", dataDir });
    const vic = await TestPlayer.login(first.url, "vic");
    await walkTo(vic, clock, 1040, 510); // next to the coin at 1050,500
    vic.send({ t: "grab", item: "1-1-1" });
    assert.deepEqual(await vic.next(isGrabAnswer("1-1-1")), { t: "got", item: "1-1-1", score: 1 });
    const before = vic.view.me!;
    const ended = new Promise((resolve) => vic.session.on("disconnect", resolve));
    await first.server.close(); // the player is still connected: as if the server had died
    await ended;

    const secondClock = new ManualClock(0);
    const second = await start({ clock: secondClock, durability: "sync", dataDir });
    try {
      assert.equal(second.server.initialized, false);
      assert.equal(second.server.startup.endedSessions, 1);
      const again = await TestPlayer.login(second.url, "vic");
      assert.deepEqual(again.view.me, before);
      assert.deepEqual(again.view.me, { name: "vic", x: 1040, y: 510, score: 1 });
      assert.equal(again.view.items.get("1-1-1")!.up, false, "the coin is still gone");
      assert.deepEqual(again.view.players.size, 1, "the session that was cut off has left its region");
      await second.server.whenIdle();
      secondClock.advance(RESPAWN_MS); // the respawn was scheduled before the stop: it is durable
      await again.next((m) => m.t === "spawn" && m.item.id === "1-1-1", "the coin's respawn after the restart");
      again.session.close();
    } finally {
      await second.server.close();
    }
  });
});

/** A seeded generator (the server's `SeededRandom`), so that the bots' choices repeat from run to run. */
function seeded(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

describe("bots", () => {
  it("walk at a speed the server accepts, pick up items and measure latency", async () => {
    const clock = new ManualClock(0);
    const { server, url } = await start({ clock });
    after(() => server.close());
    const stats = new BotStats();
    const random = seeded(8);
    const bots = await Promise.all(["bot-1", "bot-2", "bot-3"].map(async (name) => new Bot(await connect({ url, name }), stats, random)));
    after(() => bots.forEach((bot) => bot.session.close()));
    await Promise.all(bots.map((bot) => bot.ping())); // the snapshot came with the login, before the pong

    const STEPS = 100;
    for (let i = 0; i < STEPS; i++) {
      clock.advance(100);
      for (const bot of bots) bot.step(100);
      // Each step waits for its moves to be handled, as a real run's 100 ms of wall time would.
      await Promise.all(bots.map((bot) => bot.ping()));
    }
    assert.equal(stats.refused, 0, "no move of a bot is refused");
    assert.ok(stats.moves > STEPS, `the bots walked (${stats.moves} moves)`);
    assert.ok(stats.got > 0, "the bots picked items up");
    assert.equal(stats.latenciesMs.length, bots.length * (STEPS + 1));
    const stored = await server.run("scores", (ctx) => bots.map((bot) => ctx.data.getBinding<Player>(playerBinding(bot.session.name)).score));
    assert.deepEqual(stored, bots.map((bot) => bot.view.me!.score), "each bot's score as the server told it is the stored one");
  });
});
