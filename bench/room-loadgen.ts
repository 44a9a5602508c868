// The room load generator: joins players in steps (rooms of 10), each sending a move at 20 Hz on a
// fixed schedule whatever the replies (open loop), and measures every delivery's latency from its
// move's scheduled send time. It stops at the first step whose p99 breaks the bound or whose
// deliveries fall short; the players held are the largest step that met both.
import { Latencies } from "./stats.ts";
import { joinBaseline, joinShardless } from "./room-clients.ts";
import {
  DELIVERY_FLOOR,
  LATENCY_BOUND_MS,
  ROOM_SIZE,
  UPDATE_HZ,
  encodeMove,
  sentAtOf,
  type RoomJoin,
  type RoomPlayer,
} from "./room-workload.ts";

export type RoomSystemName = "shardless" | "baseline-memory" | "colyseus";

export interface RoomLoadOptions {
  readonly system: RoomSystemName;
  readonly port: number;
  /** Players in the first step (rounded up to whole rooms). */
  readonly startPlayers: number;
  /** No step beyond this many players. */
  readonly maxPlayers: number;
  /** Each step has this many times the players of the one before (at least one more room). */
  readonly growth: number;
  /** Measured seconds per step (after a settling second, before a grace second). */
  readonly stepSeconds: number;
  /** Seconds the first step plays before its settling second, to warm the server up. */
  readonly warmupSeconds: number;
}

/** One step of players, measured. Wall-clock bounds let the runner match server CPU samples. */
export interface RoomStep {
  readonly players: number;
  readonly movesPerSecond: number;
  readonly deliveriesPerSecond: number;
  readonly expectedDeliveries: number;
  readonly receivedDeliveries: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  /** p99 within the bound and at least DELIVERY_FLOOR of the expected deliveries arrived. */
  readonly held: boolean;
  readonly loadgenCpu: number;
  readonly wallStart: number;
  readonly wallEnd: number;
}

export interface RoomLoadResult {
  /** The largest step held (0 if none was). */
  readonly playersHeld: number;
  readonly steps: RoomStep[];
  /** Why the run stopped before `maxPlayers`, besides a step not held (joins refused, drops). */
  readonly failure: string | null;
}

const PERIOD_MS = 1000 / UPDATE_HZ;
const SETTLE_MS = 1000;
const GRACE_MS = 1000;
/** Joins in flight at once (Shardless bounds logins in progress per address at 16 by default). */
const JOIN_CONCURRENCY = 16;

