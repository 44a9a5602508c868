/**
 * Regions and their items. A region is a managed object with its own channel: its players hear
 * each other move and chat, and nobody else. An item is a managed object of its own, so picking it
 * up is a transaction on that one object: of two players grabbing it at once, exactly one commits.
 */
import { managed, type Channel, type ChannelListener, type ClientSession, type Ref, type Task, type TaskContext } from "shardless";
import { vetChat } from "./chat.ts";
import { encode, type ItemView, type PlayerView, type RegionEvent, type SessionReply } from "./protocol.ts";
import { regionOf, type ItemSpot, type RegionCoords } from "./world-map.ts";

/** Anything in a region that is a player: the region needs its name and what others see of it. */
export interface RegionMember {
  readonly name: string;
  view(): PlayerView;
}

/** Binding of a region's managed object. */
export function regionBinding({ rx, ry }: RegionCoords): string {
  return `world.region.${rx}.${ry}`;
}

/** Binding of an item's managed object. */
export function itemBinding(id: string): string {
  return `world.item.${id}`;
}

/** The region containing (x, y). */
export function regionAt(ctx: TaskContext, x: number, y: number): Region {
  return ctx.data.getBinding<Region>(regionBinding(regionOf(x, y)));
}

/** One square of the map: who is in it (online players only), its items and its channel. */
@managed("world.Region")
export class Region {
  /** Online players in this region, by name. */
  players = new Map<string, Ref<RegionMember>>();

  constructor(
    readonly rx: number,
    readonly ry: number,
    readonly channel: Ref<Channel>,
    readonly items: Ref<Item>[],
  ) {}

  /**
   * `member` arrives (logs in or crosses over): the others are told, `session` gets the snapshot
   * of the region and then joins its channel, so every later event applies on top of the snapshot.
   */
  enter(ctx: TaskContext, member: RegionMember, session: ClientSession): void {
    this.broadcast({ t: "enter", player: member.view() });
    this.players.set(member.name, ctx.data.createReference(member));
    session.send(encode(this.snapshot(member)));
    this.channel.get().join(session);
  }

  /** `member` goes (logs out, drops or crosses over); `session`, when still connected, leaves the channel. */
  exit(member: RegionMember, session: ClientSession | null): void {
    this.players.delete(member.name);
    if (session !== null) this.channel.get().leave(session);
    this.broadcast({ t: "exit", name: member.name });
  }

  /** Sends `event` to every player in the region. */
  broadcast(event: RegionEvent): void {
    this.channel.get().send(encode(event));
  }

  /** Everything a player entering the region needs to draw it. */
  snapshot(you: RegionMember): SessionReply {
    const players = [...this.players.values()].map((ref) => ref.get().view());
    const items = this.items.map((ref) => ref.get().view());
    return { t: "region", rx: this.rx, ry: this.ry, you: you.view(), players, items };
  }
}

/** Something to pick up. It lies at a fixed spot and comes back a while after it was taken. */
@managed("world.Item")
export class Item {
  /** False from the moment it is taken until its respawn task runs. */
  up = true;

  constructor(
    readonly id: string,
    readonly kind: string,
    readonly value: number,
    readonly x: number,
    readonly y: number,
  ) {}

  /** A new item for `spot`. */
  static at(spot: ItemSpot): Item {
    return new Item(spot.id, spot.kind, spot.value, spot.x, spot.y);
  }

  /** What players see of it. */
  view(): ItemView {
    return { id: this.id, kind: this.kind, value: this.value, x: this.x, y: this.y, up: this.up };
  }
}

/**
 * Brings an item back. Scheduled by the task that took the item, so it exists only if that task
 * committed, and it is durable: an item taken just before a crash still comes back after it.
 */
@managed("world.Respawn")
export class Respawn implements Task {
  constructor(readonly item: Ref<Item>) {}

  run(ctx: TaskContext): void {
    const item = this.item.getForUpdate();
    item.up = true;
    regionAt(ctx, item.x, item.y).broadcast({ t: "spawn", item: item.view() });
  }
}

/** Vets chat on a region's channel: what a player sends there is cleaned up and sent as a chat event. */
@managed("world.RegionChat")
export class RegionChat implements ChannelListener {
  receivedMessage(ctx: TaskContext, channel: Channel, sender: ClientSession, message: Uint8Array): void {
    const text = vetChat(new TextDecoder().decode(message));
    if (text === null) return;
    channel.send(encode({ t: "chat", from: sender.name, text }), sender);
  }
}
