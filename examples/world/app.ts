/**
 * The demo world: a 3×3 grid of regions where players walk, chat and pick up items that come back
 * on timers. Every handler is a plain synchronous method run as a transaction, so the world is
 * durable after every step and no two players can ever take the same item.
 *
 * Application properties: `respawnMs`, how long a taken item stays gone (default 15000).
 */
import { Delivery, managed, type AppListener, type ClientSession, type ClientSessionListener, type TaskContext } from "shardless";
import { Player, Settings, SETTINGS_BINDING } from "./player.ts";
import { Item, itemBinding, Region, regionBinding, RegionChat } from "./region.ts";
import { allRegions, DEFAULT_RESPAWN_MS, itemSpots, regionChannelName, type RegionCoords } from "./world-map.ts";

/** Longest player name, in characters. */
export const MAX_NAME_CHARS = 24;

/** True for names that fit on the map: 1 to {@link MAX_NAME_CHARS} characters, none of them invisible. */
export function isPlayableName(name: string): boolean {
  const length = Array.from(name).length;
  return length >= 1 && length <= MAX_NAME_CHARS && !/[\p{Cc}\p{Cf}]/u.test(name) && name.trim() === name;
}

/** The world's application listener: builds the world once, then lets players in by name. */
@managed("world.App")
export default class WorldApp implements AppListener {
  initialize(ctx: TaskContext, props: Readonly<Record<string, string>>): void {
    const respawnMs = Number(props.respawnMs ?? DEFAULT_RESPAWN_MS);
    if (!(Number.isFinite(respawnMs) && respawnMs >= 0)) throw new Error(`respawnMs must be a number of ms ≥ 0, got ${props.respawnMs}`);
    ctx.data.setBinding(SETTINGS_BINDING, new Settings(respawnMs));
    for (const coords of allRegions()) createRegion(ctx, coords);
    ctx.log.info("created the world", { regions: allRegions().length, respawnMs });
  }

  loggedIn(ctx: TaskContext, session: ClientSession): ClientSessionListener | null {
    if (!isPlayableName(session.name)) return null;
    const player = Player.findOrCreate(ctx, session.name);
    player.attach(ctx, session);
    ctx.log.info("player logged in", { player: player.name, x: player.x, y: player.y, score: player.score });
    return player;
  }
}

/** A region with its channel (chat vetted by {@link RegionChat}) and its items, each bound by id. */
function createRegion(ctx: TaskContext, coords: RegionCoords): void {
  const channel = ctx.channels.createChannel(regionChannelName(coords), new RegionChat(), Delivery.RELIABLE);
  const items = itemSpots(coords).map((spot) => {
    const item = Item.at(spot);
    ctx.data.setBinding(itemBinding(spot.id), item);
    return ctx.data.createReference(item);
  });
  ctx.data.setBinding(regionBinding(coords), new Region(coords.rx, coords.ry, ctx.data.createReference(channel), items));
}
