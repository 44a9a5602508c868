/**
 * The shape of the world: a grid of regions, where the items lie, how fast players may move.
 * Pure values and functions, shared by the server, the bots and the tests.
 */

/** Width of one region, in world units (the browser draws one unit as one pixel). */
export const REGION_WIDTH = 600;
/** Height of one region, in world units. */
export const REGION_HEIGHT = 400;
/** Regions across. */
export const REGIONS_X = 3;
/** Regions down. */
export const REGIONS_Y = 3;
/** Width of the whole world, in world units. */
export const WORLD_WIDTH = REGION_WIDTH * REGIONS_X;
/** Height of the whole world, in world units. */
export const WORLD_HEIGHT = REGION_HEIGHT * REGIONS_Y;

/** The fastest a player may move, in world units per second of application time. */
export const SPEED_UNITS_PER_S = 240;
/** Distance a player may cover at once after standing still (absorbs network jitter). */
export const MOVE_BURST_UNITS = 60;
/** How close a player must stand to an item to pick it up, in world units. */
export const GRAB_RANGE_UNITS = 40;
/** Default time an item stays gone after it was picked up. */
export const DEFAULT_RESPAWN_MS = 15_000;

/** A region's place in the grid. */
export interface RegionCoords {
  readonly rx: number;
  readonly ry: number;
}

/** An item's fixed place and worth; `index` is its position in its region's list. */
export interface ItemSpot {
  readonly id: string;
  readonly index: number;
  readonly kind: "coin" | "gem";
  readonly value: number;
  readonly x: number;
  readonly y: number;
}

/** Where items lie inside a region, as fractions of its size, and what they are. */
const ITEM_LAYOUT: readonly { fx: number; fy: number; kind: "coin" | "gem" }[] = [
  { fx: 0.25, fy: 0.25, kind: "coin" },
  { fx: 0.75, fy: 0.25, kind: "coin" },
  { fx: 0.5, fy: 0.5, kind: "gem" },
  { fx: 0.25, fy: 0.75, kind: "coin" },
  { fx: 0.75, fy: 0.75, kind: "coin" },
];

const ITEM_VALUES = { coin: 1, gem: 5 } as const;

/** Every region of the grid, row by row. */
export function allRegions(): RegionCoords[] {
  const regions: RegionCoords[] = [];
  for (let ry = 0; ry < REGIONS_Y; ry++) for (let rx = 0; rx < REGIONS_X; rx++) regions.push({ rx, ry });
  return regions;
}

/** The region containing the point (x, y), which must be inside the world. */
export function regionOf(x: number, y: number): RegionCoords {
  return { rx: Math.floor(x / REGION_WIDTH), ry: Math.floor(y / REGION_HEIGHT) };
}

/** True when both regions are the same one. */
export function sameRegion(a: RegionCoords, b: RegionCoords): boolean {
  return a.rx === b.rx && a.ry === b.ry;
}

/** The name of a region's channel, as clients see it. */
export function regionChannelName({ rx, ry }: RegionCoords): string {
  return `region ${rx},${ry}`;
}

/** True when (x, y) lies inside the world. */
export function inWorld(x: number, y: number): boolean {
  return x >= 0 && y >= 0 && x < WORLD_WIDTH && y < WORLD_HEIGHT;
}

/** The items of a region, with their ids (`"rx-ry-index"`) and world positions. */
export function itemSpots({ rx, ry }: RegionCoords): ItemSpot[] {
  return ITEM_LAYOUT.map(({ fx, fy, kind }, index) => ({
    id: `${rx}-${ry}-${index}`,
    index,
    kind,
    value: ITEM_VALUES[kind],
    x: rx * REGION_WIDTH + Math.round(fx * REGION_WIDTH),
    y: ry * REGION_HEIGHT + Math.round(fy * REGION_HEIGHT),
  }));
}

/**
 * Where a new player first appears: near the middle of the world, spread a little by name so that
 * newcomers do not stand on each other (and never on the middle region's gem).
 */
export function spawnPoint(name: string): { x: number; y: number } {
  let hash = 2166136261;
  for (const char of name) hash = Math.imul(hash ^ char.codePointAt(0)!, 16777619) >>> 0;
  const angle = ((hash % 360) * Math.PI) / 180;
  const radius = 60 + (hash % 40);
  return { x: Math.round(WORLD_WIDTH / 2 + Math.cos(angle) * radius), y: Math.round(WORLD_HEIGHT / 2 + Math.sin(angle) * radius) };
}

/** Straight-line distance between two points. */
export function distance(ax: number, ay: number, bx: number, by: number): number {
  return Math.hypot(ax - bx, ay - by);
}
