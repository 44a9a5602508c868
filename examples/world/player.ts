/**
 * A player: position, score, and the handler of its session's messages. Players are bound by name
 * and never removed, so logging in again (after a logout, a crash or a restart) finds the same
 * object: the same place, the same score.
 */
import { managed, NameNotBoundError, type ClientSession, type ClientSessionListener, type Ref, type TaskContext } from "shardless";
import { encode, parseClientMessage, type PlayerView, type SessionReply } from "./protocol.ts";
import { itemBinding, Respawn, regionAt, type Item, type RegionMember } from "./region.ts";
import { distance, GRAB_RANGE_UNITS, inWorld, MOVE_BURST_UNITS, regionOf, sameRegion, spawnPoint, SPEED_UNITS_PER_S } from "./world-map.ts";

/** Settings chosen when the world was created (from the application properties). */
@managed("world.Settings")
export class Settings {
  constructor(
    /** How long a taken item stays gone, in ms of application time. */
    readonly respawnMs: number,
  ) {}
}

/** Binding of the world's {@link Settings}. */
export const SETTINGS_BINDING = "world.settings";

/** Binding of the player named `name`. */
export function playerBinding(name: string): string {
  return `world.player.${name}`;
}

/**
 * A player's lasting state (place, score) and the listener of its session. Every message runs as a
 * task on this object, so a player's moves and grabs are handled one at a time, in order.
 */
@managed("world.Player")
export class Player implements ClientSessionListener, RegionMember {
  score = 0;
  /** The session playing this player now; null while nobody is logged in as it. */
  session: Ref<ClientSession> | null = null;
  /** Distance the player may still move at once; refills at the speed limit, up to the burst. */
  moveBudgetUnits = MOVE_BURST_UNITS;
  /** Application time at which {@link moveBudgetUnits} was last brought up to date. */
  budgetAtMs = 0;

  constructor(
    readonly name: string,
    public x: number,
    public y: number,
  ) {}

  /** The player named `name`, created at its spawn point if it never played before. */
  static findOrCreate(ctx: TaskContext, name: string): Player {
    try {
      return ctx.data.getBinding<Player>(playerBinding(name));
    } catch (error) {
      if (!(error instanceof NameNotBoundError)) throw error;
    }
    const { x, y } = spawnPoint(name);
    const player = new Player(name, x, y);
    ctx.data.setBinding(playerBinding(name), player);
    return player;
  }

  /** What others see of this player. */
  view(): PlayerView {
    return { name: this.name, x: this.x, y: this.y, score: this.score };
  }

  /** `session` now plays this player: it enters its region and gets the region's snapshot. */
  attach(ctx: TaskContext, session: ClientSession): void {
    this.session = ctx.data.createReference(session);
    this.moveBudgetUnits = MOVE_BURST_UNITS;
    this.budgetAtMs = ctx.now();
    regionAt(ctx, this.x, this.y).enter(ctx, this, session);
  }

  receivedMessage(ctx: TaskContext, bytes: Uint8Array): void {
    const message = parseClientMessage(bytes);
    if (message === null) {
      ctx.log.debug("ignored a malformed message", { player: this.name, bytes: bytes.length });
      return;
    }
    switch (message.t) {
      case "move":
        return this.move(ctx, Math.round(message.x), Math.round(message.y));
      case "grab":
        return this.grab(ctx, message.item);
      case "ping":
        return this.reply({ t: "pong", id: message.id });
    }
  }

  disconnected(ctx: TaskContext): void {
    // The session has already left its channels; the region forgets the player and tells the others.
    regionAt(ctx, this.x, this.y).exit(this, null);
    this.session = null;
  }

  /**
   * Moves to (x, y) if that is inside the world and within reach at the speed limit; otherwise
   * tells the client where the player really is. Crossing into another region switches channels.
   */
  private move(ctx: TaskContext, x: number, y: number): void {
    if (!inWorld(x, y)) return this.refuseMove("outside the world");
    const step = distance(this.x, this.y, x, y);
    if (step === 0) return;
    this.refillBudget(ctx.now());
    if (step > this.moveBudgetUnits) return this.refuseMove("too fast");
    this.moveBudgetUnits -= step;
    const from = regionOf(this.x, this.y);
    const oldRegion = regionAt(ctx, this.x, this.y);
    this.x = x;
    this.y = y;
    if (sameRegion(from, regionOf(x, y))) {
      oldRegion.broadcast({ t: "moved", name: this.name, x, y });
      return;
    }
    const session = this.currentSession();
    oldRegion.exit(this, session);
    regionAt(ctx, x, y).enter(ctx, this, session);
  }

  private refillBudget(nowMs: number): void {
    const elapsedMs = Math.max(0, nowMs - this.budgetAtMs);
    this.moveBudgetUnits = Math.min(MOVE_BURST_UNITS, this.moveBudgetUnits + (SPEED_UNITS_PER_S * elapsedMs) / 1000);
    this.budgetAtMs = nowMs;
  }

  private refuseMove(reason: string): void {
    this.reply({ t: "refused", reason, x: this.x, y: this.y });
  }

  /**
   * Picks up the item `id` if it is up and within reach. The check and the taking are one
   * transaction: if another player's grab commits first, this task sees the item gone (or is
   * retried and then sees it), so the item is never given twice.
   */
  private grab(ctx: TaskContext, id: string): void {
    const item = findItem(ctx, id);
    if (item === null) return this.reply({ t: "missed", item: id, reason: "no such item" });
    if (!sameRegion(regionOf(item.x, item.y), regionOf(this.x, this.y))) return this.reply({ t: "missed", item: id, reason: "not in your region" });
    if (distance(this.x, this.y, item.x, item.y) > GRAB_RANGE_UNITS) return this.reply({ t: "missed", item: id, reason: "too far" });
    if (!item.up) return this.reply({ t: "missed", item: id, reason: "already taken" });
    item.up = false;
    this.score += item.value;
    const { respawnMs } = ctx.data.getBinding<Settings>(SETTINGS_BINDING);
    ctx.tasks.scheduleTask(new Respawn(ctx.data.createReference(item)), respawnMs);
    this.reply({ t: "got", item: id, score: this.score });
    regionAt(ctx, this.x, this.y).broadcast({ t: "taken", item: id, by: this.name, score: this.score });
  }

  private reply(message: SessionReply): void {
    this.currentSession().send(encode(message));
  }

  private currentSession(): ClientSession {
    if (this.session === null) throw new Error(`player ${this.name} has no session`);
    return this.session.get();
  }
}

/** The item with id `id`, or null: ids come from clients and may name nothing. */
function findItem(ctx: TaskContext, id: string): Item | null {
  try {
    return ctx.data.getBinding<Item>(itemBinding(id));
  } catch (error) {
    if (error instanceof NameNotBoundError) return null;
    throw error;
  }
}
