/**
 * Fills the demo world with bots that walk, chat and pick up items, and prints a live line of what
 * they do: moves per second, items picked up, and the latency of a ping through a server task.
 *
 *   node --import tsx examples/world/bots.ts --count 50 [--url ws://127.0.0.1:8080/ws]
 *        [--prefix bot] [--seconds 0]
 *
 * Bots are named `<prefix>-1` … `<prefix>-N`; like players, they come back where they were. If the
 * server goes away, they log in again when it is back. Ctrl-C logs them out.
 */
import { parseArgs } from "node:util";
import { connect, type Session } from "@shardless/client";
import { Bot, BotStats } from "./bot.ts";

const STEP_MS = 100;
const PING_EVERY_MS = 1000;
const REPORT_EVERY_MS = 1000;
const RECONNECT_AFTER_MS = 1000;
/** Logins in flight at once: the server checks at most 16 per address at a time. */
const LOGIN_BATCH = 8;

interface Options {
  readonly count: number;
  readonly url: string;
  readonly prefix: string;
  readonly seconds: number;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      count: { type: "string", default: "10" },
      url: { type: "string", default: "ws://127.0.0.1:8080/ws" },
      prefix: { type: "string", default: "bot" },
      seconds: { type: "string", default: "0" },
    },
  });
  const count = Number(values.count);
  const seconds = Number(values.seconds);
  if (!Number.isInteger(count) || count < 1) throw new Error(`--count must be a whole number ≥ 1, got ${values.count}`);
  if (!(seconds >= 0)) throw new Error(`--seconds must be a number ≥ 0 (0: until Ctrl-C), got ${values.seconds}`);
  return { count, url: values.url, prefix: values.prefix, seconds };
}

/** The bots of a run, each logged in again after a lost connection until the run stops. */
class BotRun {
  readonly stats = new BotStats();
  readonly bots = new Map<string, Bot>();
  private stopping = false;

  constructor(private readonly url: string) {}

  /** Logs `names` in, a few at a time. */
  async start(names: string[]): Promise<void> {
    for (let i = 0; i < names.length; i += LOGIN_BATCH) await Promise.all(names.slice(i, i + LOGIN_BATCH).map((name) => this.join(name)));
  }

  step(elapsedMs: number): void {
    for (const bot of this.bots.values()) bot.step(elapsedMs);
  }

  /** Pings from every bot, spread over `periodMs` so that the pings do not all share one commit. */
  ping(periodMs: number): void {
    for (const bot of this.bots.values()) {
      setTimeout(() => {
        if (bot.session.connected) void bot.ping();
      }, Math.random() * periodMs);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.bots.values()].map((bot) => bot.session.logout()));
  }

  private async join(name: string): Promise<void> {
    let session: Session;
    try {
      session = await connect({ url: this.url, name });
    } catch (error) {
      if ((error as Error).name === "LoginFailedError") {
        console.error(`\n${name}: login refused (is that name playing already?)`);
        return;
      }
      return this.retry(name);
    }
    this.bots.set(name, new Bot(session, this.stats));
    session.on("disconnect", () => {
      this.bots.delete(name);
      void this.retry(name);
    });
  }

  private async retry(name: string): Promise<void> {
    if (this.stopping) return;
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_AFTER_MS));
    if (!this.stopping) await this.join(name);
  }
}

/** One line about the last report period: rates, totals and latency percentiles. */
function reportLine(run: BotRun, periodMs: number): string {
  const { stats } = run;
  const perSecond = (count: number) => Math.round((count * 1000) / periodMs);
  const sorted = [...stats.latenciesMs].sort((a, b) => a - b);
  const percentile = (p: number) => (sorted.length === 0 ? "–" : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(1));
  const line = `bots ${run.bots.size} | moves/s ${perSecond(stats.moves)} | picked up ${stats.got} (missed ${stats.missed}) | chat ${stats.chats} | refused ${stats.refused} | latency ms p50 ${percentile(0.5)} p99 ${percentile(0.99)}`;
  stats.moves = 0;
  stats.latenciesMs = [];
  return line;
}

async function main(): Promise<void> {
  const { count, url, prefix, seconds } = options();
  const run = new BotRun(url);
  await run.start(Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`));
  let last = performance.now();
  const stepper = setInterval(() => {
    const now = performance.now();
    run.step(Math.min(now - last, 2 * STEP_MS)); // a stalled loop must not turn into a teleport
    last = now;
  }, STEP_MS);
  const pinger = setInterval(() => run.ping(PING_EVERY_MS), PING_EVERY_MS);
  let reported = performance.now();
  const reporter = setInterval(() => {
    const now = performance.now();
    const line = reportLine(run, now - reported);
    reported = now;
    if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K${line}`);
    else console.log(line);
  }, REPORT_EVERY_MS);
  const finish = async () => {
    for (const timer of [stepper, pinger, reporter]) clearInterval(timer);
    await run.stop();
    console.log(`\nlogged ${count} bots out; ${run.stats.got} items picked up`);
  };
  process.once("SIGINT", () => void finish());
  if (seconds > 0) setTimeout(() => void finish(), seconds * 1000);
}

main().catch((error: unknown) => {
  console.error((error as Error).message);
  process.exitCode = 1;
});
