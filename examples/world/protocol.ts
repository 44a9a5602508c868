/**
 * The world's messages: JSON objects, UTF-8 encoded, with their kind in `t`. Session messages go
 * between one client and the server; region channel messages go from the server to every player of
 * a region. Chat is the one thing clients send on a channel: plain UTF-8 text, vetted by the
 * region's channel listener. README.md documents every message.
 */

/** A player as others see it. */
export interface PlayerView {
  readonly name: string;
  readonly x: number;
  readonly y: number;
  readonly score: number;
}

/** An item as players see it; `up` is false while it waits to respawn. */
export interface ItemView {
  readonly id: string;
  readonly kind: string;
  readonly value: number;
  readonly x: number;
  readonly y: number;
  readonly up: boolean;
}

/** What a client may send as a session message. */
export type ClientMessage =
  | { readonly t: "move"; readonly x: number; readonly y: number }
  | { readonly t: "grab"; readonly item: string }
  | { readonly t: "ping"; readonly id: number };

/** What the server sends to one client. */
export type SessionReply =
  | { readonly t: "region"; readonly rx: number; readonly ry: number; readonly you: PlayerView; readonly players: PlayerView[]; readonly items: ItemView[] }
  | { readonly t: "refused"; readonly reason: string; readonly x: number; readonly y: number }
  | { readonly t: "got"; readonly item: string; readonly score: number }
  | { readonly t: "missed"; readonly item: string; readonly reason: string }
  | { readonly t: "pong"; readonly id: number };

/** What the server sends on a region's channel. */
export type RegionEvent =
  | { readonly t: "enter"; readonly player: PlayerView }
  | { readonly t: "exit"; readonly name: string }
  | { readonly t: "moved"; readonly name: string; readonly x: number; readonly y: number }
  | { readonly t: "taken"; readonly item: string; readonly by: string; readonly score: number }
  | { readonly t: "spawn"; readonly item: ItemView }
  | { readonly t: "chat"; readonly from: string; readonly text: string };

/** Any message from the server. */
export type ServerMessage = SessionReply | RegionEvent;

/** Longest item id a client may name; real ids are much shorter. */
const MAX_ITEM_ID_CHARS = 32;

/** Encodes a message from the server. */
export function encode(message: ServerMessage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(message));
}

/** Decodes a message from the server (for clients and tests). */
export function parseServerMessage(bytes: Uint8Array): ServerMessage {
  return JSON.parse(new TextDecoder().decode(bytes)) as ServerMessage;
}

/**
 * The client message in `bytes`, or null when it is not one: bad UTF-8 or JSON, an unknown kind,
 * or a field of the wrong type. Clients are not trusted, so nothing here throws.
 */
export function parseClientMessage(bytes: Uint8Array): ClientMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const fields = value as Record<string, unknown>;
  switch (fields.t) {
    case "move":
      return isFiniteNumber(fields.x) && isFiniteNumber(fields.y) ? { t: "move", x: fields.x, y: fields.y } : null;
    case "grab":
      return typeof fields.item === "string" && fields.item.length <= MAX_ITEM_ID_CHARS ? { t: "grab", item: fields.item } : null;
    case "ping":
      return isFiniteNumber(fields.id) ? { t: "ping", id: fields.id } : null;
    default:
      return null;
  }
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}
