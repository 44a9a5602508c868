/**
 * A bot: a player played by code through the client SDK. It walks toward items (or anywhere, now
 * and then crossing into another region), picks up what it reaches, chats sometimes, and measures
 * its latency with pings. `bots.ts` runs many of them; the tests drive a few step by step.
 */
import type { Session } from "@shardless/client";
import { parseServerMessage, type ClientMessage, type ServerMessage } from "./protocol.ts";
import { WorldView } from "./world-view.ts";
import { distance, GRAB_RANGE_UNITS, regionChannelName, WORLD_HEIGHT, WORLD_WIDTH } from "./world-map.ts";

/** How fast bots walk: below the server's limit, so that jitter never gets a move refused. */
export const BOT_UNITS_PER_S = 180;
/** Chance, per step, that a bot says something. */
const CHAT_CHANCE_PER_STEP = 0.003;
/** Chance that a bot's next goal is an item of its region rather than a random spot in the world. */
const ITEM_GOAL_CHANCE = 0.7;
const LINES = ["hi!", "anyone seen the gem?", "one world, no shards", "coming through", "gg", "that coin was mine", "nice weather in this region"];

/** What all the bots of a run have done; read and reset by whoever reports it. */
export class BotStats {
  moves = 0;
  refused = 0;
  got = 0;
  missed = 0;
  chats = 0;
  /** Ping round trips since the last report, in ms. */
  latenciesMs: number[] = [];
}

/** One bot on one session. Call {@link step} regularly; everything else follows from messages. */
export class Bot {
  readonly view: WorldView;
  /** Where the bot walks; `item` is the item it walks to, if any. */
  private goal: { x: number; y: number; item: string | null } | null = null;
  private readonly grabbing = new Set<string>();
  private readonly pings = new Map<number, { sentAt: number; done: (ms: number) => void }>();
  private nextPingId = 1;

  constructor(
    readonly session: Session,
    private readonly stats: BotStats,
    /** Uniform in [0, 1); pass a seeded one for repeatable runs. */
    private readonly random: () => number = Math.random,
  ) {
    this.view = new WorldView(session.name);
    session.on("message", (bytes) => this.receive(parseServerMessage(bytes)));
    session.on("channelMessage", (_channel, bytes) => this.receive(parseServerMessage(bytes)));
  }

  /** Walks for `elapsedMs` toward the current goal, grabs what is in reach, maybe chats. */
  step(elapsedMs: number): void {
    const me = this.view.me;
    if (me === undefined || !this.session.connected) return;
    const goal = (this.goal ??= this.chooseGoal());
    const left = distance(me.x, me.y, goal.x, goal.y);
    if (left < 1) {
      this.goal = null;
      return;
    }
    const share = Math.min(1, ((BOT_UNITS_PER_S * elapsedMs) / 1000) / left);
    const x = Math.round(me.x + (goal.x - me.x) * share);
    const y = Math.round(me.y + (goal.y - me.y) * share);
    if (x === me.x && y === me.y) return;
    this.view.players.set(me.name, { ...me, x, y }); // predicted; the server corrects a refused move
    this.send({ t: "move", x, y });
    this.stats.moves++;
    this.grabWhatIsNear(x, y);
    if (this.random() < CHAT_CHANCE_PER_STEP) this.chat(LINES[Math.floor(this.random() * LINES.length)]!);
  }

  /** Sends a ping; resolves with the round trip in ms (through a task on the server). */
  ping(): Promise<number> {
    const id = this.nextPingId++;
    return new Promise((resolve) => {
      this.pings.set(id, { sentAt: performance.now(), done: resolve });
      this.send({ t: "ping", id });
    });
  }

  private receive(message: ServerMessage): void {
    this.view.apply(message);
    switch (message.t) {
      case "region":
        this.goal = null; // a new region: look around again
        return;
      case "got":
      case "missed":
        this.grabbing.delete(message.item);
        if (message.t === "got") this.stats.got++;
        else this.stats.missed++;
        return;
      case "refused":
        this.stats.refused++;
        this.goal = null;
        return;
      case "taken":
        if (this.goal?.item === message.item) this.goal = null; // someone was faster
        return;
      case "pong":
        return this.pong(message.id);
      default:
        return;
    }
  }

  private pong(id: number): void {
    const ping = this.pings.get(id);
    if (ping === undefined) return;
    this.pings.delete(id);
    const ms = performance.now() - ping.sentAt;
    this.stats.latenciesMs.push(ms);
    ping.done(ms);
  }

  /** The nearest item that is up, most of the time; otherwise any spot in the world. */
  private chooseGoal(): { x: number; y: number; item: string | null } {
    const me = this.view.me!;
    const items = [...this.view.items.values()].filter((item) => item.up);
    if (items.length > 0 && this.random() < ITEM_GOAL_CHANCE) {
      const nearest = items.reduce((best, item) => (distance(me.x, me.y, item.x, item.y) < distance(me.x, me.y, best.x, best.y) ? item : best));
      return { x: nearest.x, y: nearest.y, item: nearest.id };
    }
    return { x: Math.floor(this.random() * WORLD_WIDTH), y: Math.floor(this.random() * WORLD_HEIGHT), item: null };
  }

  private grabWhatIsNear(x: number, y: number): void {
    for (const item of this.view.items.values()) {
      if (!item.up || this.grabbing.has(item.id) || distance(x, y, item.x, item.y) > GRAB_RANGE_UNITS) continue;
      this.grabbing.add(item.id);
      this.send({ t: "grab", item: item.id });
    }
  }

  private chat(text: string): void {
    const region = this.view.region;
    const channel = region === null ? undefined : this.session.channel(regionChannelName(region));
    if (channel === undefined) return;
    channel.send(text);
    this.stats.chats++;
  }

  private send(message: ClientMessage): void {
    if (this.session.connected) this.session.send(JSON.stringify(message));
  }
}