async function joinFor(system: RoomSystemName): Promise<RoomJoin> {
  if (system === "shardless") return joinShardless;
  if (system === "baseline-memory") return joinBaseline;
  return (await import("./colyseus-room.ts")).joinColyseus;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `players` rounded up to whole rooms, at least one. */
function wholeRooms(players: number): number {
  return Math.max(1, Math.ceil(players / ROOM_SIZE)) * ROOM_SIZE;
}

/** The next step's player count: `growth` times more, whole rooms, at least one room more. */
export function nextStep(players: number, growth: number): number {
  return Math.max(players + ROOM_SIZE, wholeRooms(players * growth));
}

/** What one step counts: moves scheduled inside its window, and their deliveries. */
class Window {
  start = Number.POSITIVE_INFINITY;
  end = Number.POSITIVE_INFINITY;
  sent = 0;
  received = 0;
  readonly latencies = new Latencies();

  contains(sentAt: number): boolean {
    return sentAt >= this.start && sentAt < this.end;
  }
}

/** Plays the room workload against `options.port`, step by step; see the file comment. */
export async function runRoomLoad(options: RoomLoadOptions, progress: (line: string) => void = () => undefined): Promise<RoomLoadResult> {
  const join = await joinFor(options.system);
  const players: { player: RoomPlayer; index: number; nextDue: number }[] = [];
  let window = new Window();
  let dropped = 0;
  const onDelivery = (move: Uint8Array) => {
    const sentAt = sentAtOf(move);
    if (!window.contains(sentAt)) return;
    window.received++;
    window.latencies.add(performance.now() - sentAt);
  };
  const sendDue = () => {
    const now = performance.now();
    for (const entry of players) {
      // Behind schedule (a stalled process) means several moves at once, each stamped with the
      // time it was due: the stall is part of their latency.
      for (; entry.nextDue <= now; entry.nextDue += PERIOD_MS) {
        const x = (entry.nextDue / 7) % 1000;
        entry.player.send(encodeMove({ player: entry.index, x, y: 1000 - x, sentAt: entry.nextDue }));
        if (window.contains(entry.nextDue)) window.sent++;
      }
    }
  };
  const scheduler = setInterval(sendDue, 2);
  const steps: RoomStep[] = [];
  let failure: string | null = null;
  try {
    for (let target = wholeRooms(options.startPlayers); target <= options.maxPlayers; target = nextStep(target, options.growth)) {
      failure = await joinUpTo(target, players, join, options.port, onDelivery, () => dropped++);
      if (failure !== null) break;
      // The first step also warms the server up: a cold one (code not yet optimised, stores and
      // caches empty) failed its first step at 100 players with p99 530 ms in one full matrix.
      await sleep(SETTLE_MS + (steps.length === 0 ? options.warmupSeconds * 1000 : 0));
      window = new Window();
      const cpuBefore = process.cpuUsage();
      const wallStart = Date.now();
      window.start = performance.now();
      await sleep(options.stepSeconds * 1000);
      window.end = performance.now();
      const wallEnd = Date.now();
      const cpu = process.cpuUsage(cpuBefore);
      await sleep(GRACE_MS); // late deliveries of the window's moves still count (with their latency)
      const step = summarize(window, target, (cpu.user + cpu.system) / 1000, wallStart, wallEnd);
      steps.push(step);
      progress(`${step.players} players: ${Math.round(step.deliveriesPerSecond)} deliveries/s, p99 ${step.p99Ms.toFixed(1)} ms, ${((100 * step.receivedDeliveries) / Math.max(1, step.expectedDeliveries)).toFixed(1)}% delivered${step.held ? "" : " (not held)"}`);
      if (dropped > 0) failure = `${dropped} player connection(s) closed by the server`;
      if (!step.held || failure !== null) break;
    }
  } finally {
    clearInterval(scheduler);
    for (const { player } of players) player.close();
  }
  const held = steps.filter((step) => step.held).map((step) => step.players);
  return { playersHeld: held.length === 0 ? 0 : Math.max(...held), steps, failure };
}

/** Joins players until there are `target`; returns why it could not, or null. */
async function joinUpTo(
  target: number,
  players: { player: RoomPlayer; index: number; nextDue: number }[],
  join: RoomJoin,
  port: number,
  onDelivery: (move: Uint8Array) => void,
  onClose: () => void,
): Promise<string | null> {
  let next = players.length;
  let failure: string | null = null;
  const worker = async () => {
    while (failure === null && next < target) {
      const index = next++;
      try {
        const player = await join(port, index, onDelivery, onClose);
        // Spread first moves over one period so that the players do not all send at once.
        players.push({ player, index, nextDue: performance.now() + Math.random() * PERIOD_MS });
      } catch (error) {
        failure = `player ${index} could not join: ${(error as Error).message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: JOIN_CONCURRENCY }, worker));
  return failure;
}

function summarize(window: Window, players: number, cpuMs: number, wallStart: number, wallEnd: number): RoomStep {
  const seconds = (window.end - window.start) / 1000;
  const expected = window.sent * ROOM_SIZE;
  const [p50Ms, p99Ms, p999Ms] = window.latencies.percentiles(0.5, 0.99, 0.999) as [number, number, number];
  const delivered = expected === 0 ? 0 : window.received / expected;
  return {
    players,
    movesPerSecond: window.sent / seconds,
    deliveriesPerSecond: window.received / seconds,
    expectedDeliveries: expected,
    receivedDeliveries: window.received,
    p50Ms,
    p99Ms,
    p999Ms,
    held: p99Ms <= LATENCY_BOUND_MS && delivered >= DELIVERY_FLOOR,
    loadgenCpu: cpuMs / 1000 / seconds,
    wallStart,
    wallEnd,
  };
}

// As a child process: one run, options from the parent, progress and result back over IPC.
if (process.send !== undefined && process.argv.includes("--child")) {
  process.once("message", (options: RoomLoadOptions) => {
    void runRoomLoad(options, (line) => process.send!({ progress: line })).then((result) => {
      process.send!({ result }, () => process.exit(0));
    });
  });
}
