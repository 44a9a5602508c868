/**
 * A client's picture of its region, kept up to date from the server's messages. Used by the bots
 * and the tests; the browser page keeps the same picture in plain JavaScript (public/world.js).
 */
import type { ItemView, PlayerView, ServerMessage } from "./protocol.ts";

/** What one client knows: its own player, and the players and items of its region. */
export class WorldView {
  /** The region the client is in, once the first snapshot arrived. */
  region: { rx: number; ry: number } | null = null;
  /** Players of the region by name, this client's own included. */
  readonly players = new Map<string, PlayerView>();
  /** Items of the region by id. */
  readonly items = new Map<string, ItemView>();
  /** Chat lines heard in the region, oldest first. */
  readonly chat: { from: string; text: string }[] = [];

  constructor(
    /** The name this client plays. */
    readonly name: string,
  ) {}

  /** This client's own player, once the first snapshot arrived. */
  get me(): PlayerView | undefined {
    return this.players.get(this.name);
  }

  /** Applies one message from the server. */
  apply(message: ServerMessage): void {
    switch (message.t) {
      case "region":
        this.region = { rx: message.rx, ry: message.ry };
        this.players.clear();
        this.items.clear();
        for (const player of [...message.players, message.you]) this.players.set(player.name, player);
        for (const item of message.items) this.items.set(item.id, item);
        return;
      case "enter":
        this.players.set(message.player.name, message.player);
        return;
      case "exit":
        this.players.delete(message.name);
        return;
      case "moved":
      case "refused":
        this.place(message.t === "moved" ? message.name : this.name, message.x, message.y);
        return;
      case "taken":
        this.setItemUp(message.item, false);
        this.setScore(message.by, message.score);
        return;
      case "got":
        this.setItemUp(message.item, false);
        this.setScore(this.name, message.score);
        return;
      case "spawn":
        this.items.set(message.item.id, message.item);
        return;
      case "chat":
        this.chat.push({ from: message.from, text: message.text });
        return;
      default:
        return; // pong and missed change nothing here
    }
  }

  private place(name: string, x: number, y: number): void {
    const player = this.players.get(name);
    if (player !== undefined) this.players.set(name, { ...player, x, y });
  }

  private setItemUp(id: string, up: boolean): void {
    const item = this.items.get(id);
    if (item !== undefined) this.items.set(id, { ...item, up });
  }

  private setScore(name: string, score: number): void {
    const player = this.players.get(name);
    if (player !== undefined) this.players.set(name, { ...player, score });
  }
}
